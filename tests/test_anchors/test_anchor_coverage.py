# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest

from mmlesion.anchors.anchor_config import AnchorConfig
from mmlesion.anchors.anchor_coverage import anchor_coverage


def test_anchor_coverage_known_values():
    default = AnchorConfig.retinanet_default()
    shapes = default.shapes()
    # boxes equal to anchors: IoU 1; a 1:8 sliver: no anchor reaches 0.5
    wh = np.concatenate([shapes[:3], [[8., 64.]]])
    cov = anchor_coverage(wh, dict(default=default))['default']
    assert cov['num_boxes'] == 4
    assert cov['frac_iou_ge_thr'] == pytest.approx(.75)
    assert .75 < cov['mean_iou'] < 1.
    assert cov['median_iou'] == pytest.approx(1.)
    assert cov['ratios'] == [round(r, 4) for r in default.ratios]
    thin = AnchorConfig(default.strides, default.sizes, (.125, 1., 8.),
                        default.scales)
    both = anchor_coverage(wh, dict(default=default, thin=thin))
    assert both['thin']['frac_iou_ge_thr'] > both['default'][
        'frac_iou_ge_thr']
    with pytest.raises(ValueError, match='no boxes'):
        anchor_coverage(np.zeros((0, 2)), dict(default=default))
