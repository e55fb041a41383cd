# Copyright (c) mmlesion contributors. All rights reserved.
"""projects/lens/tools/analyze_lens_mining.py on a tiny hand-made study
folder (:mod:`tests.helpers.mining_case`) with stored proposals: no
model, no training."""
import json
import pickle

import pytest

from tests.helpers.mining_case import (CASE_DELTA, mining_case_meta,
                                          mining_case_series)


@pytest.fixture
def study(tmp_path):
    """A LENS study folder (rows b and d of seed 0) and an output folder
    holding the proposals of seed 0."""
    work = tmp_path / 'study'
    (work / 'data' / 'demo_partial').mkdir(parents=True)
    (work / 'data' / 'demo_partial' / 'demo_meta.json').write_text(
        json.dumps(mining_case_meta()))
    (work / 'lens_study.json').write_text(json.dumps(dict(
        demo_settings=dict(epochs=1, mining_max_offset=2))))
    (work / 'd' / 'seed_0').mkdir(parents=True)
    counts = dict(tracklets=4, propagation=4, intra_patient=3,
                  cross_dataset=2)
    (work / 'd' / 'seed_0' / 'mining.json').write_text(json.dumps(dict(
        delta=dict(delta=CASE_DELTA), counts=counts)))
    (work / 'b' / 'seed_0').mkdir(parents=True)
    (work / 'b' / 'seed_0' / 'last_checkpoint').write_text(
        '/elsewhere/epoch_1.pth')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'proposals_seed0.pkl').write_bytes(
        pickle.dumps(mining_case_series()))
    return work, out


def test_breakdown_of_stored_proposals(analysis_tool, study, capsys):
    work, out = study
    tool = analysis_tool('analyze_lens_mining')
    assert tool.main(['--work-dir', str(work), '--seeds', '0', '--out-dir',
                      str(out), '--deltas', '0.1', '0.6']) == 0
    res = json.loads((out / 'lens_mining_breakdown.json').read_text())
    seed0 = res['results']['0']
    assert res['proposals'] == {'0': 'stored'}
    assert seed0['reproduces_stored_counts'] is True
    assert seed0['dist_thr'] == CASE_DELTA
    per = seed0['per_strategy']
    assert [per[k]['precision'] for k in ('propagation', 'intra_patient',
                                          'cross_dataset')] == [0.5, 1., 0.5]
    assert {(r['delta'], r['min_score']) for r in seed0['delta_sweep']} == {
        (d, s) for d in (0.1, 0.15, 0.6) for s in (0., 0.5)}
    assert (out / 'lens_mining_delta_sweep.png').stat().st_size > 1000
    printed = capsys.readouterr().out
    assert '| 0 | 0.15 | propagation | 2/4 | 0.50 |' in printed
    assert '| 0 | 2 | 0/2 | 0.00 | 1mm:0/2 |' in printed
    assert 'reproduce mining.json: True' in printed


def test_missing_inputs_are_named(analysis_tool, study, capsys):
    work, out = study
    tool = analysis_tool('analyze_lens_mining')
    (work / 'd' / 'seed_0' / 'mining.json').unlink()
    assert tool.main(['--work-dir', str(work), '--out-dir', str(out)]) == 2
    assert str(work / 'd' / 'seed_0' / 'mining.json') in \
        capsys.readouterr().err
    # no stored proposals: the checkpoint, looked up in the row folder of
    # row b (not where last_checkpoint points), is named
    (work / 'd' / 'seed_0' / 'mining.json').write_text(json.dumps(dict(
        delta=dict(delta=CASE_DELTA))))
    (out / 'proposals_seed0.pkl').unlink()
    assert tool.main(['--work-dir', str(work), '--out-dir', str(out)]) == 2
    err = capsys.readouterr().err
    assert str(work / 'b' / 'seed_0' / 'epoch_1.pth') in err
    assert not (out / 'lens_mining_breakdown.json').exists()
