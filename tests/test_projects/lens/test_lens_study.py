# Copyright (c) mmlesion contributors. All rights reserved.
"""The LENS Table I study (projects.lens.lens_study): paired step effects,
the mining numbers, the shared data, row dependencies; the demo's delta
calibration on annotated lesions only (projects.lens.lens_demo,
mmlesion.methods.lens.mining.calibration.demo_pairs)."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from projects.lens.lens_demo import LENSDemoSettings, calibrate_demo_delta
from projects.lens.lens_study import (DATA_MARKER, LATER_DATA_SETTINGS,
                                      LENS_3D_METRIC,
                                      MINING_STRATEGIES, STUDY_ROWS,
                                      LENSStudy, effects_markdown,
                                      ensure_lens_study_data, mining_metrics,
                                      step_effects, write_effects)
from projects.study_demo.study import (RowContext, RowResult, StudyResult,
                                 StudyRow, StudySettings)


def _result(per_row):
    """A StudyResult with ``{row key: {seed: average}}``."""
    rows = []
    for key, seeds in per_row.items():
        r = RowResult(StudyRow(key, key, 'x.py'))
        r.metrics = {s: {'average': v} for s, v in seeds.items()}
        rows.append(r)
    seeds = sorted({s for v in per_row.values() for s in v})
    return StudyResult(rows, StudySettings('/tmp/x', seeds=seeds),
                       LENS_3D_METRIC)


def test_step_effects_are_paired_by_seed():
    res = _result({
        'baseline': {0: .30, 1: .20, 2: .40},
        'a': {0: .31, 1: .22, 2: .40},  # +0.01, +0.02, 0: mean .01, sd .01
        'b': {0: .41, 1: .32, 2: .52},  # +.10, +.10, +.12: shown
        'c': {0: .41},  # one paired seed: no verdict
        'd': {},
    })
    eff = {(e['before'], e['after']): e for e in step_effects(res)}
    ab = eff[('baseline', 'a')]
    assert ab['seeds'] == [0, 1, 2]
    assert ab['mean'] == pytest.approx(0.01)
    assert ab['std'] == pytest.approx(0.01)  # ddof 1
    assert ab['shown'] is False  # 0.01 < 2 * 0.01
    bb = eff[('a', 'b')]
    assert bb['mean'] == pytest.approx(0.1066667) and bb['shown'] is True
    # the unpaired spread (row std ~0.1) would hide it: pairing matters
    assert bb['std'] < 0.02
    assert eff[('b', 'c')]['shown'] is None
    assert eff[('c', 'd')]['seeds'] == [] and math.isnan(
        eff[('c', 'd')]['mean'])
    md = effects_markdown(step_effects(res))
    assert '| baseline -> a | 3 | +1.00 | 1.00 | +1.0, +2.0, +0.0 | ' \
        'not shown |' in md
    assert '| a -> b | 3 | +10.67 |' in md and '| shown |' in md
    assert '| b -> c | 1 | +0.00 | - | +0.0 | - |' in md


def test_ablation_row_reported_only_when_run(tmp_path):
    """``d_no_uncertain`` mines without the cross-dataset strategy, starts
    from (b) like (d), and its comparisons appear in the effects file only
    once it has results."""
    assert MINING_STRATEGIES['d_no_uncertain'] == ('propagation',
                                                   'intra_patient')
    assert 'cross_dataset' in MINING_STRATEGIES['d']
    rows = {r.key: r for r in LENSStudy(str(tmp_path), _tiny_settings(),
                                        log=str).rows()}
    assert rows['d_no_uncertain'].fingerprint['starts_from'] == 'b'
    assert rows['d_no_uncertain'].config == rows['d'].config
    per_row = {'c': {0: .30, 1: .20, 2: .25}, 'd': {0: .31, 1: .22, 2: .25}}
    res = _result(per_row)
    res.settings.work_dir = str(tmp_path)
    text = open(write_effects(res)).read()
    assert 'Ablations' not in text and 'd_no_uncertain' not in text
    res = _result(dict(per_row, d_no_uncertain={0: .35, 1: .26, 2: .30}))
    res.settings.work_dir = str(tmp_path)
    text = open(write_effects(res)).read()
    assert 'Ablations, paired by seed' in text
    assert '| c -> d_no_uncertain | 3 | +5.33 |' in text
    assert '| d -> d_no_uncertain | 3 | +4.33 |' in text


def test_mining_metrics():
    mining = dict(
        delta=dict(delta=0.21, source='calibrated'),
        counts=dict(propagation=10, intra_patient=3, tracklets=50,
                    embedding_distances={}),
        demo_evaluation=dict(
            mined=dict(boxes=13, precision=0.9, recall_unannotated=0.1),
            uncertain=dict(boxes=7, precision=0.5, recall_unannotated=0.3),
            any_recall_unannotated=0.35, unannotated_lesions=20,
            followup_missing=dict(lesions=4, mined_recall=0.25)))
    m = mining_metrics(mining)
    assert m['mining/delta'] == 0.21 and m['mining/mined_boxes'] == 13
    assert m['mining/uncertain_precision'] == 0.5
    assert m['mining/followup_missing_mined_recall'] == 0.25
    assert all(isinstance(v, float) for v in m.values())


def test_calibrate_demo_delta(monkeypatch):
    import mmlesion.methods.lens.mining.calibration as calibration
    seen = {}

    def fake_pairs(model, cfg, root, split=None, annotated_only=False):
        seen.update(split=split, annotated_only=annotated_only)
        return (np.array([0.1, 0.12, 0.2]), np.array([0.15, 0.5, 0.6, 0.7]),
                dict(lesions=7, annotated=7, patients=2))

    monkeypatch.setattr(calibration, 'demo_pairs', fake_pairs)
    out = calibrate_demo_delta(None, None, '/root', min_precision=0.7)
    # what a user has: the annotated lesions of the training split
    assert seen == dict(split='train', annotated_only=True)
    # just above 0.2: 3 same + 1 different pair (precision 0.75); above
    # 0.5 the precision drops to 0.6
    assert out['source'] == 'calibrated' and out['precision'] == 0.75
    assert out['delta'] == pytest.approx(0.2, abs=1e-3)
    monkeypatch.setattr(calibration, 'demo_pairs',
                        lambda *a, **k: (np.array([]), np.array([.3]),
                                         dict(lesions=1)))
    out = calibrate_demo_delta(None, None, '/root')
    assert out['delta'] == 0.15 and out['source'].startswith('paper')


@pytest.fixture(scope='module')
def followup_root(tmp_path_factory):
    from projects.study_demo.synthetic.deeplesion import \
        generate_study_deeplesion
    root = tmp_path_factory.mktemp('lens_study') / 'partial'
    generate_study_deeplesion(root, seed=0, num_train=8, num_val=2,
                              num_test=0, unannotated_prob=0.6,
                              followup_prob=1., followup_missing_prob=0.5)
    return str(root) + '/'


def test_demo_pairs_annotated_only(followup_root, monkeypatch):
    """Calibration pairs of a user: annotated lesions of the training split
    only; with the unannotated ones more lesions are embedded."""
    import mmlesion.methods.lens.mining.calibration as calibration
    from projects.lens.lens_demo import demo_row_config
    from mmlesion.methods.lens.mining.demo_eval import load_demo_lesions
    cfg = demo_row_config('row_bc', '/tmp/unused', {}, 1)

    def fake_embed(model, dataset, idx, boxes):  # no model needed
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        return centres / 100.

    monkeypatch.setattr(calibration, 'embed_dataset_boxes', fake_embed)
    same, diff, info = calibration.demo_pairs(None, cfg, followup_root,
                                              split='train',
                                              annotated_only=True)
    assert info['lesions'] == info['annotated'] > 0
    _, _, every = calibration.demo_pairs(None, cfg, followup_root)
    assert every['lesions'] > info['lesions']
    truth = load_demo_lesions(followup_root + 'demo_meta.json')
    assert every['annotated'] < every['lesions'] <= sum(
        len(t['lesions']) for t in truth.values())
    # same lesion in a follow-up: same body position -> distance ~0 here
    assert len(same) and np.median(same) < np.median(diff)


def _tiny_settings():
    return LENSDemoSettings(num_train=2, num_eval=1, epochs=1,
                            fpr_epochs=1, mining_max_offset=0,
                            eval_max_offset=0, max_train_iters=1)


def test_study_data_made_once_and_protected(tmp_path):
    s = _tiny_settings()
    data = ensure_lens_study_data(str(tmp_path / 'data'), s, log=str)
    marker = json.loads((tmp_path / 'data' / DATA_MARKER).read_text())
    assert marker['settings']['num_train'] == 2
    assert not set(LATER_DATA_SETTINGS) & set(marker['settings'])
    assert data['roots']['data/demo_lung/'] == data['lung']
    stamp = (tmp_path / 'data' / DATA_MARKER).stat().st_mtime_ns
    again = ensure_lens_study_data(str(tmp_path / 'data'), s)
    assert again['partial'] == data['partial']
    assert (tmp_path / 'data' / DATA_MARKER).stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match='other settings'):
        ensure_lens_study_data(str(tmp_path / 'data'),
                               LENSDemoSettings(num_train=3))
    with pytest.raises(ValueError, match='other settings'):
        ensure_lens_study_data(str(tmp_path / 'data'),
                               replace(s, multi_study_prob=.8))
    (tmp_path / 'mine').mkdir()
    with pytest.raises(ValueError, match='not LENS study data'):
        ensure_lens_study_data(str(tmp_path / 'mine'), s)


def test_study_rows_and_a_missing_source_row(tmp_path):
    study = LENSStudy(str(tmp_path), _tiny_settings(), log=str)
    rows = study.rows()
    assert [r.key for r in rows] == list(STUDY_ROWS)
    assert all(r.run == study.run_row for r in rows)
    # a changed size is a different result (the runner compares these)
    assert rows[0].fingerprint['num_train'] == 2
    assert rows[2].fingerprint['starts_from'] is None
    assert rows[3].fingerprint['starts_from'] == 'b'
    # a mining-only setting enters the fingerprints of the mined rows only
    # (so that changing it re-runs (d) and (e), and reuses the rest)
    by_key = {r.key: r.fingerprint for r in rows}
    assert by_key['d']['match_score_thr'] == 0.5
    assert by_key['e']['match_score_thr'] == 0.5
    assert all('match_score_thr' not in by_key[k]
               for k in ('baseline', 'a', 'b', 'c'))
    # data settings added later enter only when they differ from the
    # value every earlier study had (earlier work dirs keep their results)
    assert all(k not in fp for fp in by_key.values()
               for k in LATER_DATA_SETTINGS)
    more = LENSStudy(str(tmp_path), replace(_tiny_settings(), num_studies=3),
                     log=str).rows()
    assert all(r.fingerprint['num_studies'] == 3 for r in more)
    assert 'multi_study_prob' not in more[0].fingerprint
    from projects.study_demo.study import build_row_config
    settings = StudySettings(str(tmp_path), seeds=(0, ))
    cfg = build_row_config(rows[3], settings, 0)
    ctx = RowContext(rows[3], 0, str(tmp_path / 'c' / 'seed_0'), settings)
    with pytest.raises(FileNotFoundError, match="needs row 'b' \\(seed 0\\)"):
        study.run_row(cfg, ctx)


def test_mining_summary_skips_undefined_values():
    from projects.lens.lens_study import mining_summary_markdown
    res = _result({'d': {0: .1, 1: .2}})
    res.rows[0].metrics[0].update({'mining/uncertain_precision': 0.5,
                                   'mining/mined_boxes': 10.})
    res.rows[0].metrics[1].update({'mining/uncertain_precision': math.nan,
                                   'mining/mined_boxes': 20.})
    md = mining_summary_markdown(res)
    assert '| uncertain_precision | 0.5 (1 of 2 seeds) |' in md
    assert '| mined_boxes | 15 ± 7.1 |' in md
    assert mining_summary_markdown(_result({'c': {0: .1}})) == ''
