# Copyright (c) mmlesion contributors. All rights reserved.
"""3D FROC of the LENS protocol on the DeepLesion manual test set.

docs/protocols.md §2 (LENS, Yan et al., IEEE TMI 2020, §VI-A). The
released code (``general_detection_evaluation.py``: ``FROC(..., '3D',
'IOBB', .3)`` and ``sens_at_FP``) is the hit walk and interpolation of the
2D protocol (:mod:`mmlesion.evaluation.functional.froc`), reused with
``ndim=3`` and legacy ``+1`` voxel sizes on inclusive voxel indices
(:class:`~mmlesion.evaluation.FROC3DMetric`).
mmlesion's 3D boxes are continuous (``x2 = x1 + extent``):
:func:`continuous_to_inclusive` converts them, so that a box covering
exactly the voxels of a ground truth has IoBB 1.
"""
import os.path as osp
import pickle
import re
from typing import List, NamedTuple, Sequence

import numpy as np


#: FPs per sub-volume of the LENS protocol.
LENS_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: 3D IoBB threshold of the LENS protocol.
LENS_IOBB_THR = 0.3

_SUBVOLUME_NAME = re.compile(r'^(\d{6}_\d{2}_\d{2})_(\d+)-(\d+)$')


def continuous_to_inclusive(boxes: np.ndarray) -> np.ndarray:
    """``[x1, y1, z1, x2, y2, z2]`` with ``x2 = x1 + extent`` -> inclusive
    voxel indices (``x2 - 1``, ...), the release's convention.

    Args:
        boxes (np.ndarray): ``(N, 6)`` or ``(N, 7)`` (score kept).

    Returns:
        np.ndarray: float64 copy.
    """
    out = np.array(boxes, dtype=np.float64, copy=True)
    if out.size:
        out[:, 3:6] -= 1.0
    return out


class ManualSubVolume(NamedTuple):
    """One sub-volume of the DeepLesion manual 3D test set.

    Attributes:
        name (str): ``{volume}_{first:03d}-{last:03d}``, e.g.
            ``'002666_01_01_001-030'``.
        volume (str): ``patient_study_series``, the ``Images_png`` folder.
        first_slice (int): top slice index of the sub-volume (as in the
            ``Images_png`` file names).
        last_slice (int): bottom slice index.
        boxes (np.ndarray): ``(n, 6)`` float64 ``[x1, y1, z1, x2, y2, z2]``,
            inclusive voxel indices, ``z`` of the whole volume.
        split (str): ``'val'`` or ``'test'``.
    """
    name: str
    volume: str
    first_slice: int
    last_slice: int
    boxes: np.ndarray
    split: str

    def local_boxes(self) -> np.ndarray:
        """Boxes with ``z`` relative to the sub-volume (``z - first``)."""
        out = self.boxes.copy()
        out[:, [2, 5]] -= self.first_slice
        return out


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing else (a pickle
    can run code; this release needs only ``ndarray``/``dtype``)."""
    _ALLOWED = {('numpy', 'ndarray'), ('numpy', 'dtype'),
                ('numpy.core.multiarray', '_reconstruct'),
                ('numpy._core.multiarray', '_reconstruct')}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'refusing to unpickle {module}.{name}: the manual test set '
            'holds only numpy arrays')


def load_deeplesion_manual_3d(path: str,
                              splits: Sequence[str] = ('val', 'test')
                              ) -> List[ManualSubVolume]:
    """Read ``DeepLesion_manual_1K_test_release.pkl`` as released.

    The file is a pickle of ``{'val': {name: B}, 'test': {name: B}}``, ``B``
    an ``(n, 6)`` array of ``[x1, y1, z1, x2, y2, z2]``, read with an
    unpickler that accepts only numpy arrays.

    Args:
        path (str): the ``.pkl`` file.
        splits (Sequence[str]): which splits, in this order. Defaults to
            both.

    Returns:
        list[ManualSubVolume]: sub-volumes in file order within each split.

    Raises:
        ValueError: naming the file, split and sub-volume of a malformed
            entry (name, shape, non-finite or inverted box).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'no such file: {path}')
    with open(path, 'rb') as handle:
        data = _NumpyOnlyUnpickler(handle).load()
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a dict with splits val/test, got '
                         f'{type(data).__name__}')
    out = []
    for split in splits:
        if split not in data:
            raise ValueError(f'{path}: no split {split!r} (has '
                             f'{sorted(data)})')
        for name, boxes in data[split].items():
            where = f'{path}, split {split!r}, sub-volume {name!r}'
            found = _SUBVOLUME_NAME.match(str(name))
            if found is None:
                raise ValueError(f'{where}: the name is not '
                                 '{volume}_{first}-{last}')
            arr = np.asarray(boxes, dtype=np.float64)
            arr = arr.reshape(0, 6) if arr.size == 0 else arr
            if arr.ndim != 2 or arr.shape[1] != 6:
                raise ValueError(f'{where}: boxes must be (n, 6), got '
                                 f'{arr.shape}')
            bad = ~np.isfinite(arr).all(1) | (arr[:, 3:] < arr[:, :3]).any(1)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(f'{where}, row {row}: invalid box '
                                 f'{arr[row].tolist()}')
            out.append(
                ManualSubVolume(
                    name=str(name),
                    volume=found.group(1),
                    first_slice=int(found.group(2)),
                    last_slice=int(found.group(3)),
                    boxes=arr,
                    split=split))
    return out
