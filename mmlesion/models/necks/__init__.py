# Copyright (c) mmlesion contributors. All rights reserved.
from .dense_fpn import DenseFPN  # noqa: F401
from .level_select_fpn import LevelSelectFPN  # noqa: F401
