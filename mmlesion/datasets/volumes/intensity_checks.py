# Copyright (c) mmlesion contributors. All rights reserved.
"""Is this volume a CT in Hounsfield units? A plausibility check.

A label map, an MR volume or the raw unsigned values of a scanner (a
MetaImage with ``ElementType = MET_USHORT`` and no rescale) read without
error and give plausible-looking but wrong detections. A CT in HU always
holds air (about -1000 HU outside the body and in the lungs, or the padding
value outside the reconstruction circle) and thousands of distinct values;
a label map holds a handful of integers, and unsigned raw values or an MR
have nothing below 0. The rule chosen here (the issue leaves the
thresholds open): refuse when no voxel is below ``-200`` HU; the error
calls it a label map where a sample of about a million voxels holds at most
16 distinct integer values (a synthetic phantom of air and a few tissue
values passes).
"""
import numpy as np

#: Darkest voxel must be below this (HU): air is about -1000.
MIN_AIR_HU = -200.
#: At most this many distinct integer values: a label map.
MAX_LABEL_VALUES = 16
#: Voxels looked at for the count of distinct values.
_SAMPLE = 1_000_000


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
            it anyway (``check_modality=False`` / ``--force-ct``).
    """
    if array.size == 0:
        return
    how = ('; if it really is a CT in Hounsfield units, pass '
           'check_modality=False (--force-ct) to read it anyway')
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
