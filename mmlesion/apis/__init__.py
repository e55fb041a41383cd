# Copyright (c) mmlesion contributors. All rights reserved.
"""Inference: a trained detector built and loaded
(:func:`init_lesion_detector`, the one loader), run on DeepLesion slices
(:class:`LesionDetInferencer`), whole DeepLesion series and whole CT
scans (:mod:`.whole_scan`). The workflows that train, make training data
or evaluate with a model sit above: :mod:`mmlesion.protocols` and a
method's own (``mmlesion/methods/``)."""
from .det_inferencer import LesionDetInferencer  # noqa: F401
from .detector_loader import (DetectorLoadSettings, LoadedDetector,
                              init_lesion_detector)
from .series_inference import iter_series_slices, predict_series_3d
from .whole_scan import (Box2D, DetectionSettings, Finding,
                         RecistMeasurement, RunSettings, ScanGeometry,
                         ScanResult, VolumeInferenceSettings, detect_slices,
                         infer_volume, prepare_volume, run_volume_inference,
                         volume_settings_from_config, write_volume_results)

__all__ = [
    'LesionDetInferencer', 'init_lesion_detector', 'DetectorLoadSettings',
    'LoadedDetector',
    'VolumeInferenceSettings', 'DetectionSettings', 'RunSettings', 'Finding',
    'ScanResult', 'Box2D', 'RecistMeasurement', 'ScanGeometry',
    'detect_slices', 'infer_volume', 'prepare_volume', 'run_volume_inference',
    'volume_settings_from_config', 'write_volume_results',
    'iter_series_slices', 'predict_series_3d'
]
