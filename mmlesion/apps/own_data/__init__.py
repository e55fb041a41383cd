# Copyright (c) mmlesion contributors. All rights reserved.
"""The dataset converter (CT scans with label masks or a box CSV, and the
public releases as its presets) to the common volume annotation file, the
2D export in DeepLesion's release layout, and the dataset planner
(``dataset_plan``, ``plan_*``: a config from the converted data's
fingerprint)."""
from .common import ConvertedVolume, assign_split  # noqa: F401
from .convert import ConvertSettings, convert_dataset  # noqa: F401
from .deeplesion_export import (DeepLesionExporter,  # noqa: F401
                                box_slice_boxes, sphere_slice_boxes)
from .mask_boxes import check_label_map, mask_to_boxes_3d  # noqa: F401
from .presets import PRESETS  # noqa: F401
