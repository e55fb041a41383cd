# Copyright (c) mmlesion contributors. All rights reserved.
"""Dataset converters (LUNA16, KiTS19, LiTS, NIH-LN) to the common volume
annotation file, and the 2D export in DeepLesion's release layout. The
CLIs are in ``tools/dataset_converters/``."""
from .common import ConvertedVolume, assign_split, run_conversion
from .deeplesion_export import (DeepLesionExporter, box_slice_boxes,
                                sphere_slice_boxes)
from .luna16 import (LunaFinding, convert_luna16, find_luna16_scans,
                     read_findings_by_series)
from .mask_boxes import check_label_map, mask_to_boxes_3d
from .segmentation_datasets import (convert_kits19, convert_lits,
                                    convert_nih_ln, find_kits19_cases,
                                    find_lits_cases, find_nih_ln_cases)

__all__ = [
    'ConvertedVolume', 'assign_split', 'run_conversion',
    'DeepLesionExporter', 'box_slice_boxes', 'sphere_slice_boxes',
    'LunaFinding', 'convert_luna16', 'find_luna16_scans',
    'read_findings_by_series',
    'check_label_map', 'mask_to_boxes_3d', 'convert_kits19', 'convert_lits',
    'convert_nih_ln',
    'find_kits19_cases', 'find_lits_cases', 'find_nih_ln_cases'
]
