# Copyright (c) mmlesion contributors. All rights reserved.
from .dense_fpn import DenseFPN  # noqa: F401
