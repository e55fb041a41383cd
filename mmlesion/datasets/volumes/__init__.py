# Copyright (c) mmlesion contributors. All rights reserved.
"""CT volumes: reading, geometry, resampling (see :mod:`.ct_volume` for the
coordinate conventions shared by every 3D component)."""
from .ct_volume import CTVolume
from .loading import list_dicom_series, load_ct_volume
from .resampling import map_points_zyx, resample_boxes_3d, resample_volume

__all__ = [
    'CTVolume', 'list_dicom_series', 'load_ct_volume', 'map_points_zyx',
    'resample_boxes_3d', 'resample_volume'
]
