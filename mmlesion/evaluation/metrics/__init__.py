# Copyright (c) mmlesion contributors. All rights reserved.
from .froc_metric import FROCMetric  # noqa: F401
from .froc_3d_metric import FROC3DMetric  # noqa: F401
from .luna16_metric import LUNA16Metric  # noqa: F401
