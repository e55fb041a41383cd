# Copyright (c) mmlesion contributors. All rights reserved.
from . import bbox_heads  # noqa: F401
