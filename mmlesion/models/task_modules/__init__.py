# Copyright (c) mmlesion contributors. All rights reserved.
from .coders import DeltaZYXDBBoxCoder  # noqa: F401
from .prior_generators import CubeAnchorGenerator3D  # noqa: F401
