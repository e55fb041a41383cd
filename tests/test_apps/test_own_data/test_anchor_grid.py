# Copyright (c) mmlesion contributors. All rights reserved.
"""Positive anchors on the stride grid
(:mod:`mmlesion.apps.own_data.anchor_grid`)."""
import numpy as np
import pytest

from mmlesion.anchors.anchor_config import AnchorConfig
from mmlesion.apps.own_data.anchor_grid import grid_positives


def _square(stride, scale):
    return AnchorConfig((stride, ), (stride, ), (1., ), (scale, ))


def test_anchors_of_four_strides_reach_the_rpn_iou_off_the_grid():
    # a box the size of the anchors at offsets 0.5, 1.5, 2.5, 3.5 px per
    # axis in a 4 px cell: its nearest grid point lies 0.5 or 1.5 px off per
    # axis. A 16 px anchor (4 strides) overlaps it at >= 0.7 unless 1.5 px
    # off on both axes (14.5^2 / (2 * 16^2 - 14.5^2) = 0.697): 12 of 16
    # placements; an 8 px anchor (2 strides) only when 0.5 px off on both
    # (7.5^2 / (2 * 8^2 - 7.5^2) = 0.78; 7.5 * 6.5 gives 0.62): 4 of 16
    four = grid_positives(np.array([[16., 16.]]), _square(4, 4.))
    two = grid_positives(np.array([[8., 8.]]), _square(4, 2.))
    assert four.frac_with_positive == .75 and four.median_positives == 1
    assert two.frac_with_positive == .25 and two.median_positives == 0
    assert four.median_best_iou > two.median_best_iou
    # at IoU 0.45 every placement of the small box has one (6.5^2 / (2 *
    # 8^2 - 6.5^2) = 0.49 at worst)
    assert grid_positives(np.array([[8., 8.]]), _square(4, 2.),
                          .45).frac_with_positive == 1.


def test_no_boxes_refused():
    with pytest.raises(ValueError, match='grid_positives: no boxes'):
        grid_positives(np.zeros((0, 2)), _square(4, 4.))
