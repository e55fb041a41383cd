# Copyright (c) mmlesion contributors. All rights reserved.
from .bbox_3d import (BboxOverlaps3D, bbox3d_to_zyxd, bbox_overlaps_3d,  # noqa
                      nms_3d, zyxd_to_bbox3d)

__all__ = [
    'BboxOverlaps3D', 'bbox3d_to_zyxd', 'bbox_overlaps_3d', 'nms_3d',
    'zyxd_to_bbox3d'
]
