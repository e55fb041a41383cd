# Copyright (c) mmlesion contributors. All rights reserved.
from .uncropped import UncroppedFasterRCNN  # noqa: F401
