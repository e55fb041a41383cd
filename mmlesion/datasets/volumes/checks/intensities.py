# Copyright (c) mmlesion contributors. All rights reserved.
"""Is this volume a CT in Hounsfield units? A plausibility check.

A label map, an MR volume or a scanner's raw unsigned values read without
error and give plausible-looking but wrong detections. A CT in HU always
holds air (about -1000 HU); a label map holds a handful of integers, and
raw values or an MR have nothing below 0. So a volume with no voxel below
:data:`MIN_AIR_HU` is refused, named a label map where a sample holds at
most :data:`MAX_LABEL_VALUES` distinct integers. Integer voxels read with
the wrong byte order are noise that may pass that rule:
:func:`check_byte_order` compares the share of stored values in the CT
range as read and byte-swapped.
"""
from typing import Tuple

import numpy as np

#: Darkest voxel must be below this (HU): air is about -1000.
MIN_AIR_HU = -200.
#: At most this many distinct integer values: a label map.
MAX_LABEL_VALUES = 16
#: Voxels looked at for the count of distinct values.
_SAMPLE = 1_000_000
#: Stored CT values: HU in about [-1024, 3071] (12 bits), padding down to
#: -3024 and raw unsigned values up to 4095; dense metal may lie above.
CT_VALUE_RANGE = (-3072., 4095.)
#: The claimed byte order is refused when at most this share of the
#: stored values lies in :data:`CT_VALUE_RANGE` ...
_MAX_SHARE_CLAIMED = 0.9
#: ... and at least this share of the byte-swapped values does (about 11 %
#: of random 16-bit values do; constants such as -1024 swap into range).
_MIN_SHARE_SWAPPED = 0.98


def check_ct_intensities(path: str, array: np.ndarray,
                         stored_type: str = '') -> None:
    """Refuse a volume whose values cannot be CT Hounsfield units.

    Args:
        path (str): named in the error.
        array (np.ndarray): the voxel values after any rescale.
        stored_type (str): the file's voxel type (e.g. ``16-bit unsigned
            integer``), named in the error.

    Raises:
        ValueError: the reason, naming the file and the switch that reads
            it anyway (``scan_checks=dict(force_ct=True)`` / ``--force-ct``).
    """
    if array.size == 0:
        return
    how = ('; if it really is a CT in Hounsfield units, pass '
           '--force-ct (scan_checks=dict(force_ct=True)) to read it anyway')
    stored = f' (stored as {stored_type})' if stored_type else ''
    low = float(array.min())
    if low < MIN_AIR_HU:
        return
    sample = array.ravel()[::max(1, array.size // _SAMPLE)]
    values = np.unique(sample)
    if values.size <= MAX_LABEL_VALUES and np.all(values == np.round(values)):
        raise ValueError(
            f'{path}: only {values.size} distinct integer values '
            f'{values[:MAX_LABEL_VALUES].tolist()}{stored} and no air: a '
            'label map or mask, not a CT scan' + how)
    raise ValueError(
        f'{path}: no voxel below {MIN_AIR_HU:g} HU (lowest {low:g}, '
        f'highest {float(array.max()):g}){stored}, but air is about '
        '-1000 HU: these are not Hounsfield units (raw unsigned scanner '
        'values without rescale slope / intercept, or an MR / PET volume)'
        + how)


def _ct_share(values: np.ndarray) -> Tuple[float, float, float]:
    """Share of integer ``values`` in :data:`CT_VALUE_RANGE`, and their
    1st and 99th percentile."""
    inside = (values >= CT_VALUE_RANGE[0]) & (values <= CT_VALUE_RANGE[1])
    low, high = np.percentile(values, (1, 99))
    return float(inside.mean()), float(low), float(high)


def check_byte_order(path: str, stored: np.ndarray, claim: str,
                     msb: bool) -> None:
    """Refuse stored values that look like CT only when byte-swapped.

    Read with the wrong byte order, a CT is noise with some values in the
    CT range (about 1 in 9 for int16); read correctly, nearly all are.
    Only integer voxels of 2 or more bytes are checked.

    Args:
        path (str): named in the error.
        stored (np.ndarray): the voxels in their stored type, as read with
            the claimed byte order (native byte order in memory).
        claim (str): the header field as written, e.g.
            ``'BinaryDataByteOrderMSB = True'``.
        msb (bool): whether the claim is big-endian.

    Raises:
        ValueError: naming the file, the field and the values read both
            ways, with the switch that reads it anyway.
    """
    if stored.size == 0 or stored.dtype.kind not in 'iu' or \
            stored.dtype.itemsize < 2:
        return
    sample = stored.ravel()[::max(1, stored.size // _SAMPLE)]
    share, low, high = _ct_share(sample)
    if share > _MAX_SHARE_CLAIMED:
        return
    swapped, s_low, s_high = _ct_share(sample.byteswap())
    if swapped < _MIN_SHARE_SWAPPED:
        return
    order = 'big-endian' if msb else 'little-endian'
    lo_ct, hi_ct = CT_VALUE_RANGE
    raise ValueError(
        f'{path}: header field {claim} ({order}) contradicts the data: '
        f'read that way only {share:.0%} of the {stored.dtype} voxels lie '
        f'in the CT range [{lo_ct:g}, {hi_ct:g}] (1st-99th percentile '
        f'{low:g} .. {high:g}), read with the other byte order '
        f'{swapped:.0%} do ({s_low:g} .. {s_high:g}): the byte order flag '
        'is wrong; correct it, or pass --force-ct (scan_checks=dict('
        'force_ct=True)) to read it anyway')
