# Copyright (c) mmlesion contributors. All rights reserved.
"""DeepLesion's slices: 16-bit PNGs holding ``HU + 32768``, read in HU
(refusing a PNG written without the offset) and written."""
import os.path as osp

import cv2
import numpy as np

from mmlesion.utils.input_files import check_regular_file
from mmlesion.utils.writing.atomic import atomic_save_with

#: DeepLesion PNGs store HU + 32768 as uint16.
HU_OFFSET = 32768


#: No CT value lies this far from 0 HU (air is -1000, DeepLesion pads the
#: outside of the field of view with -2048 or -3024, dense metal reaches a
#: few thousand): used to recognise PNGs written without the offset.
IMPLAUSIBLE_HU = 10000.0


def read_hu_png(path: str) -> np.ndarray:
    """Read one DeepLesion slice as float32 HU (``value - 32768``).

    Args:
        path (str): a 16-bit single-channel PNG.

    Returns:
        np.ndarray: float32 (H, W) image in HU.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not a regular file (a FIFO would block the
            reader forever), cannot be decoded, is not 16-bit
            single-channel, or looks written without the +32768 offset
            (the message names the file and its value range).
    """
    if not osp.exists(path):
        raise FileNotFoundError(f'CT slice not found: {path}')
    check_regular_file(path, 'CT slice')
    return _decode_hu_png(path)


def _decode_hu_png(path: str) -> np.ndarray:
    """:func:`read_hu_png` once the file is known to be a regular file
    (one decode, no second round of file checks)."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'CT slice not found: {path}')
        raise ValueError(f'{path}: cannot be decoded as an image')
    if img.dtype != np.uint16 or img.ndim != 2:
        raise ValueError(
            f'{path}: expected a 16-bit single-channel PNG (DeepLesion '
            f'format, HU = value - 32768), got dtype {img.dtype} with shape '
            f'{img.shape}')
    return png_values_to_hu(img, path)


def png_values_to_hu(raw: np.ndarray, source: str = '<array>') -> np.ndarray:
    """Turn stored DeepLesion PNG values (uint16) into float32 HU.

    Args:
        raw (np.ndarray): uint16 values, ``HU + 32768``.
        source (str): the file (or description) named in errors.

    Returns:
        np.ndarray: float32 HU, same shape.

    Raises:
        ValueError: more than half of the pixels lie beyond
            :data:`IMPLAUSIBLE_HU` (a real slice has at most its padding
            outside the field of view there, about a fifth): values
            written without the offset.
    """
    if raw.dtype == np.uint16:
        # |value - 32768| > 10000 counted on the stored integers: with
        # uint16 wrap-around, value - 22768 exceeds 20000 exactly when value
        # lies below 22768 or above 42768 (one pass, no float temporaries)
        low = np.uint16(HU_OFFSET - IMPLAUSIBLE_HU)
        beyond = np.count_nonzero(
            raw - low > np.uint16(2 * IMPLAUSIBLE_HU))
        implausible = beyond / raw.size if raw.size else 0.
        hu = raw.astype(np.float32)
        hu -= np.float32(HU_OFFSET)  # exact: integers below 2**24
    else:
        hu = raw.astype(np.float32) - HU_OFFSET
        implausible = float(np.mean(np.abs(hu) > IMPLAUSIBLE_HU))
    if implausible > 0.5:
        raise ValueError(
            f'{source}: {implausible:.0%} of the pixels are beyond '
            f'+-{IMPLAUSIBLE_HU:g} HU once the DeepLesion offset is removed '
            f'(stored values {int(raw.min())}..{int(raw.max())}, i.e. '
            f'{hu.min():g}..{hu.max():g} HU): this 16-bit PNG looks written '
            'without the +32768 offset and would load as a blank image. '
            'Write slices as (HU + 32768).astype(np.uint16).')
    return hu


def write_hu_png(path: str, hu: np.ndarray) -> None:
    """Write an HU slice as a DeepLesion 16-bit PNG (``HU + 32768``).

    Values are rounded to whole HU and clipped to the uint16 range.

    Args:
        path (str): output PNG (its folder must exist).
        hu (np.ndarray): (H, W) image in HU.
    """
    png = np.clip(np.rint(hu) + HU_OFFSET, 0, 65535).astype(np.uint16)
    atomic_save_with(path, lambda p: cv2.imwrite(p, png))
