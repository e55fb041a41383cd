# Copyright (c) mmlesion contributors. All rights reserved.
from .lens_bbox_head import LENSBBoxHead  # noqa: F401
