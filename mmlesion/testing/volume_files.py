# Copyright (c) mmlesion contributors. All rights reserved.
"""Small CT files written with SimpleITK for tests (DICOM series, .mhd,
NIfTI with a label map)."""
import contextlib
import locale
import os
import os.path as osp
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import SimpleITK as sitk


@contextlib.contextmanager
def keep_locale() -> Iterator[None]:
    """Restore the process locale afterwards.

    SimpleITK's GDCM writer sets ``LC_CTYPE`` to ``"C"``: every later
    ``open()`` without an encoding then reads and writes ASCII, and a text
    with ``±`` or ``§`` fails far away from the DICOM test that caused it.
    """
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


@dataclass(frozen=True)
class SeriesLayout:
    """Where the slices of :func:`write_dicom_series` lie, and what they
    are.

    Args:
        spacing_xyz (sequence[float]): pixel spacing and slice interval.
        origin_xyz (sequence[float]): position of the first slice.
        modality (str): Modality tag.
        z_positions (sequence[float], optional): z of each slice's
            ImagePositionPatient (default: evenly spaced from the origin).
    """
    spacing_xyz: Sequence[float] = (0.5, 0.5, 2.5)
    origin_xyz: Sequence[float] = (0.0, 0.0, 0.0)
    modality: str = 'CT'
    z_positions: Optional[Sequence[float]] = None


def write_dicom_series(folder: str,
                       series_uid: str,
                       array_zyx: Optional[np.ndarray] = None,
                       layout: SeriesLayout = SeriesLayout()) -> None:
    """Write one DICOM file per slice of an int16 array (HU, intercept 0).

    Args:
        folder (str): output folder (created).
        series_uid (str): SeriesInstanceUID (also the SOP UID prefix).
        array_zyx (np.ndarray, optional): default: 3 slices of 4 x 5 with
            value ``10 * z``.
        layout (SeriesLayout): spacing, origin, modality, slice positions.
    """
    spacing_xyz, origin_xyz, modality, z_positions = (
        layout.spacing_xyz, layout.origin_xyz, layout.modality,
        layout.z_positions)
    if array_zyx is None:
        array_zyx = np.stack(
            [np.full((4, 5), 10 * k, dtype=np.int16) for k in range(3)])
    os.makedirs(folder, exist_ok=True)
    with keep_locale():
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        for k, plane in enumerate(np.asarray(array_zyx, dtype=np.int16)):
            sl = sitk.GetImageFromArray(plane)
            sl.SetSpacing(tuple(spacing_xyz[:2]))
            x0, y0, z0 = origin_xyz
            z = z0 + spacing_xyz[2] * k if z_positions is None else \
                z_positions[k]
            tags = {
                '0008|0060': modality,
                '0020|000e': series_uid,
                '0020|000d': '1.2.826.0.1.3680043.2.1125.1',
                '0020|0052': f'{series_uid}.0',  # FrameOfReferenceUID
                '0008|0018': f'{series_uid}.{k + 1}',
                '0020|0032': f'{x0}\\{y0}\\{z}',
                '0020|0037': '1\\0\\0\\0\\1\\0',
                '0020|0013': str(k + 1),
                '0028|0030': f'{spacing_xyz[1]}\\{spacing_xyz[0]}',
                '0028|1054': 'HU',  # GDCM writes 'US' (not HU) otherwise
            }
            for key, value in tags.items():
                sl.SetMetaData(key, value)
            writer.SetFileName(osp.join(folder, f'{series_uid}_{k}.dcm'))
            writer.Execute(sl)


def write_volume(path: str,
                 array_zyx: np.ndarray,
                 spacing_xyz: Sequence[float] = (0.7, 0.7, 2.0),
                 origin_xyz: Sequence[float] = (-100.0, -80.0, -300.0),
                 direction: Optional[Sequence[float]] = None) -> str:
    """Write an array as .mhd (+ .raw) or NIfTI with the given geometry."""
    img = sitk.GetImageFromArray(np.asarray(array_zyx))
    img.SetSpacing(tuple(float(s) for s in spacing_xyz))
    img.SetOrigin(tuple(float(o) for o in origin_xyz))
    if direction is not None:
        img.SetDirection(tuple(direction))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    sitk.WriteImage(img, path)
    return path
