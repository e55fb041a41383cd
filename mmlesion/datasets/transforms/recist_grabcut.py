# Copyright (c) mmlesion contributors. All rights reserved.
"""Dense lesion masks from weak RECIST labels with GrabCut.

Zlocha et al., "Improving RetinaNet for CT Lesion Detection with Dense
Masks from Weak RECIST Labels" (MICCAI 2019), Sec. 2.2 and Fig. 1(b): the
quadrilateral joining the four RECIST end points is definite foreground,
the outside of the lesion box definite background, everything else unknown,
and OpenCV's GrabCut (Rother et al. 2004) decides the unknown pixels.

Choices (the paper leaves them open)
------------------------------------
* **Pixels**: pixel ``img[y, x]`` is centred at ``(x, y)``; it is in the
  box when its centre is.
* **Quadrilateral**: the convex hull of p1, p2 (long axis) and p3, p4
  (``p1, p3, p2, p4`` when the diameters cross, all but ~0.3 % of
  DeepLesion), sub-pixel vertices, clipped to the box.
* **Unknown pixels**: with ``unknown='ellipse'`` (default) those in the
  ellipse inscribed in the box are probable foreground, the corners
  probable background (boxes are the RECIST extent plus 5 px); ``'fg'`` /
  ``'bg'`` label them all one way.
* **Context**: GrabCut runs on the box grown by ``max(context_px,
  context_ratio * box side)``, so the background model sees the
  surroundings.
* **Image**: the key slice, back in HU after ``WindowHU``, windowed to
  ``window`` (default soft tissue, -160..240 HU) as 3-channel uint8.
* **Result**: GrabCut's (probable) foreground united with the
  quadrilateral, in the box; only components touching the quadrilateral,
  holes filled.
* **Fallbacks** (:func:`recist_grabcut_mask`'s method): ``'degenerate'``
  (non-finite RECIST, or a quadrilateral under ``min_quad_area`` px^2):
  the RECIST ellipse (minor semi-axis at least 1 px), or the box ellipse
  without finite points; ``'tiny'`` (long diameter under
  ``min_diameter`` px) and ``'failed'`` (GrabCut raised or had no
  background): the quadrilateral united with the RECIST ellipse.

Cache format
------------
``cache_dir/meta.json`` holds the mask parameters (``format``,
``params``); ``cache_dir/<key slice file stem>.npz`` one image's lesions:
``bboxes`` (N, 4) float64, ``image_shape`` (H, W), ``offsets`` (N, 2)
``(x0, y0)`` and ``mask_<i>`` uint8 crops of the boxes. Lesions are matched
by box (within 0.01 px), so filtering or reordering them does not break
the cache. Written by ``tools/dataset_converters/recist_to_masks.py``.
"""
import functools
import logging
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks

from .recist_grabcut_ops import (_BOX_TOL, GrabCutSettings, key_slice_uint8,
                                 paste_crop, recist_grabcut_mask)
from .recist_mask_cache import (CACHE_PARAM_KEYS, MaskParam, _json_value,
                                cache_file_name, load_mask_npz,
                                read_cache_params, save_mask_npz)


class InstanceMasks(NamedTuple):
    """The GrabCut masks of an image's instances (each as
    :class:`~.recist_grabcut_ops.GrabCutMask`)."""
    crops: List[np.ndarray]
    offsets: List[Tuple[int, int]]
    methods: List[str]


