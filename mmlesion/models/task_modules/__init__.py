# Copyright (c) mmlesion contributors. All rights reserved.
from .assigners import IgnoreAwareMaxIoUAssigner  # noqa: F401
from .prior_generators import CubeAnchorGenerator3D  # noqa: F401
