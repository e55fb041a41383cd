# Copyright (c) mmlesion contributors. All rights reserved.
from . import functional, metrics  # noqa: F401
