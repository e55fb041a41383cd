# Copyright (c) mmlesion contributors. All rights reserved.
from . import transforms, volumes  # noqa: F401
from .deeplesion.dataset import DeepLesionDataset  # noqa: F401
from .deeplesion.dl_info import DLInfoRecord, parse_dl_info  # noqa: F401
from .volumes.dataset import (CTVolumeDataset,  # noqa: F401
                              CrossValVolumeDataset)
