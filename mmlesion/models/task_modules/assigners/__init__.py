# Copyright (c) mmlesion contributors. All rights reserved.
from .ignore_aware_max_iou_assigner import \
    IgnoreAwareMaxIoUAssigner  # noqa: F401
