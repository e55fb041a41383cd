# Copyright (c) mmlesion contributors. All rights reserved.
"""Read a scan for whole-scan inference, refusing one whose resampling
would allocate gigavoxels (:func:`check_resampled_size`) and warning of
one whose HU are approximate (:func:`lossy_compression`)."""
import logging
import os
import os.path as osp
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
from mmengine.logging import print_log

from mmlesion.datasets.volumes import (CTVolume, list_dicom_series,
                                       load_ct_volume)

from .settings import VolumeInferenceSettings


class ScanSource(NamedTuple):
    """A scan to read: its file or DICOM folder and, for a folder holding
    several series, the one to read."""
    path: str
    series_uid: Optional[str] = None


def read_scan(scan: str,
              settings: VolumeInferenceSettings,
              series_uid: Optional[str] = None) -> CTVolume:
    """Load a scan and check that it can be resampled to ``settings``.

    Args:
        scan (str): NIfTI / .mhd / DICOM folder (:func:`load_ct_volume`).
        settings (VolumeInferenceSettings): the detector's convention and
            the input checks relaxed (``scan_checks``).
        series_uid (str, optional): the DICOM series of a folder with
            several.

    Returns:
        CTVolume: the scan.

    Raises:
        ValueError: an unreadable scan, or one too large once resampled.
    """
    volume = load_ct_volume(scan, series_uid=series_uid,
                            scan_checks=settings.scan_checks)
    check_resampled_size(volume, settings, scan)  # before any allocation
    lossy = lossy_compression(volume)
    if lossy:
        volume.meta['lossy_compression'] = lossy
        print_log(f'{scan}: {lossy}', logger='current',
                  level=logging.WARNING)
    return volume


#: Transfer syntaxes that are lossy whatever the files say (DCT JPEG).
_LOSSY_SYNTAXES = ('1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51')


def _series_files(volume: CTVolume) -> List[str]:
    """The DICOM files a volume was read from (those of its series in its
    folder), none for another format."""
    meta = volume.meta
    if meta.get('format') == 'dicom':
        return [str(meta['path'])]
    first = meta.get('first_file')
    if meta.get('format') != 'dicom_series' or not first:
        return []
    if meta.get('num_files', 1) == 1:
        return [first]
    folder = osp.dirname(first)
    return [osp.join(folder, n) for n in sorted(os.listdir(folder))]


def lossy_compression(volume: CTVolume) -> Optional[str]:
    """Why a DICOM scan's HU are approximate: files of its series say
    their pixels were lossy-compressed once (LossyImageCompression
    (0028,2110) ``01``, PS3.3 C.7.6.1.1.5) or are in a lossy JPEG transfer
    syntax; None for any other scan."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import UID
    lossy, total, said = 0, 0, set()
    for path in _series_files(volume):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (OSError, InvalidDicomError):
            continue  # not a file of the series (the reader said which)
        if volume.series_uid and str(ds.get('SeriesInstanceUID', '')) \
                != volume.series_uid:
            continue
        total += 1
        syntax = str(getattr(ds.file_meta, 'TransferSyntaxUID', ''))
        if str(ds.get('LossyImageCompression', '')).strip() == '01' or \
                syntax in _LOSSY_SYNTAXES:
            lossy += 1
            said.update(f'{k} {v}' for k, v in (
                ('ratio', ds.get('LossyImageCompressionRatio')),
                ('method', ds.get('LossyImageCompressionMethod')),
                ('transfer syntax', UID(syntax).name
                 if syntax in _LOSSY_SYNTAXES else None)) if v)
    if not lossy:
        return None
    return (f'{lossy} of its {total} DICOM files lossy-compressed '
            f'(LossyImageCompression 01{"; " if said else ""}'
            f'{"; ".join(sorted(said))}): its HU are approximate, and so '
            'are the findings')


def scan_series_uid(volume: CTVolume) -> str:
    """The series a scan's results name (``seriesuid`` of the LUNA16
    candidates): the DICOM series UID, the one series of a DICOM folder,
    else the file name without its extensions (``'scan'`` without one)."""
    path = volume.meta.get('path')
    series_uid = volume.series_uid
    if series_uid is None and volume.meta.get('format') == 'dicom_series':
        uids = list_dicom_series(path)  # the folder's one series
        series_uid = uids[0] if len(uids) == 1 and uids[0] else None
    if series_uid is None:  # NIfTI: the file name without extensions
        series_uid = Path(str(path)).name.split('.')[0] if path else 'scan'
    return series_uid


#: Most voxels a scan may be resampled to (``MMLESION_MAX_VOXELS`` in the
#: environment overrides it): 2**30, 4 GiB as float32, about 13 times a
#: 512 x 512 x 300 chest CT at 0.8 x 0.8 x 2 mm.
MAX_RESAMPLED_VOXELS = 2**30
ENV_MAX_VOXELS = 'MMLESION_MAX_VOXELS'
_SPACING_SOURCES = dict(argument='--pixel-spacing',
                        ResampleToSpacing="the config's ResampleToSpacing",
                        checkpoint="the checkpoint's record of its "
                        'training data',
                        default='the default pixel spacing')


def check_resampled_size(volume: CTVolume,
                         settings: VolumeInferenceSettings,
                         scan: str = 'scan') -> Tuple[int, int, int]:
    """Refuse a resampling that would allocate gigavoxels (e.g. for
    ``--pixel-spacing 0.001``).

    Args:
        volume (CTVolume): the loaded scan.
        settings (VolumeInferenceSettings): the detector's convention and
            the input checks relaxed (``scan_checks``).
        scan (str): named in the error.

    Returns:
        tuple[int, int, int]: the resampled shape (z, y, x).

    Raises:
        ValueError: naming the option (``--pixel-spacing``, the config's
            ``interval_mm`` / ``ResampleToSpacing``), the size and the
            limit.
    """
    limit = float(os.environ.get(ENV_MAX_VOXELS) or MAX_RESAMPLED_VOXELS)
    target = np.array([settings.interval_mm, settings.pixel_spacing,
                       settings.pixel_spacing], dtype=np.float64)
    extent = np.asarray(volume.shape_zyx, np.float64) * np.asarray(
        volume.spacing_zyx, np.float64)
    with np.errstate(over='ignore', divide='ignore'):
        size = np.maximum(np.round(extent / target), 1)
        total = float(np.prod(size))
    if np.isfinite(total) and total <= limit:
        return tuple(int(v) for v in size)
    ps_source = _SPACING_SOURCES.get(settings.pixel_spacing_source,
                                     settings.pixel_spacing_source)
    # the option that grows the scan most is the likely culprit
    growth = np.asarray(volume.spacing_zyx, np.float64) / target
    culprit = (f'interval_mm {settings.interval_mm} (the config\'s '
               'LoadDeepLesionSlices)' if growth[0] > growth[1:].max()
               else f'{ps_source} {settings.pixel_spacing}')
    shape = ' x '.join(f'{v:.3g}' for v in size)
    raise ValueError(
        f'{scan}: resampling its {volume.shape_zyx} voxels of '
        f'{tuple(round(float(v), 3) for v in volume.spacing_zyx)} mm to '
        f'{settings.interval_mm} mm slices at {settings.pixel_spacing} '
        f'mm/px would make {shape} = {total:.3g} voxels '
        f'({total * 4 / 2**30:.3g} GiB as float32), more than the limit of '
        f'{limit:.3g} ({ENV_MAX_VOXELS}); check {culprit}')
