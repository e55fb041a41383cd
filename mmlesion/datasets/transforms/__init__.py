# Copyright (c) mmlesion contributors. All rights reserved.
from .affine import MultiSliceRandomAffine  # noqa: F401
from .loading import (LoadDeepLesionSlices, LoadRecistPoints,  # noqa: F401
                      LoadVolumeSlices)
from .inference_loading import LesionInferencerLoader  # noqa: F401
from .lesion_patch_crop import LesionPatchCrop  # noqa: F401
from .recist_grabcut import RecistToMask  # noqa: F401
from .recist_grabcut_ops import (GrabCutSettings, box_ellipse,  # noqa: F401
                                 key_slice_uint8, paste_crop,
                                 recist_grabcut_mask)
from .spacing import ClipBlackBorder, ResampleToSpacing  # noqa: F401
from .windowing import WindowHU  # noqa: F401
from .volume_loading import LoadCTVolume  # noqa: F401
from .volume_crop import RandomCrop3D  # noqa: F401
from .volume_formatting import PackVolumeDetInputs  # noqa: F401
from .volume_hard_crop import HardRegionRandomCrop3D  # noqa: F401
from .volume_lung_crop import CropToLungs  # noqa: F401
from .volume_flip_rot import RandomFlip3D, RandomRot90Axial  # noqa: F401
from .volume_zoom import RandomZoom3D  # noqa: F401
