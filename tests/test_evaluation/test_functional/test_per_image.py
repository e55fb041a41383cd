# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
from mmdet.evaluation.functional import eval_map

from mmlesion.evaluation.functional import (froc_curve, image_coco_style_map,
                                            image_froc_at_fp, sens_at_fp)
from projects.benchmarks.froc_reference import random_froc_case


def test_image_froc_at_fp_sums_to_the_set_sensitivity():
    """Summed over the images, the per-image hits at the operating point
    are the set's FROC sensitivity there (at an attained FP rate), and the
    kept false positives never exceed the rate."""
    dets, gts = random_froc_case(num_images=30, seed=3)
    curve = froc_curve(dets, gts)
    for k in (0, 1, 5, 30, 60):
        rate = k / 30
        found = image_froc_at_fp(dets, gts, fp_rate=rate)
        assert found.fps.sum() <= k
        if k == 0 or rate in curve.fps_per_image:
            np.testing.assert_allclose(
                found.hits.sum() / found.num_gts.sum(),
                sens_at_fp(curve, [rate])[0])
        assert (found.hits <= found.num_gts).all()


def test_image_froc_at_fp_small_case():
    gt = np.array([[10., 10., 30., 30.]])
    hit = np.array([[10., 10., 30., 30., .9]])
    miss = np.array([[100., 100., 120., 120., .95]])
    found = image_froc_at_fp([hit, np.concatenate([miss, hit]),
                              miss[:, :]], [gt, gt, np.zeros((0, 4))],
                             fp_rate=1.)
    # order .95 (FP), .95 (FP), .9 (hit), .9 (hit): 2 FPs / 3 images kept
    np.testing.assert_array_equal(found.hits, [1, 1, 0])
    np.testing.assert_array_equal(found.fps, [0, 1, 1])
    assert found.score_thr == pytest.approx(.9)
    sens = found.sensitivity()
    assert sens[0] == 1 and np.isnan(sens[2])
    found = image_froc_at_fp([hit, miss, miss], [gt, gt, gt], fp_rate=0.)
    assert found.hits.sum() == 0 and found.score_thr == float('inf')
    with pytest.raises(ValueError, match='fp_rate'):
        image_froc_at_fp([hit], [gt], fp_rate=-1.)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_image_coco_style_map_is_mmdets_per_image_map(seed):
    """The number mmdet's analyze_results ranks by: eval_map averaged over
    IoU 0.50:0.05:0.95 for one image."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (4, 2))
    gt = np.concatenate([xy, xy + rng.uniform(10, 40, (4, 2))], 1)
    det = np.concatenate([
        np.concatenate([gt + rng.normal(0, 4, gt.shape),
                        rng.uniform(0, 200, (3, 4)).cumsum(1)]),
        rng.uniform(0, 1, (7, 1))
    ], 1)
    ignore = gt[:1] + 100
    ours = image_coco_style_map(det, gt, ignore)
    mmdet = np.mean([
        eval_map([[det.astype(np.float32)]],
                 [dict(bboxes=gt, labels=np.zeros(4, dtype=np.int64),
                       bboxes_ignore=ignore,
                       labels_ignore=np.zeros(1, dtype=np.int64))],
                 iou_thr=t, logger='silent', nproc=1)[0]
        for t in np.linspace(.5, .95, 10)
    ])
    assert ours == pytest.approx(mmdet, abs=1e-6)
    assert 0 < ours < 1
