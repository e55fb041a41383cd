# Copyright (c) mmlesion contributors. All rights reserved.
"""The dataset converter (CT scans with label masks or a box CSV, and the
public releases as its presets) to the common volume annotation file, and
the 2D export in DeepLesion's release layout."""
from .common import ConvertedVolume, assign_split
from .convert import ConvertSettings, convert_dataset
from .deeplesion_export import (DeepLesionExporter, box_slice_boxes,
                                sphere_slice_boxes)
from .mask_boxes import check_label_map, mask_to_boxes_3d
from .presets import PRESETS

__all__ = [
    'ConvertedVolume', 'assign_split', 'ConvertSettings', 'convert_dataset',
    'DeepLesionExporter', 'box_slice_boxes', 'sphere_slice_boxes',
    'check_label_map', 'mask_to_boxes_3d', 'PRESETS'
]
