# Copyright (c) mmlesion contributors. All rights reserved.
from . import backbones, detectors, task_modules  # noqa: F401
