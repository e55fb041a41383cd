# Copyright (c) mmlesion contributors. All rights reserved.
from . import hooks, runner  # noqa: F401
