# Copyright (c) mmlesion contributors. All rights reserved.
"""CT volumes: reading, geometry (:mod:`.ct_volume`), resampling, their
datasets and the hard-region file."""
from .annotation_file import (BOX_FORMAT, box_center_world,
                              box_from_world_sphere, load_annotation_file,
                              volume_entry, write_annotation_file)
from .ct_volume import CTVolume
from .cropping import crop_volume, mask_region
from .loading import list_dicom_series, load_ct_volume
from .lung_mask import compute_lung_mask, read_lung_mask
from .resampling import resample_boxes_3d, resample_volume

__all__ = [
    'BOX_FORMAT', 'box_center_world', 'box_from_world_sphere',
    'load_annotation_file', 'volume_entry', 'write_annotation_file',
    'CTVolume', 'crop_volume', 'mask_region', 'compute_lung_mask',
    'read_lung_mask', 'list_dicom_series', 'load_ct_volume',
    'resample_boxes_3d', 'resample_volume'
]
