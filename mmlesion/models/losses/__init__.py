# Copyright (c) mmlesion contributors. All rights reserved.
from .adaptive_focal_loss import AdaptiveFocalLoss  # noqa: F401
from .ohem_binary_loss import OHEMBinaryLoss  # noqa: F401
