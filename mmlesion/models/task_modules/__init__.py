# Copyright (c) mmlesion contributors. All rights reserved.
from .prior_generators import CubeAnchorGenerator3D  # noqa: F401
