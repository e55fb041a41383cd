# Copyright (c) mmlesion contributors. All rights reserved.
from .froc_metric import FROCMetric  # noqa: F401
from .froc_3d_metric import FROC3DMetric  # noqa: F401
