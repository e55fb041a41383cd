# Copyright (c) mmlesion contributors. All rights reserved.
from . import transforms, volumes  # noqa: F401
from .deeplesion.dataset import DeepLesionDataset  # noqa: F401
from .deeplesion.dl_info import DLInfoRecord, parse_dl_info  # noqa: F401
from .volumes.dataset import (CTVolumeDataset,  # noqa: F401
                              CrossValVolumeDataset)
from .lens.batch_sampler import LENSDatasetBatchSampler  # noqa: F401
from .lens.fpr_patches import LENSFPRPatchDataset  # noqa: F401
from .lens.mined_dataset import DeepLesionMinedDataset  # noqa: F401
from .lens.multi_dataset import LENSMultiDataset  # noqa: F401
