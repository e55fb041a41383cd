# Copyright (c) mmlesion contributors. All rights reserved.
from .average_precision import ap_at_iou  # noqa: F401
from .froc import (  # noqa: F401
    DEFAULT_FP_RATES, DEFAULT_MEAN_RATES, DIAMETER_BINS, LESION_TYPE_NAMES,
    FROCCurve, FROCMatch, diameter_subsets, filter_gts, froc_curve,
    lesion_type_subsets, match_detections, sens_at_fp)
from .box_stacking import StackSettings, stack_slice_boxes  # noqa: F401
from .luna16 import (LUNA16_FP_RATES, LUNA16Candidates,  # noqa: F401
                     LUNA16Findings, LUNA16Options, LUNA16Result,
                     evaluate_luna16, match_luna16, read_candidates_csv,
                     read_findings_csv, read_seriesuids_csv,
                     write_candidates_csv)
from .froc_3d import (LENS_FP_RATES, ManualSubVolume,  # noqa: F401
                      continuous_to_inclusive, load_deeplesion_manual_3d)
from .per_image import (COCO_IOU_THRS, ImageFROC,  # noqa: F401
                        image_coco_style_map, image_froc_at_fp)
