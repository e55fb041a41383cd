# Copyright (c) mmlesion contributors. All rights reserved.
from . import (backbones, dense_heads, detectors, layers,  # noqa: F401
               necks, task_modules)
