# Copyright (c) mmlesion contributors. All rights reserved.
"""The per-strategy breakdown of LENS mining on the hand-made case of
:mod:`tests.helpers.mining_case` (answers worked out by hand there)."""
import json

import pytest

from mmlesion.methods.lens.mining import MiningSettings, mine_series
from mmlesion.methods.lens.mining.demo_eval import (evaluate_mining,
                                                    load_demo_lesions)
from mmlesion.methods.lens.mining.proposals import series_to_entries
from projects.lens.mining_breakdown import (intra_patient_candidates,
                                            mining_breakdown, mining_records)
from tests.helpers.mining_case import (CASE_DELTA, mining_case_meta,
                                          mining_case_series)


@pytest.fixture
def case(tmp_path):
    meta = tmp_path / 'demo_meta.json'
    meta.write_text(json.dumps(mining_case_meta()))
    series = mining_case_series()
    counts = mine_series(series, MiningSettings(dist_thr=CASE_DELTA))
    return series, counts, str(meta)


def test_records_carry_the_provenance(case):
    series, counts, _ = case
    recs = mining_records(series)
    by = {k: [r for r in recs if r['strategy'] == k]
          for k in ('propagation', 'intra_patient', 'cross_dataset')}
    assert {k: len(v) for k, v in by.items()} == {
        k: getattr(counts, k) for k in by}
    assert sorted((r['slice'], r['key_distance'])
                  for r in by['propagation']) == [(3, 2), (4, 1), (6, 1),
                                                  (7, 2)]
    assert [r['slice'] for r in by['intra_patient']] == [4, 5, 6]
    for r in by['intra_patient']:
        assert r['embedding_distance'] == pytest.approx(0.05, abs=1e-6)
        assert r['tracklet_score'] == pytest.approx(0.9)
    assert sorted(r['score'] for r in by['cross_dataset']) == \
        pytest.approx([0.8, 0.9])
    cands = sorted(intra_patient_candidates(series),
                   key=lambda c: c['distance'])
    assert [c['matched'] for c in cands] == [True, False, False]
    assert [c['distance'] for c in cands] == pytest.approx([0.05, 0.2, 0.5],
                                                           abs=1e-6)


def test_precision_per_strategy_and_distance(case):
    series, _, meta = case
    out = mining_breakdown(series, load_demo_lesions(meta), CASE_DELTA,
                           deltas=(0.1, 0.3, 0.6), min_scores=(0., 0.5),
                           distance_bins=(0., 0.1, 0.3, 1.))
    assert (out['unannotated_lesions'], out['followup_missing_lesions'],
            out['series']) == (2, 1, 2)
    per = out['per_strategy']
    assert per['propagation'] == dict(
        boxes=4, true_boxes=2, precision=0.5, unannotated_found=0,
        recall_unannotated=0., followup_recall=0.)
    assert per['intra_patient'] == dict(
        boxes=3, true_boxes=3, precision=1., unannotated_found=1,
        recall_unannotated=0.5, followup_recall=1., tracklets=1)
    assert per['cross_dataset'] == dict(
        boxes=2, true_boxes=1, precision=0.5, unannotated_found=1,
        recall_unannotated=0.5, followup_recall=0.)
    # propagation + intra-patient = evaluate_mining's mined boxes
    ev = evaluate_mining(series_to_entries(series), meta)['mined']
    assert (out['mined']['boxes'], out['mined']['precision'],
            out['mined']['recall_unannotated']) == (
                ev['boxes'], ev['precision'], ev['recall_unannotated'])
    assert [(r['key_distance'], r['boxes'], r['precision'])
            for r in out['propagation_by_distance']] == [(1, 2, 1.),
                                                         (2, 2, 0.)]
    assert out['propagation_by_distance'][0]['by_interval'][0][
        'interval'] == 1.
    assert [(b['tracklets'], b['candidate_boxes'], b['candidate_precision'],
             b['matched_boxes'], b['matched_precision'])
            for b in out['intra_patient_by_distance']] == [
                (1, 3, 1., 3, 1.), (1, 1, 0., 0, None), (1, 1, 1., 0, None)]


def test_delta_sweep_matches_rerunning_the_strategies(case):
    series, _, meta = case
    truth = load_demo_lesions(meta)
    out = mining_breakdown(series, truth, CASE_DELTA, deltas=(0.1, 0.3, 0.6),
                           min_scores=(0., 0.5))
    sweep = {(r['delta'], r['min_score']): r for r in out['delta_sweep']}
    assert sorted(sweep) == [(d, s) for d in (0.1, 0.15, 0.3, 0.6)
                             for s in (0., 0.5)]
    expect = {(0.1, 0.): (7, 5, 0.5, 1), (0.1, 0.5): (7, 5, 0.5, 1),
              (0.3, 0.): (8, 5, 0.5, 2), (0.3, 0.5): (7, 5, 0.5, 1),
              (0.6, 0.): (9, 6, 1., 3), (0.6, 0.5): (8, 6, 1., 2)}
    for key, (n, tp, recall, tracklets) in expect.items():
        r = sweep[key]
        assert (r['boxes'], r['true_boxes'], r['recall_unannotated'],
                r['intra_tracklets']) == (n, tp, recall, tracklets), key
    # each delta (no minimum score) is what mine_series gives with it
    for delta in (0.1, 0.3, 0.6):
        rerun = mining_case_series()
        mine_series(rerun, MiningSettings(dist_thr=delta))
        again = mining_breakdown(rerun, truth, delta, deltas=())
        assert again['mined'] == {k: v for k, v in sweep[(delta, 0.)].items()
                                  if k in again['mined']}


def test_no_proposals_gives_undefined_precision(tmp_path):
    series = mining_case_series()
    mine_series(series, MiningSettings(strategies=()))
    out = mining_breakdown(series, {}, deltas=(0.2, ))
    assert out['series'] == 0 and out['mined']['precision'] is None
    assert out['per_strategy']['propagation']['boxes'] == 0
    assert out['delta_sweep'][0]['recall_unannotated'] is None
