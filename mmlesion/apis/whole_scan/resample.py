# Copyright (c) mmlesion contributors. All rights reserved.
"""Resample a scan to the detector's slice interval and pixel spacing, so
that each slice's neighbours are the next slices (linear, torch's trilinear
kernel on SimpleITK's grid:
:func:`~mmlesion.datasets.volumes.resampling.resample_volume_torch`;
``backend='sitk'`` for SimpleITK's filter)."""
from mmlesion.datasets.volumes import CTVolume, resample_volume

from .settings import VolumeInferenceSettings


def prepare_volume(volume: CTVolume,
                   settings: VolumeInferenceSettings,
                   backend: str = 'torch') -> CTVolume:
    """Resample a scan to the detector's slice interval and pixel spacing.

    Args:
        volume (CTVolume): the scan.
        settings (VolumeInferenceSettings): the detector's convention.
        backend (str): ``'torch'`` (default; SimpleITK's grid and values
            within :data:`~mmlesion.datasets.volumes.resampling.
            TORCH_LINEAR_ATOL_HU`) or ``'sitk'`` (SimpleITK's filter).

    Returns:
        CTVolume: the resampled scan (linear, -1024 outside).
    """
    ps = settings.pixel_spacing
    return resample_volume(volume, (settings.interval_mm, ps, ps),
                           backend=backend)
