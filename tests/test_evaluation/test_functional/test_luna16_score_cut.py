# Copyright (c) mmlesion contributors. All rights reserved.
"""The RPN score cut's effect (3D-AG's 0.269): the same detections
evaluated with and without it, on a tiny recorded set, through the
function, ``LUNA16Metric`` (Table V's test) and the cross-validation's
pooled files (``tools/luna16_cv.py``)."""
import json

import numpy as np
import pytest
import torch

from mmdet.registry import METRICS
from mmlesion.evaluation.functional import luna16 as L

THR = 0.269
#: scan a: nodule 1 found at final 0.9 (RPN 0.8), an FP at 0.6 (RPN 0.2,
#: cut), nodule 2 found at 0.5 (RPN 0.1, cut); scan b: an FP at 0.7 (RPN
#: 0.5) and one at 0.4 (RPN exactly 0.269: cut, the cut keeps > only)
MARKS = [('a', (0., 0., 0.), 0.9, 0.8), ('a', (50., 0., 0.), 0.6, 0.2),
         ('a', (20., 20., 20.), 0.5, 0.1), ('b', (0., 0., 0.), 0.7, 0.5),
         ('b', (40., 40., 40.), 0.4, THR)]
NODULES = [('a', (0., 0., 0.), 6.), ('a', (20., 20., 20.), 6.)]


def _cands():
    return L.LUNA16Candidates(
        np.asarray([m[0] for m in MARKS], dtype=object),
        np.asarray([m[1] for m in MARKS]), np.asarray([m[2] for m in MARKS]))


def _nodules():
    return L.LUNA16Findings(np.asarray([n[0] for n in NODULES], dtype=object),
                            np.asarray([n[1] for n in NODULES]),
                            np.asarray([n[2] for n in NODULES]))


RPN = np.asarray([m[3] for m in MARKS])


def test_the_same_detections_with_and_without_the_cut():
    effect = L.score_cut_effect(_cands(), RPN, _nodules(), None, ['a', 'b'],
                                L.ScoreCutSettings(THR))
    cut, uncut = effect.with_cut, effect.without_cut
    assert (cut.num_candidates, uncut.num_candidates) == (2, 5)
    assert (cut.candidates_per_scan, uncut.candidates_per_scan) == (1., 2.5)
    # with the cut nodule 2 is never found: half the nodules at most
    assert cut.result.sens_at.max() == pytest.approx(0.5)
    assert uncut.result.sens_at[-1] == pytest.approx(1.0)
    assert uncut.result.cpm > cut.result.cpm
    # the cut side is the FROC of the cut detections evaluated alone
    alone = L.evaluate_luna16(L.apply_score_cut(_cands(), RPN, THR),
                              _nodules(), None, ['a', 'b'],
                              L.LUNA16Options(num_bootstrap=0))
    assert cut.result.cpm == alone.cpm
    d = effect.to_dict()
    assert d['threshold'] == THR and d['with_cut']['num_candidates'] == 2
    assert d['without_cut']['sensitivity_at']['8'] == pytest.approx(1.0)
    assert effect.metrics() == dict(
        candidates_per_scan=1., candidates_per_scan_uncut=2.5,
        cpm_uncut=uncut.result.cpm)
    assert '1.00 candidates per scan' in effect.summary()
    with pytest.raises(ValueError, match='4 cut scores for 5'):
        L.apply_score_cut(_cands(), RPN[:4], THR)


def _sample(uid):
    marks = [m for m in MARKS if m[0] == uid]
    box = [[*(np.asarray(c) - 2), *(np.asarray(c) + 2)] for _, c, _, _ in
           marks]
    return dict(
        img_id=uid, series_uid=uid, spacing_zyx=(1., 1., 1.),
        origin_xyz=(0., 0., 0.), direction=np.eye(3).ravel().tolist(),
        instances=[dict(center_world=list(c), diameter_mm=d, ignore_flag=0)
                   for u, c, d in NODULES if u == uid],
        pred_instances=dict(
            bboxes=torch.tensor(box, dtype=torch.float64),
            scores=torch.tensor([m[2] for m in marks], dtype=torch.float64),
            rpn_scores=torch.tensor([m[3] for m in marks],
                                    dtype=torch.float64)))


