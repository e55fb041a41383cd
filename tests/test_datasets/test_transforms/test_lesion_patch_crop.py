# Copyright (c) mmlesion contributors. All rights reserved.
"""LesionPatchCrop: lesion-centred patches hold their lesion, background
patches lie anywhere, ignored lesions are never the centre, boxes follow
the crop as mmdet's RandomCrop moves them."""
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes

from mmlesion.datasets.transforms import LesionPatchCrop


def _results(boxes, ignore=None):
    img = np.arange(300 * 200 * 3, dtype=np.float32).reshape(300, 200, 3)
    return dict(img=img, img_shape=(300, 200),
                gt_bboxes=HorizontalBoxes(np.asarray(boxes, np.float32)),
                gt_bboxes_labels=np.zeros(len(boxes), np.int64),
                gt_ignore_flags=np.asarray(
                    ignore if ignore is not None else [False] * len(boxes)))


def test_positive_patches_hold_the_lesion_with_its_margin():
    np.random.seed(0)
    crop = LesionPatchCrop(crop_size=(64, 48), pos_prob=1., margin=10)
    for _ in range(50):
        out = crop(_results([[150, 250, 170, 270]]))
        assert out['img'].shape == (48, 64, 3)
        assert out['crop_source'] == 'positive'
        (x1, y1, x2, y2), = out['gt_bboxes'].numpy()
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        assert 10 <= cx <= 63 - 10 and 10 <= cy <= 47 - 10
        # the pixels are the source image's at the crop's offset
        oy, ox = divmod(int(out['img'][0, 0, 0]) // 3, 200)
        assert (x1 + ox, y1 + oy) == (150, 250)


def test_background_patches_are_uniform_and_may_be_empty():
    np.random.seed(1)
    crop = LesionPatchCrop(crop_size=(64, 64), pos_prob=0.)
    empty = origins = 0
    for _ in range(200):
        out = crop(_results([[150, 250, 170, 270]]))
        assert out is not None and out['crop_source'] == 'random'
        empty += len(out['gt_bboxes']) == 0
        origins += int(out['img'][0, 0, 0]) // 3 // 200 < 118
    assert empty > 150  # a lesion in one corner: most patches miss it
    assert 60 < origins < 140  # the row offset uniform over 0..236


def test_ignored_lesions_are_never_the_centre_and_small_images_stay():
    np.random.seed(2)
    crop = LesionPatchCrop(crop_size=(64, 64), pos_prob=1., margin=8)
    for _ in range(30):
        out = crop(_results([[10, 10, 20, 20], [150, 250, 170, 270]],
                            ignore=[True, False]))
        kept = out['gt_bboxes'].numpy()[~out['gt_ignore_flags']]
        assert len(kept) == 1
    big = LesionPatchCrop(crop_size=(512, 512), pos_prob=1.)
    assert big(_results([[150, 250, 170, 270]]))['img'].shape == (300, 200,
                                                                   3)
    with pytest.raises(ValueError, match='pos_prob'):
        LesionPatchCrop(crop_size=(64, 64), pos_prob=1.5)
