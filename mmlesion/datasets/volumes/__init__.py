# Copyright (c) mmlesion contributors. All rights reserved.
"""CT volumes: reading, geometry (:mod:`.ct_volume`), resampling, their
datasets and the hard-region file."""
from .annotation_file import (BOX_FORMAT, box_center_world,  # noqa: F401
                              box_from_world_sphere, load_annotation_file,
                              volume_entry, write_annotation_file)
from .ct_volume import CTVolume  # noqa: F401
from .cropping import crop_volume, mask_region  # noqa: F401
from .loading import (VolumeOptions, list_dicom_series,  # noqa: F401
                      load_ct_volume)
from .lung_mask import (LungMaskSettings, compute_lung_mask,  # noqa: F401
                        read_lung_mask)
from .resampling import resample_boxes_3d, resample_volume  # noqa: F401
