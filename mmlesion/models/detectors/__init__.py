# Copyright (c) mmlesion contributors. All rights reserved.
from .improved_retinanet import ImprovedRetinaNet  # noqa: F401
from .uncropped import UncroppedFasterRCNN  # noqa: F401
