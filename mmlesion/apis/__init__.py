# Copyright (c) mmlesion contributors. All rights reserved.
"""High-level APIs: running trained detectors on CT scans."""
from .volume_inference import (VolumeInferenceSettings, detect_slices,
                               infer_volume, prepare_volume,
                               run_volume_inference,
                               volume_settings_from_config,
                               write_volume_results)

__all__ = [
    'VolumeInferenceSettings', 'detect_slices', 'infer_volume',
    'prepare_volume', 'run_volume_inference', 'volume_settings_from_config',
    'write_volume_results'
]
