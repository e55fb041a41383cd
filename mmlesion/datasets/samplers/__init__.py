# Copyright (c) mmlesion contributors. All rights reserved.
from .lens_batch_sampler import LENSDatasetBatchSampler  # noqa: F401
