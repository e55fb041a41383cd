# Copyright (c) mmlesion contributors. All rights reserved.
from .headline_log_processor import HeadlineLogProcessor  # noqa: F401
