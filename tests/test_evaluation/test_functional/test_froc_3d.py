# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS 3D FROC (docs/protocols.md §2) and the manual 1K test set loader."""
import pickle

import numpy as np
import pytest
from scipy.interpolate import interp1d

from mmlesion.evaluation.functional.froc import match_detections
from mmlesion.evaluation.functional.froc_3d import (
    LENS_FP_RATES, continuous_to_inclusive, load_deeplesion_manual_3d)
from mmlesion.testing import shared_data_root
from projects.lens.series_froc_3d import froc_3d_curve, lens_sensitivities
from tests.helpers.legacy_overlaps import legacy_bbox_overlaps

GT = [0., 0., 0., 9., 9., 9.]  # 10 x 10 x 10 voxels (inclusive)


def _pkl():
    root = shared_data_root()
    path = None if root is None else (
        root / 'deeplesion' / 'annotations' /
        'DeepLesion_manual_1K_test_release.pkl')
    if path is None or not path.is_file():
        pytest.skip('DeepLesion_manual_1K_test_release.pkl not available '
                    'in $MMLESION_SHARED_DATA/deeplesion/annotations')
    return str(path)


def test_manual_test_set_as_released():
    subs = load_deeplesion_manual_3d(_pkl())
    assert len(subs) == 1000
    val = [s for s in subs if s.split == 'val']
    test = [s for s in subs if s.split == 'test']
    assert len(val) == 200 and len(test) == 800
    assert sum(len(s.boxes) for s in subs) == 5447
    # LENS §VI-A: 4,155 lesions in 34,114 slices (test split)
    assert sum(len(s.boxes) for s in test) == 4155
    assert sum(s.last_slice - s.first_slice + 1 for s in test) == 34114
    # the release README: 43,295 slices of 618 patients, no patient in both
    assert sum(s.last_slice - s.first_slice + 1 for s in subs) == 43295
    patients = [{s.volume[:6] for s in part} for part in (val, test)]
    assert len(patients[0] | patients[1]) == 618
    assert not patients[0] & patients[1]
    # boxes [x1, y1, z1, x2, y2, z2]; z inside the sub-volume's slices
    for s in subs:
        b = s.boxes
        assert (b[:, 3:] >= b[:, :3]).all()
        assert (b[:, 2] >= s.first_slice).all()
        assert (b[:, 5] <= s.last_slice).all()
        assert (s.local_boxes()[:, 2] >= 0).all()
    assert sum(len(s.boxes) == 0 for s in subs) > 0  # lesion-free ones
    only_test = load_deeplesion_manual_3d(_pkl(), splits=('test', ))
    assert [s.name for s in only_test] == [s.name for s in test]


def test_loader_refuses_code_and_bad_entries(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ('pwned', ))

    p = tmp_path / 'evil.pkl'
    p.write_bytes(pickle.dumps({'val': {'x': Evil()}}))
    with pytest.raises(pickle.UnpicklingError, match='refusing'):
        load_deeplesion_manual_3d(str(p))
    p.write_bytes(pickle.dumps(
        {'val': {'000001_01_01_001-010': np.array([[5., 0, 0, 1, 1, 1]])},
         'test': {}}))
    with pytest.raises(ValueError, match="000001_01_01_001-010.*row 0"):
        load_deeplesion_manual_3d(str(p))


def _det(box, score):
    return np.array([list(box) + [score]])


def _match_3d(dets, gts):
    """The LENS hit walk: IoBB >= 0.3 over sub-volumes."""
    return match_detections(dets, gts, 0.3, 'iobb', ndim=3)


def test_iobb_threshold_is_inclusive_and_over_the_detection():
    # detection 10 x 10 x 10, overlapping 3 slices of GT: IoBB 0.3 exactly
    det = [0., 0., 7., 9., 9., 16.]
    ov = legacy_bbox_overlaps([det], [GT], 'iobb', ndim=3)[0, 0]
    assert ov == pytest.approx(0.3)
    m = _match_3d([_det(det, 0.9)], [np.array([GT])])
    assert m.new_hits.tolist() == [1]
    det2 = [0., 0., 8., 9., 9., 17.]  # IoBB 0.2: a false positive
    m = _match_3d([_det(det2, 0.9)], [np.array([GT])])
    assert m.is_fp.tolist() == [True]
    # a small box inside a big lesion: IoU 0.001, IoBB 1 -> TP
    small = [2., 2., 2., 2., 2., 2.]
    assert legacy_bbox_overlaps([small], [GT], 'iou', ndim=3)[0, 0] < 0.01
    m = _match_3d([_det(small, 0.5)], [np.array([GT])])
    assert m.new_hits.tolist() == [1]


def test_multi_hit_duplicates_and_fps_per_subvolume():
    gts = [np.array([GT, [20., 0, 0, 29, 9, 9]]), np.zeros((0, 6)),
           np.zeros((0, 6)), np.zeros((0, 6))]
    both = [0., 0., 0., 29., 9., 9.]  # IoBB 0.33 with each: hits both
    dets = [np.array([both + [0.9], GT + [0.8]]),
            _det([50., 50, 50, 59, 59, 59], 0.7),
            np.zeros((0, 7)), np.zeros((0, 7))]
    m = _match_3d(dets, gts)
    assert m.new_hits.tolist() == [2, 0, 0]  # one box, two lesions
    assert m.is_fp.tolist() == [False, False, True]  # duplicate is free
    curve = froc_3d_curve(dets, gts)
    # 1 FP over 4 sub-volumes (lesion-free ones count)
    assert curve.fps_per_image.tolist() == [0.0, 0.0, 0.25]
    assert curve.sensitivity.tolist() == [1.0, 1.0, 1.0]
    res = lens_sensitivities(curve)
    assert res['sens@0.125'] == 1.0 and res['average'] == 1.0


