# Copyright (c) mmlesion contributors. All rights reserved.
from . import backbones, detectors, roi_heads, task_modules  # noqa: F401
