# Copyright (c) mmlesion contributors. All rights reserved.
from .de_anchor_optimizer import AnchorConfig, DEAnchorOptimizer  # noqa: F401
