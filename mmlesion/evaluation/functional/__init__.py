# Copyright (c) mmlesion contributors. All rights reserved.
from .average_precision import ap_at_iou  # noqa: F401
from .froc import (  # noqa: F401
    DEFAULT_FP_RATES, DEFAULT_MEAN_RATES, DIAMETER_BINS, LESION_TYPE_NAMES,
    FROCCurve, FROCMatch, diameter_subsets, filter_gts, froc_breakdowns,
    froc_curve, lesion_type_subsets, match_detections, mean_sens, sens_at_fp)
from .overlaps import aligned_legacy_overlaps, legacy_bbox_overlaps  # noqa