def test_average_of_seven_rates():
    gts = [np.array([GT])] + [np.zeros((0, 6))] * 7
    far = [40., 40, 40, 49, 49, 49]
    # 2 FPs first (0.25 FPs per sub-volume), then the TP
    dets = [np.array([far + [0.9], far + [0.8], GT + [0.7]])] + [
        np.zeros((0, 7))] * 7
    res = lens_sensitivities(froc_3d_curve(dets, gts))
    # 0.125: between the FPs, 0.0; at 0.25 the last point of the run (TP)
    assert res['sens@0.125'] == 0.0 and res['sens@0.25'] == 1.0
    assert res['average'] == pytest.approx(6 / 7)


def _release_froc(boxes_all, gts_all, th=0.3):
    """Plain transcription of the release's FROC(..., '3D', 'IOBB')."""
    n_img = len(boxes_all)
    img_idxs = np.hstack([[i] * len(boxes_all[i])
                          for i in range(n_img)]).astype(int)
    boxes_cat = np.vstack(boxes_all)
    # stable on ties (the release's argsort()[::-1] leaves their order
    # unspecified; mmlesion's decision, see froc.py)
    order = np.argsort(-boxes_cat[:, -1], kind='stable')
    boxes_cat, img_idxs = boxes_cat[order, :-1], img_idxs[order]
    hits = [np.zeros(len(g), dtype=bool) for g in gts_all]
    n_hits = n_miss = 0
    tps, fps = [], []
    for i in range(len(boxes_cat)):
        b, g = boxes_cat[i], gts_all[img_idxs[i]]
        iw = np.maximum(np.minimum(g[:, 3], b[3]) -
                        np.maximum(g[:, 0], b[0]) + 1., 0.)
        ih = np.maximum(np.minimum(g[:, 4], b[4]) -
                        np.maximum(g[:, 1], b[1]) + 1., 0.)
        idd = np.maximum(np.minimum(g[:, 5], b[5]) -
                         np.maximum(g[:, 2], b[2]) + 1., 0.)
        size = (b[3] - b[0] + 1.) * (b[4] - b[1] + 1.) * (b[5] - b[2] + 1.)
        ov = iw * ih * idd / size
        if len(ov) == 0 or ov.max() < th:
            n_miss += 1
        else:
            for j in range(len(ov)):
                if ov[j] >= th and not hits[img_idxs[i]][j]:
                    hits[img_idxs[i]][j] = True
                    n_hits += 1
        tps.append(n_hits)
        fps.append(n_miss)
    sens = np.array(tps, dtype=float) / len(np.vstack(gts_all))
    fp = np.array(fps, dtype=float) / n_img
    out = []
    for r in LENS_FP_RATES:
        if r < fp[0]:
            out.append(0.0)
        elif r > fp[-1]:
            out.append(sens[-1])
        else:
            out.append(float(interp1d(fp, sens)(r)))
    return fp, sens, np.array(out)


def test_same_as_release_code_on_the_real_boxes():
    """Random detections around the real manual boxes, 100 sub-volumes."""
    subs = load_deeplesion_manual_3d(_pkl(), splits=('val', ))[:100]
    rng = np.random.default_rng(0)
    gts, dets = [], []
    for s in subs:
        g = s.local_boxes()
        gts.append(g)
        rows = []
        for box in g:
            for _ in range(int(rng.integers(0, 3))):
                c = (box[:3] + box[3:]) / 2 + rng.normal(0, 3, 3)
                half = (box[3:] - box[:3] + 1) / 2 * rng.uniform(0.3, 1.5, 3)
                rows.append(np.round(np.r_[c - half, c + half], 0))
        for _ in range(int(rng.integers(0, 8))):
            c = rng.uniform(0, 512, 3)
            rows.append(np.r_[c, c + rng.uniform(3, 40, 3)])
        arr = np.asarray(rows).reshape(-1, 6)
        scores = np.round(rng.uniform(size=(len(arr), 1)), 3)
        dets.append(np.hstack([arr, scores]))
    fp, sens, at = _release_froc(dets, gts)
    curve = froc_3d_curve(dets, gts)
    np.testing.assert_array_equal(curve.fps_per_image, fp)
    np.testing.assert_array_equal(curve.sensitivity, sens)
    res = lens_sensitivities(curve)
    got = np.array([res[f'sens@{r:g}'] for r in LENS_FP_RATES])
    np.testing.assert_array_equal(got, at)
    assert 0 < res['average'] < 1


def test_continuous_to_inclusive():
    box = np.array([[0., 0., 0., 10., 10., 10., 0.5]])
    out = continuous_to_inclusive(box)
    assert out.tolist() == [[0., 0., 0., 9., 9., 9., 0.5]]
    assert box[0, 3] == 10.  # input untouched
    with pytest.raises(ValueError, match='z2 >= z1'):
        froc_3d_curve([np.array([[0., 0, 5, 1, 1, 4, 0.5]])],
                      [np.zeros((0, 6))])
