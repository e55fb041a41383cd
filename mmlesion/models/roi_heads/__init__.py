# Copyright (c) mmlesion contributors. All rights reserved.
from . import bbox_heads  # noqa: F401
from .aggregated_fprn_head_3d import AggregatedFPRNHead3D  # noqa: F401
