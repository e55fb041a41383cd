# Copyright (c) mmlesion contributors. All rights reserved.
from . import transforms  # noqa: F401
