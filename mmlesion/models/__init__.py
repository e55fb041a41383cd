# Copyright (c) mmlesion contributors. All rights reserved.
from . import (backbones, data_preprocessors, dense_heads,  # noqa: F401
               detectors, layers, losses, necks, roi_heads, task_modules)
