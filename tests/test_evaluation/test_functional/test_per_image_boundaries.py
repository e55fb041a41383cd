# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the per-image scores (:mod:`...functional.per_image`).

Pinned: the operating point when the false positives per image reach the
rate exactly (the detections up to the next false positive are kept) or
just miss it, the FP denominator over all images (empty ones included),
the defaults (``fp_rate=4``, IoU ``>= 0.5``, ``'iou'``), lesions hit only
beyond the operating point, score ties, the per-image sensitivity of
images with zero, one and two lesions, the rejected rates, and the
per-image COCO-style mAP (its ten thresholds, no ``+ 1`` pixel, the
ignored lesions and their default).
"""
import warnings

import numpy as np
import pytest

from mmlesion.evaluation.functional.per_image import (COCO_IOU_THRS,
                                                      ImageFROC,
                                                      image_coco_style_map,
                                                      image_froc_at_fp)

GT = [0., 0., 9., 9.]  # 10 x 10 pixels
HALF = [0., 0., 19., 9.]  # IoU with GT exactly 0.5 (legacy + 1)
SMALL = [2., 2., 5., 5.]  # inside GT: IoU 16 / 100, IoBB 1
FAR = [100., 100., 109., 109.]
NO_DET = np.zeros((0, 5))
NO_GT = np.zeros((0, 4))


def dets(*rows):
    return np.array([list(b) + [s] for b, s in rows],
                    dtype=np.float64).reshape(-1, 5)


def test_coco_thresholds():
    assert len(COCO_IOU_THRS) == 10
    np.testing.assert_allclose(COCO_IOU_THRS, np.arange(10) * .05 + .5)
    assert COCO_IOU_THRS[0] == .5 and COCO_IOU_THRS[-1] == .95


def test_rate_reached_exactly_keeps_up_to_the_next_false_positive():
    # one image: FP .9, TP .8, FP .7; an empty second image halves the
    # FPs per image: 0.5, 0.5, 1.0
    d = [dets((FAR, .9), (GT, .8), ([200., 200., 209., 209.], .7)), NO_DET]
    g = [np.array([GT]), NO_GT]
    at = image_froc_at_fp(d, g, fp_rate=0.5)
    assert at.hits.tolist() == [1, 0] and at.fps.tolist() == [1, 0]
    assert at.num_gts.tolist() == [1, 0]
    assert at.score_thr == .8 and at.fp_rate == 0.5
    below = image_froc_at_fp(d, g, fp_rate=0.4999)
    assert below.hits.tolist() == [0, 0] and below.fps.tolist() == [0, 0]
    assert below.score_thr == float('inf')
    every = image_froc_at_fp(d, g, fp_rate=1.)
    assert every.hits.tolist() == [1, 0] and every.fps.tolist() == [2, 0]
    assert every.score_thr == .7
    assert image_froc_at_fp(d, g, fp_rate=0.9999).fps.tolist() == [1, 0]


def test_defaults_rate_four_iou_one_half():
    # five FPs then a lesion hit at IoU exactly 0.5: at 4 FPs per image the
    # hit is not reached, at 5 it is
    rows = [([100. + 20 * k, 0., 109. + 20 * k, 9.], .9 - .1 * k)
            for k in range(5)]
    d = [dets(*rows, (HALF, .35))]
    g = [np.array([GT])]
    found = image_froc_at_fp(d, g)
    assert found.fp_rate == 4.0 and isinstance(found.fp_rate, float)
    assert found.fps.tolist() == [4] and found.hits.tolist() == [0]
    assert found.score_thr == pytest.approx(.6)
    found = image_froc_at_fp(d, g, fp_rate=5)
    assert found.fps.tolist() == [5] and found.hits.tolist() == [1]
    assert found.score_thr == .35 and found.fp_rate == 5.0
    assert isinstance(found.fp_rate, float)
    # IoU exactly 0.5 hits with the default threshold, not above it
    one = [dets((HALF, .9))]
    assert image_froc_at_fp(one, g, fp_rate=0.).hits.tolist() == [1]
    assert image_froc_at_fp(one, g, fp_rate=0.,
                            iou_thr=0.51).hits.tolist() == [0]


def test_default_overlap_is_iou():
    d, g = [dets((SMALL, .9))], [np.array([GT])]
    assert image_froc_at_fp(d, g).hits.tolist() == [0]
    assert image_froc_at_fp(d, g, overlap='iou').hits.tolist() == [0]
    assert image_froc_at_fp(d, g, overlap='iobb').hits.tolist() == [1]


def test_lesion_hit_beyond_the_operating_point_is_not_counted():
    # image 0: TP .9 of lesion A, FP .8, TP .7 of lesion B; image 1: TP .6
    b = [50., 50., 59., 59.]
    d = [dets((GT, .9), (FAR, .8), (b, .7)), dets((GT, .6))]
    g = [np.array([GT, b]), np.array([GT])]
    at = image_froc_at_fp(d, g, fp_rate=0.)
    assert at.hits.tolist() == [1, 0] and at.fps.tolist() == [0, 0]
    assert at.num_gts.tolist() == [2, 1] and at.score_thr == .9
    np.testing.assert_array_equal(at.sensitivity(), [0.5, 0.])
    at = image_froc_at_fp(d, g, fp_rate=0.5)
    assert at.hits.tolist() == [2, 1] and at.fps.tolist() == [1, 0]
    np.testing.assert_array_equal(at.sensitivity(), [1., 1.])
    # a duplicate hit is no new hit
    d[1] = dets((GT, .6), (GT, .5))
    at = image_froc_at_fp(d, g, fp_rate=0.5)
    assert at.hits.tolist() == [2, 1] and at.score_thr == .5


def test_score_ties_keep_the_input_order():
    # equal scores: the first listed comes first in the global order
    g = [np.array([GT])]
    fp_first = image_froc_at_fp([dets((FAR, .5), (GT, .5))], g, fp_rate=0.)
    assert fp_first.hits.tolist() == [0]
    tp_first = image_froc_at_fp([dets((GT, .5), (FAR, .5))], g, fp_rate=0.)
    assert tp_first.hits.tolist() == [1] and tp_first.score_thr == .5


def test_empty_images_and_lists():
    at = image_froc_at_fp([NO_DET, NO_DET, dets((FAR, .3))], [[], NO_GT, []],
                          fp_rate=1.)
    assert at.hits.tolist() == [0, 0, 0] and at.fps.tolist() == [0, 0, 1]
    assert at.num_gts.tolist() == [0, 0, 0]
    assert at.num_gts.dtype == np.int64
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert np.isnan(at.sensitivity()).all()
    # no detection at all: nothing kept, every lesion missed
    at = image_froc_at_fp([NO_DET], [np.array([GT, FAR])])
    assert at.hits.tolist() == [0] and at.num_gts.tolist() == [2]
    assert at.score_thr == float('inf')


def test_sensitivity_of_zero_one_and_two_lesions():
    res = ImageFROC(hits=np.array([0, 1, 1, 2]),
                    num_gts=np.array([0, 1, 2, 2]),
                    fps=np.zeros(4, np.int64),
                    score_thr=.5,
                    fp_rate=4.)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        sens = res.sensitivity()
    assert np.isnan(sens[0])
    assert sens[1:].tolist() == [1., 0.5, 1.]


@pytest.mark.parametrize('rate', [-1e-9, -1., float('inf'), float('nan')])
def test_rejected_rates(rate):
    with pytest.raises(ValueError) as err:
        image_froc_at_fp([dets((GT, .9))], [np.array([GT])], fp_rate=rate)
    assert str(err.value) == f'fp_rate must be finite and >= 0, got {rate}'


def test_coco_style_map_thresholds_and_no_legacy_pixel():
    gt = np.array([[0., 0., 10., 10.]])
    assert image_coco_style_map(dets(([0., 0., 10., 10.], .9)), gt) == 1.0
    # IoU 0.62 without the + 1 (0.65 with it): 0.50, 0.55 and 0.60 of the
    # ten thresholds
    det = dets(([0., 0., 10., 6.2], .9))
    assert image_coco_style_map(det, gt) == pytest.approx(0.3)
    assert image_coco_style_map(det, gt, None) == pytest.approx(0.3)
    assert image_coco_style_map(dets((FAR, .9)), gt) == 0.0
    assert image_coco_style_map(det, NO_GT) == 0.0
    assert isinstance(image_coco_style_map(det, gt), float)


def test_coco_style_map_ignored_lesions():
    gt = np.array([[0., 0., 10., 10.]])
    ignored = np.array([[100., 100., 110., 110.]])
    det = dets(([100., 100., 110., 110.], .9), ([0., 0., 10., 10.], .8))
    # the first-ranked box on the ignored lesion is neither TP nor FP
    assert image_coco_style_map(det, gt, ignored) == 1.0
    # without the ignore: an FP first, precision 1/2 at full recall
    assert image_coco_style_map(det, gt) == pytest.approx(0.5)
    assert image_coco_style_map(det, gt, NO_GT) == pytest.approx(0.5)
