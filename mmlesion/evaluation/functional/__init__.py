# Copyright (c) mmlesion contributors. All rights reserved.
from .froc import (  # noqa: F401
    DEFAULT_FP_RATES, DEFAULT_MEAN_RATES, DIAMETER_BINS, LESION_TYPE_NAMES,
    FROCCurve, FROCMatch, diameter_subsets, filter_gts, froc_breakdowns,
    froc_curve, lesion_type_subsets, match_detections, mean_sens, sens_at_fp)
from .overlaps import aligned_legacy_overlaps, legacy_bbox_overlaps  # noqa
from .box_stacking import findings_to_arrays, stack_slice_boxes  # noqa: F401
