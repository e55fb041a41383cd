# Copyright (c) mmlesion contributors. All rights reserved.
from .froc_metric import FROCMetric  # noqa: F401