@TRANSFORMS.register_module()
class RecistToMask(BaseTransform):
    """GrabCut masks from RECIST diameters, as ``gt_masks``.

    Zlocha et al., MICCAI 2019, Sec. 2.2 / Fig. 1(b) (choices and
    fallbacks: the module docstring). One mask per instance of
    ``gt_bboxes``, ignored ones included, on the key slice; runs before
    any geometric transform (``scale_factor``, ``flip`` or
    ``homography_matrix`` in the results are refused).

    Required keys: ``img``, ``gt_bboxes``, ``gt_recists`` (NaN: the box
    ellipse); optional ``hu_window``/``hu_out_range``, ``file_name`` /
    ``img_path`` (cache).

    Added keys: ``gt_masks`` (:class:`BitmapMasks`, ``(N, H, W)`` uint8).

    Args:
        window (tuple, optional): HU window of the GrabCut image. Defaults
            to (-160, 240) (soft tissue); None uses the pipeline's window.
        iterations, unknown, context_px, context_ratio, min_diameter,
            min_quad_area, keep_connected, fill_holes, seed: the fields of
            :class:`~.recist_grabcut_ops.GrabCutSettings` (the GrabCut
            iterations, its context, the fallbacks and the clean-up).
        cache_dir (str, optional): folder of precomputed masks (module
            docstring); one without ``meta.json`` is as none (warned once).
        cache_missing (str): a lesion (or cache) not found: ``'compute'``
            or ``'error'``.
    """

    def __init__(self,
                 window: Optional[Tuple[float, float]] = (-160., 240.),
                 iterations: int = 5,
                 unknown: str = 'ellipse',
                 context_px: int = 16,
                 context_ratio: float = 0.5,
                 min_diameter: float = 6.0,
                 min_quad_area: float = 2.0,
                 keep_connected: bool = True,
                 fill_holes: bool = True,
                 seed: int = 0,
                 cache_dir: Optional[str] = None,
                 cache_missing: str = 'compute') -> None:
        if window is not None and not (len(window) == 2
                                       and window[0] < window[1]):
            raise ValueError(f'window must be (low, high) HU, got {window}')
        if unknown not in ('ellipse', 'fg', 'bg'):
            raise ValueError(f"unknown must be 'ellipse', 'fg' or 'bg', got "
                             f'{unknown!r}')
        if iterations < 1:
            raise ValueError(f'iterations must be >= 1, got {iterations}')
        if cache_missing not in ('compute', 'error'):
            raise ValueError(f"cache_missing must be 'compute' or 'error', "
                             f'got {cache_missing!r}')
        self.window = None if window is None else (float(window[0]),
                                                   float(window[1]))
        self.iterations = int(iterations)
        self.unknown = unknown
        self.context_px = int(context_px)
        self.context_ratio = float(context_ratio)
        self.min_diameter = float(min_diameter)
        self.min_quad_area = float(min_quad_area)
        self.keep_connected = bool(keep_connected)
        self.fill_holes = bool(fill_holes)
        self.seed = int(seed)
        self.cache_dir = cache_dir
        self.cache_missing = cache_missing
        self._cache_checked = False
        self._cache_absent = False

    @property
    def params(self) -> Dict[str, MaskParam]:
        """The parameters that define a mask (stored in cache meta)."""
        return {k: getattr(self, k) for k in CACHE_PARAM_KEYS}

    def _check_cache(self) -> bool:
        """Whether the cache can be read (checked once; its parameters must
        be this transform's)."""
        if self._cache_checked:
            return not self._cache_absent
        meta_path = osp.join(self.cache_dir, 'meta.json')
        if not osp.isfile(meta_path) and self.cache_missing == 'compute':
            self._cache_checked = self._cache_absent = True
            _warn_absent_cache(self.cache_dir)
            return False
        stored = read_cache_params(self.cache_dir)
        mine = {k: _json_value(v) for k, v in self.params.items()}
        diff = {
            k: (stored.get(k), mine[k])
            for k in CACHE_PARAM_KEYS if stored.get(k) != mine[k]
        }
        if diff:
            raise ValueError(
                f'{osp.join(self.cache_dir, "meta.json")}: the cached masks '
                f'were made with other parameters (cache, transform): {diff}.'
                ' Use the same RecistToMask arguments or rebuild the cache '
                'with tools/dataset_converters/recist_to_masks.py --force')
        self._cache_checked = True
        return True

    def compute_masks(self, results: dict) -> InstanceMasks:
        """GrabCut crops, offsets and methods of every instance."""
        bboxes = _boxes_array(results.get('gt_bboxes'))
        recists = results.get('gt_recists')
        if recists is None:
            raise KeyError(
                f"{results.get('img_path', '<image>')}: RecistToMask needs "
                "'gt_recists': put LoadRecistPoints before it")
        recists = np.asarray(recists, dtype=np.float64).reshape(-1, 4, 2)
        if len(recists) != len(bboxes):
            raise ValueError(
                f"{results.get('img_path', '<image>')}: {len(bboxes)} boxes "
                f'but {len(recists)} RECIST annotations')
        image = key_slice_uint8(results['img'], self.window,
                                results.get('hu_window'),
                                results.get('hu_out_range'))
        settings = GrabCutSettings(
            **{k: v for k, v in self.params.items() if k != 'window'})
        crops, offsets, methods = [], [], []
        for bbox, recist in zip(bboxes, recists):
            crop, offset, method = recist_grabcut_mask(image, bbox, recist,
                                                       settings)
            crops.append(crop)
            offsets.append(offset)
            methods.append(method)
        return InstanceMasks(crops, offsets, methods)

    def write_cache_file(self, results: dict,
                         cache_dir: str) -> InstanceMasks:
        """Compute an image's masks and write them as its file of a mask
        cache in ``cache_dir`` (``meta.json``: :func:`write_cache_meta`).

        Returns:
            InstanceMasks: the masks written.
        """
        masks = self.compute_masks(results)
        save_mask_npz(osp.join(cache_dir, cache_file_name(results)),
                      _boxes_array(results.get('gt_bboxes')), masks.crops,
                      masks.offsets, results['img'].shape[:2])
        return masks

    def _from_cache(self, results: dict, bboxes: np.ndarray,
                    shape: Tuple[int, int]) -> List[Optional[np.ndarray]]:
        found: List[Optional[np.ndarray]] = [None] * len(bboxes)
        if not self._check_cache():
            return found
        path = osp.join(self.cache_dir, cache_file_name(results))
        if osp.isfile(path):
            data = load_mask_npz(path)
            if tuple(data.image_shape) != tuple(shape):
                raise ValueError(
                    f'{path}: masks of a {data.image_shape} image, but '
                    f'the image is {shape}')
            stored = np.asarray(data.bboxes)
            for i, box in enumerate(bboxes):
                if len(stored) == 0:
                    break
                err = np.abs(stored - box[None]).max(axis=1)
                j = int(np.argmin(err))
                if err[j] <= _BOX_TOL:
                    found[i] = data.masks[j]
        missing = [i for i, m in enumerate(found) if m is None]
        if missing and self.cache_missing == 'error':
            raise FileNotFoundError(f'{path}: no cached mask for box(es) '
                                    f'{bboxes[missing].tolist()} of '
                                    f"{results.get('img_path', '<image>')}")
        return found

    def transform(self, results: dict) -> dict:
        """Add ``gt_masks`` (see the class doc)."""
        for key in ('scale_factor', 'flip', 'homography_matrix'):
            if key in results and not _is_identity(key, results[key]):
                raise ValueError(
                    f"{results.get('img_path', '<image>')}: RecistToMask "
                    f'must run before geometric transforms (found {key!r} '
                    f'= {results[key]!r}); place it right after '
                    'LoadRecistPoints')
        height, width = results['img'].shape[:2]
        bboxes = _boxes_array(results.get('gt_bboxes'))
        masks: List[Optional[np.ndarray]] = [None] * len(bboxes)
        if self.cache_dir is not None and len(bboxes):
            masks = self._from_cache(results, bboxes, (height, width))
        if any(m is None for m in masks):
            crops, offsets, _ = self.compute_masks(results)
            for i, m in enumerate(masks):
                if m is None:
                    masks[i] = paste_crop(crops[i], offsets[i],
                                          (height, width))
        stack = np.stack(masks, axis=0).astype(np.uint8) if masks else \
            np.zeros((0, height, width), dtype=np.uint8)
        results['gt_masks'] = BitmapMasks(stack, height, width)
        return results

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.params.items())
        return (f'{self.__class__.__name__}({args}, '
                f'cache_dir={self.cache_dir!r})')


@functools.lru_cache(maxsize=None)
def _warn_absent_cache(cache_dir: str) -> None:
    """Say once per process and folder that the masks are computed."""
    print_log(
        f'RecistToMask: no mask cache in {cache_dir} (no meta.json): the '
        'GrabCut masks are computed for every sample, which makes data '
        'loading slower; write them once with python '
        'tools/dataset_converters/recist_to_masks.py CONFIG --split train '
        f'--out {cache_dir}', logger='current', level=logging.WARNING)


def _is_identity(key: str, value) -> bool:
    if key == 'flip':
        return not bool(value)
    if key == 'scale_factor':
        return np.allclose(np.asarray(value, dtype=np.float64), 1.0)
    return np.allclose(np.asarray(value, dtype=np.float64), np.eye(3))


def _boxes_array(gt_bboxes) -> np.ndarray:
    if gt_bboxes is None:
        return np.zeros((0, 4), dtype=np.float64)
    if hasattr(gt_bboxes, 'tensor'):
        gt_bboxes = gt_bboxes.tensor.detach().cpu().numpy()
    return np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
