# Copyright (c) mmlesion contributors. All rights reserved.
"""``load_ct_volume`` held to the reference reading of
:mod:`tests.helpers.dicom_reference`: read as the reference, or refused in
one line naming what is wrong; the real stored values the variants start
from."""
import os.path as osp

import numpy as np
import pytest

from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing import shared_data_root

from . import dicom_reference as ref


def real_stored_or_skip(count: int, size: int) -> np.ndarray:
    """:func:`~.dicom_reference.real_stored_slices` of the shared real
    series (the test is skipped where the shared data is absent)."""
    root = shared_data_root()
    folder = None if root is None else (
        root / 'ct_volumes' / 'totalsegmentator' / 'example_ct_dicom')
    if folder is None or not folder.is_dir():
        pytest.skip('real CT DICOM series ($MMLESION_SHARED_DATA/ct_volumes)'
                    ' not available')
    return ref.real_stored_slices(str(folder), count, size)


def matches(paths, target=None, **kwargs):
    """Read ``target`` (default: the folder of ``paths[0]``) and check it
    against the reference reading of ``paths``; returns the volume."""
    vol = load_ct_volume(target or osp.dirname(paths[0]), **kwargs)
    ref.assert_matches_reference(vol, ref.reference_frames(paths))
    return vol


def refused(target, *needles, **kwargs) -> str:
    """The one-line ValueError reading ``target`` raises, holding every
    one of ``needles``."""
    with pytest.raises(ValueError) as info:
        load_ct_volume(target, **kwargs)
    msg = str(info.value)
    assert '\n' not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg
