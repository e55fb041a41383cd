# Copyright (c) mmlesion contributors. All rights reserved.
from . import hooks  # noqa: F401
