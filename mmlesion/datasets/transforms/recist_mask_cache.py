# Copyright (c) mmlesion contributors. All rights reserved.
"""The on-disk cache of RECIST GrabCut masks: one ``.npz`` of box crops per
image and a ``meta.json`` naming the parameters they were made with."""
import os.path as osp
from typing import Dict, List, NamedTuple, Sequence, Tuple, Union

import numpy as np

from mmlesion.utils.writing.atomic import (atomic_save_with,
                                           atomic_write_json)

from ..volumes.annotation_file import read_json_file
from .recist_grabcut_ops import paste_crop


#: ``format`` written to ``meta.json`` of a cache directory.
CACHE_FORMAT = 'mmlesion-recist-masks-v1'
#: Mask parameters that must agree between a cache and the transform.
CACHE_PARAM_KEYS = ('window', 'iterations', 'unknown', 'context_px',
                    'context_ratio', 'min_diameter', 'min_quad_area',
                    'keep_connected', 'fill_holes', 'seed')


def cache_file_name(results_or_path: Union[dict, str]) -> str:
    """``<stem>.npz`` of an image: ``000002_01_01_162.npz``.

    Uses ``file_name`` of a DeepLesion data_info, else
    ``<parent folder>_<stem>`` of ``img_path``.
    """
    if isinstance(results_or_path, dict):
        name = results_or_path.get('file_name')
        if name:
            return osp.splitext(osp.basename(name))[0] + '.npz'
        path = results_or_path['img_path']
    else:
        path = results_or_path
    parent = osp.basename(osp.dirname(path))
    stem = osp.splitext(osp.basename(path))[0]
    return f'{parent}_{stem}.npz' if parent else f'{stem}.npz'


def save_mask_npz(path: str, bboxes: np.ndarray, crops: Sequence[np.ndarray],
                  offsets: Sequence[Tuple[int, int]],
                  image_shape: Tuple[int, int]) -> None:
    """Write one image's masks in the cache format (module docstring)."""
    arrays = dict(
        bboxes=np.asarray(bboxes, dtype=np.float64).reshape(-1, 4),
        image_shape=np.asarray(image_shape, dtype=np.int64),
        offsets=np.asarray(offsets, dtype=np.int64).reshape(-1, 2))
    for i, crop in enumerate(crops):
        arrays[f'mask_{i}'] = np.asarray(crop, dtype=np.uint8)
    atomic_save_with(path, lambda tmp: np.savez_compressed(tmp, **arrays))


class CachedMasks(NamedTuple):
    """One image's file of a mask cache (:func:`load_mask_npz`).

    Attributes:
        bboxes (np.ndarray): ``(N, 4)`` the boxes the masks were made for.
        image_shape (tuple[int, int]): the image's ``(H, W)``.
        masks (list[np.ndarray]): full-size ``(H, W)`` uint8 masks.
    """
    bboxes: np.ndarray
    image_shape: Tuple[int, int]
    masks: List[np.ndarray]


def load_mask_npz(path: str) -> CachedMasks:
    """Read a cache file."""
    with np.load(path) as data:
        bboxes = data['bboxes']
        shape = tuple(int(v) for v in data['image_shape'])
        offsets = data['offsets']
        masks = [
            paste_crop(data[f'mask_{i}'], tuple(offsets[i]), shape)
            for i in range(len(bboxes))
        ]
    return CachedMasks(bboxes, shape, masks)


def _json_value(v):
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    return v


#: A value of :data:`CACHE_PARAM_KEYS` (``window``: two floats, a list once
#: read back from ``meta.json``).
MaskParam = Union[bool, int, float, str, Sequence[float]]


def write_cache_meta(cache_dir: str, params: Dict[str, MaskParam]) -> None:
    """Write ``meta.json`` (format and mask parameters)."""
    atomic_write_json(osp.join(cache_dir, 'meta.json'),
                      dict(format=CACHE_FORMAT, params=params), indent=2)


def read_cache_params(cache_dir: str) -> Dict[str, MaskParam]:
    """The mask parameters ``meta.json`` of a cache holds; raises if it is
    missing or foreign."""
    path = osp.join(cache_dir, 'meta.json')
    meta = read_json_file(
        path, f'{path} not found: not a RECIST mask cache (write one with '
        'tools/dataset_converters/recist_to_masks.py)')
    if meta.get('format') != CACHE_FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected "
                         f'{CACHE_FORMAT!r}')
    return meta.get('params', {})
