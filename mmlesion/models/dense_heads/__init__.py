# Copyright (c) mmlesion contributors. All rights reserved.
from .lesion_seg_head import LesionSegHead  # noqa: F401
