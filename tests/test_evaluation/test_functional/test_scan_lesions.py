# Copyright (c) mmlesion contributors. All rights reserved.
"""Whole-scan findings judged as lesions in 3D (scan_lesions.py): the hit
walk against a plain reference, a second finding on a lesion a false
positive, findings per lesion, thresholds and distances."""
import numpy as np
import pytest

from mmlesion.evaluation.functional.scan_lesions import (
    evaluate_kept_findings, evaluate_scan_findings, match_scan_findings,
    scan_sensitivity_dict)


def _iobb(det, gt):
    lo = np.maximum(det[:3], gt[:3])
    hi = np.minimum(det[3:6], gt[3:6])
    inter = np.prod(np.clip(hi - lo, 0, None))
    return inter / max(np.prod(det[3:6] - det[:3]), 1e-6)


def _reference(findings, lesions, thr=.3):
    """Findings by score; TP when it hits a lesion not hit before."""
    items = [(f[6], s, i) for s, fs in enumerate(findings)
             for i, f in enumerate(fs)]
    order = sorted(range(len(items)), key=lambda k: -items[k][0])
    hit, tp, fp = set(), [], []
    for k in order:
        _, s, i = items[k]
        new = [(s, j) for j, g in enumerate(lesions[s])
               if _iobb(findings[s][i], g) >= thr and (s, j) not in hit]
        hit |= set(new)
        tp.append(len(new))
        fp.append(not new)
    return np.cumsum(tp), np.cumsum(fp)


@pytest.mark.parametrize('seed', range(20))
def test_walk_equals_reference(seed):
    rng = np.random.default_rng(seed)
    findings, lesions = [], []
    for _ in range(int(rng.integers(1, 4))):
        gt = rng.uniform(0, 20, (int(rng.integers(0, 3)), 3))
        gt = np.concatenate([gt, gt + rng.uniform(2, 8, gt.shape)], 1)
        n = int(rng.integers(0, 6))
        centre = np.concatenate([gt[:, :3] if len(gt) else np.zeros((0, 3)),
                                 rng.uniform(0, 20, (n, 3))])
        centre = centre[rng.integers(len(centre), size=n)] if len(
            centre) else np.zeros((0, 3))
        size = rng.uniform(1, 6, (n, 3))
        det = np.concatenate([centre, centre + size,
                              rng.integers(0, 5, (n, 1)) / 4.], 1)
        findings.append(det)
        lesions.append(gt)
    if not sum(len(g) for g in lesions):
        lesions[0] = np.array([[0, 0, 0, 4, 4, 4.]])
    match, _ = match_scan_findings(findings, lesions)
    tp, fp = _reference(findings, lesions)
    assert np.array_equal(np.cumsum(match.new_hits[match.order]), tp)
    assert np.array_equal(np.cumsum(match.is_fp[match.order]), fp)


def test_duplicates_are_false_and_counted_per_lesion():
    lesion = np.array([[10, 10, 10, 20, 20, 20.]])
    findings = np.array([[11, 11, 11, 19, 19, 19, .9],   # hit
                         [12, 12, 12, 18, 18, 18, .8],   # same lesion again
                         [40, 40, 40, 45, 45, 45, .7]])  # away
    result = evaluate_scan_findings([findings], [lesion], [(2., 1., 1.)],
                                    fp_rates=(0.5, 1, 2, 4))
    assert result.num_lesions == 1 and result.num_scans == 1
    sens = scan_sensitivity_dict(result)
    assert sens == {'0.5': 1.0, '1': 1.0, '2': 1.0, '4': 1.0}
    # at 0.5 FPs per scan only the best finding is kept: one per lesion;
    # at 1 the duplicate too (the one false finding allowed)
    assert result.thresholds[result.at(.5)] == .9
    assert result.findings_per_lesion[result.at(.5)] == 1.0
    assert result.thresholds[result.at(1)] == .8
    assert result.findings_per_lesion[result.at(1)] == 2.0
    # at 4 every finding: two on the lesion
    assert result.findings_per_lesion[result.at(4)] == 2.0
    assert result.findings_per_scan[result.at(4)] == 3.0
    # the nearest kept finding is on the lesion centre: 0 mm
    assert result.nearest_mm == [0.0]
    # kept at a threshold chosen elsewhere
    kept = evaluate_kept_findings([findings], [lesion], [(2., 1., 1.)], .8)
    assert (kept.sensitivity, kept.findings_per_lesion,
            kept.findings_per_scan, kept.false_per_scan) == (1., 2., 2., 1.)
    kept = evaluate_kept_findings([findings], [lesion], [(2., 1., 1.)], .95)
    assert (kept.sensitivity, kept.findings_per_lesion,
            kept.nearest_mm) == (0., None, [None])


def test_no_findings_and_bad_boxes():
    lesion = np.array([[0, 0, 0, 4, 4, 4.]])
    result = evaluate_scan_findings([np.zeros((0, 7))], [lesion],
                                    [(1., 1., 1.)])
    assert result.sensitivities == [0.] * 7
    assert result.findings_per_lesion == [None] * 7
    assert result.nearest_mm == [None]
    with pytest.raises(ValueError, match=r'findings\[0\]'):
        match_scan_findings([np.array([[5, 0, 0, 4, 4, 4, .5]])], [lesion])
    with pytest.raises(ValueError, match='one .* entry per scan'):
        match_scan_findings([], [])
