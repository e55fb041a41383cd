# Copyright (c) mmlesion contributors. All rights reserved.
from .adaptive_focal_loss import AdaptiveFocalLoss  # noqa: F401
