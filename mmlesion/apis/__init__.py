# Copyright (c) mmlesion contributors. All rights reserved.
"""High-level APIs: running trained detectors on CT scans."""
from .det_inferencer import LesionDetInferencer  # noqa: F401
from .detector_loader import (DetectorLoadSettings, LoadedDetector,
                              init_lesion_detector)
from .hard_region_mining import (find_hard_regions,  # noqa: F401
                                 training_scans_cfg)
from .lens_eval_3d import Lens3DEvalSettings, evaluate_lens_3d
from .lens_fpr_proposals import make_fpr_proposals  # noqa: F401
from .lens_fpr_rescore import (load_fpr_model,  # noqa: F401
                               rescore_findings_with_fpr)
from .series_inference import (iter_series_slices, load_lens_and_train_set,
                               predict_series_3d, set_lens_experts)
from .whole_scan import (Box2D, DetectionSettings, Finding,
                         RecistMeasurement, RunSettings, ScanGeometry,
                         ScanResult, VolumeInferenceSettings, detect_slices,
                         infer_volume, prepare_volume, run_batch_inference,
                         run_volume_inference, volume_settings_from_config,
                         write_volume_results)

__all__ = [
    'LesionDetInferencer', 'init_lesion_detector', 'DetectorLoadSettings',
    'LoadedDetector', 'find_hard_regions', 'training_scans_cfg',
    'VolumeInferenceSettings', 'DetectionSettings', 'RunSettings', 'Finding',
    'ScanResult', 'Box2D', 'RecistMeasurement', 'ScanGeometry',
    'detect_slices', 'infer_volume', 'prepare_volume', 'run_volume_inference',
    'run_batch_inference',
    'volume_settings_from_config', 'write_volume_results',
    'iter_series_slices', 'load_lens_and_train_set', 'predict_series_3d',
    'make_fpr_proposals', 'rescore_findings_with_fpr', 'load_fpr_model',
    'evaluate_lens_3d', 'Lens3DEvalSettings', 'set_lens_experts'
]