def test_luna16_metric_cuts_and_reports_both(tmp_path):
    metric = METRICS.build(dict(
        type='LUNA16Metric', num_bootstrap=0, froc_plot=None,
        rpn_score_cut=THR, outfile_prefix=str(tmp_path / 'luna16')))
    metric.process({}, [_sample('a'), _sample('b')])
    res = metric.evaluate(2)
    effect = L.score_cut_effect(_cands(), RPN, _nodules(), None, ['a', 'b'],
                                L.ScoreCutSettings(THR))
    assert res['luna16/cpm'] == pytest.approx(effect.with_cut.result.cpm)
    assert res['luna16/cpm_uncut'] == pytest.approx(
        effect.without_cut.result.cpm)
    assert res['luna16/candidates_per_scan'] == 1.0
    assert res['luna16/candidates_per_scan_uncut'] == 2.5
    assert res['luna16/sens@8_uncut'] == pytest.approx(1.0)
    assert res['luna16/sens@8'] == pytest.approx(0.5)
    summary = json.loads((tmp_path / 'luna16_metrics.json').read_text())
    assert summary['score_cut']['without_cut']['num_candidates'] == 5
    # the candidates written are the test's: the cut ones
    written = L.read_candidates_csv(str(tmp_path / 'luna16_candidates.csv'))
    assert written.probability.tolist() == [0.9, 0.7]


def test_pooled_folds_evaluated_with_and_without_the_cut(tmp_path):
    from mmlesion.protocols.luna16_cv import (FOLD_DONE, FoldRecord,
                                              evaluate_score_cut, pool_folds,
                                              write_candidates,
                                              write_seriesuids)
    ann = tmp_path / 'annotations.csv'
    ann.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n' + ''.join(
        f'{u},{c[0]},{c[1]},{c[2]},{d}\n' for u, c, d in NODULES))
    cands = _cands()
    for fold, uid in enumerate('ab'):  # one scan a fold, as luna16_cv
        d = tmp_path / f'fold{fold}'
        d.mkdir()
        mine = cands.seriesuids == uid
        part = L.LUNA16Candidates(cands.seriesuids[mine], cands.xyz[mine],
                                  cands.probability[mine])
        write_candidates(str(d / 'candidates.csv'),
                         L.apply_score_cut(part, RPN[mine], THR))
        write_candidates(str(d / 'candidates_uncut.csv'), part, RPN[mine])
        write_seriesuids(str(d / 'seriesuids.csv'), [uid])
        (d / FOLD_DONE).write_text(json.dumps(FoldRecord(
            fold, 'x.pth', 1, int(mine.sum()), 1., 1., THR).to_dict()))
    pooled = pool_folds(str(tmp_path), [0, 1])
    assert pooled.num_candidates == 2 and pooled.rpn_score_thr == THR
    np.testing.assert_array_equal(
        L.read_candidate_column(pooled.uncut, 'rpn_probability'), RPN)
    # the evaluation of the cut candidates wrote metrics.json: both sides
    # join it under score_cut (what the LUNA16 tables read), its keys kept
    (tmp_path / 'metrics.json').write_text(json.dumps({'cpm': 0.5}))
    effect = evaluate_score_cut(pooled, str(ann), None, str(tmp_path))
    saved = json.loads((tmp_path / 'score_cut.json').read_text())
    assert saved == json.loads(json.dumps(effect.to_dict()))
    assert saved['with_cut']['candidates_per_scan'] == 1.0
    assert saved['without_cut']['candidates_per_scan'] == 2.5
    assert json.loads((tmp_path / 'metrics.json').read_text()) == dict(
        cpm=0.5, score_cut=saved)
