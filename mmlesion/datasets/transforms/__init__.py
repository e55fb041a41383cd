# Copyright (c) mmlesion contributors. All rights reserved.
from .affine import MultiSliceRandomAffine  # noqa: F401
from .loading import LoadDeepLesionSlices, LoadRecistPoints  # noqa: F401
from .recist_grabcut import RecistToMask  # noqa: F401
from .spacing import ClipBlackBorder, ResampleToSpacing  # noqa: F401
from .windowing import WindowHU  # noqa: F401
from .volume_loading import LoadCTVolume  # noqa: F401
