# Copyright (c) mmlesion contributors. All rights reserved.
"""Write small DeepLesion-format tables (and blank key slices) for tests.

The rows follow the official ``DL_info.csv`` layout (18 columns, 1-based
pixel coordinates, box = RECIST extent padded by 5 px) so that
:func:`mmlesion.datasets.parse_dl_info` and ``DeepLesionDataset``
read them like the release.
"""
import csv
import os
import os.path as osp
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mmlesion.datasets.deeplesion.dl_info import DL_INFO_COLUMNS


def _fmt(values: Sequence[float]) -> str:
    return ', '.join(f'{float(v):.4f}'.rstrip('0').rstrip('.') or '0'
                     for v in values)


def lesion_row(patient: int,
               key_slice: int,
               center: Tuple[float, float],
               long_axis: float,
               short_axis: float,
               angle_deg: float = 0.0,
               split: int = 2,
               noisy: bool = False,
               image_size: int = 512,
               series: int = 1,
               lesion_type: int = 4) -> dict:
    """One ``DL_info.csv`` row for a lesion with the given RECIST axes.

    Args:
        patient (int): ``Patient_index``.
        key_slice (int): ``Key_slice_index``.
        center (tuple): 0-based ``(x, y)`` of the crossing of the diameters.
        long_axis (float): long diameter (px).
        short_axis (float): short diameter (px), perpendicular.
        angle_deg (float): direction of the long axis from +x.
        split (int): ``Train_Val_Test``.
        noisy (bool): ``Possibly_noisy``.
        image_size (int): square ``Image_size``.
        series (int): ``Series_ID``.
        lesion_type (int): ``Coarse_lesion_type``.

    Returns:
        dict: column -> text.
    """
    a = np.deg2rad(angle_deg)
    u = np.array([np.cos(a), np.sin(a)])
    v = np.array([-np.sin(a), np.cos(a)])
    c = np.asarray(center, dtype=np.float64) + 1.0  # 1-based in the file
    pts = np.stack([
        c - u * long_axis / 2, c + u * long_axis / 2, c - v * short_axis / 2,
        c + v * short_axis / 2
    ])
    box = np.concatenate([pts.min(0) - 5, pts.max(0) + 5])
    name = f'{patient:06d}_01_{series:02d}_{key_slice:03d}.png'
    return {
        'File_name': name,
        'Patient_index': str(patient),
        'Study_index': '1',
        'Series_ID': str(series),
        'Key_slice_index': str(key_slice),
        'Measurement_coordinates': _fmt(pts.reshape(-1)),
        'Bounding_boxes': _fmt(box),
        'Lesion_diameters_Pixel_': _fmt([long_axis, short_axis]),
        'Normalized_lesion_location': '0.5, 0.5, 0.5',
        'Coarse_lesion_type': str(lesion_type),
        'Possibly_noisy': '1' if noisy else '0',
        'Slice_range': f'{key_slice - 2}, {key_slice + 2}',
        'Spacing_mm_px_': '0.8, 0.8, 5',
        'Image_size': f'{image_size}, {image_size}',
        'DICOM_windows': '-175, 275',
        'Patient_gender': 'F',
        'Patient_age': '50',
        'Train_Val_Test': str(split),
    }


def write_dl_info_csv(path: str, rows: Iterable[dict]) -> str:
    """Write rows of :func:`lesion_row` with the official header (UTF-8)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(DL_INFO_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def write_key_slices(img_dir: str,
                     rows: Iterable[dict],
                     image: Optional[np.ndarray] = None) -> List[str]:
    """Write a 16-bit key-slice PNG for every distinct ``File_name``.

    Args:
        img_dir (str): the ``Images_png`` folder.
        rows (Iterable[dict]): rows of :func:`lesion_row`.
        image (np.ndarray, optional): HU image to store (default: -1000 HU
            everywhere, of the row's ``Image_size``).

    Returns:
        list[str]: the written paths.
    """
    import cv2
    paths = []
    for row in rows:
        name = row['File_name']
        series, key = name.rsplit('_', 1)
        path = osp.join(img_dir, series, key)
        if path in paths:
            continue
        size = int(row['Image_size'].split(',')[0])
        hu = np.full((size, size), -1000.0) if image is None else image
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, (np.asarray(hu) + 32768).astype(np.uint16))
        paths.append(path)
    return paths
