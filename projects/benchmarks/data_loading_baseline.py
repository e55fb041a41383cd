# Copyright (c) mmlesion contributors. All rights reserved.
"""The earlier DeepLesion slice loading and HU windowing, kept as the
baseline of ``benchmark_data_loading.py --parts``.

A copy of :class:`~mmlesion.datasets.transforms.LoadDeepLesionSlices`'s
PNG-series path and of :func:`~mmlesion.datasets.transforms.windowing.
window_hu` as they were before the slice loading was made faster: each
slice decoded, converted to float32 HU and checked for the +32768 offset on
its own, clipped, then interpolated and stacked with temporaries. The
benchmark times it beside the current code on the same samples and the
tests check that both give the same pixels bit for bit.
"""
import math
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.datasets.deeplesion.png_slices import HU_OFFSET, IMPLAUSIBLE_HU
from mmlesion.datasets.transforms.loading import (LoadDeepLesionSlices,
                                                  _check_slice_file)
from mmlesion.utils.input_files import check_regular_file


def png_values_to_hu_baseline(raw: np.ndarray,
                              source: str = '<array>') -> np.ndarray:
    """The earlier uint16 -> float32 HU conversion and offset check.

    Args:
        raw (np.ndarray): uint16 values, ``HU + 32768``.
        source (str): the file named in errors.

    Returns:
        np.ndarray: float32 HU.
    """
    hu = raw.astype(np.float32) - HU_OFFSET
    implausible = float(np.mean(np.abs(hu) > IMPLAUSIBLE_HU))
    if implausible > 0.5:
        raise ValueError(f'{source}: {implausible:.0%} of the pixels are '
                         f'beyond +-{IMPLAUSIBLE_HU:g} HU')
    return hu


def read_hu_png_baseline(path: str) -> np.ndarray:
    """The earlier reading of one slice as float32 HU.

    Args:
        path (str): a DeepLesion 16-bit PNG.

    Returns:
        np.ndarray: float32 (H, W) HU.
    """
    if not osp.exists(path):
        raise FileNotFoundError(f'CT slice not found: {path}')
    check_regular_file(path, 'CT slice')
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype != np.uint16 or img.ndim != 2:
        raise ValueError(f'{path}: not a 16-bit single-channel PNG')
    return png_values_to_hu_baseline(img, path)


def window_hu_baseline(img: np.ndarray, window: Tuple[float, float],
                       out_range: Tuple[float, float]) -> np.ndarray:
    """The earlier HU windowing (one float32 copy, then in place).

    Args:
        img (np.ndarray): image in HU.
        window (tuple[float, float]): ``(low, high)`` HU.
        out_range (tuple[float, float]): what ``low`` and ``high`` map to.

    Returns:
        np.ndarray: float32 image in ``out_range``.
    """
    low, high = float(window[0]), float(window[1])
    out_low, out_high = float(out_range[0]), float(out_range[1])
    img = np.array(img, dtype=np.float32, order='C')
    np.clip(img, low, high, out=img)
    scale = (out_high - out_low) / (high - low)
    img -= np.float32(low)
    img *= np.float32(scale)
    img += np.float32(out_low)
    return img


class LoadDeepLesionSlicesBaseline(LoadDeepLesionSlices):
    """:class:`LoadDeepLesionSlices` with the earlier PNG-series path."""

    def _from_files(self, results: dict) -> np.ndarray:
        key_path = results['img_path']
        series_dir = results.get('series_dir') or osp.dirname(key_path)
        if results.get('key_slice') is not None:
            key = int(results['key_slice'])
        else:
            key = int(osp.splitext(osp.basename(key_path))[0])
        slice_interval = float(results.get('slice_interval', float('nan')))
        self.num_samples += 1

        def path_of(index: int) -> str:
            return key_path if index == key else osp.join(
                series_dir, f'{index:03d}.png')

        roots = None if self._allow_outside_data(results) else (
            osp.realpath(series_dir),
            osp.realpath(osp.dirname(osp.abspath(series_dir))))

        def exists(index: int) -> bool:
            path = path_of(index)
            if not osp.lexists(path):
                return False
            _check_slice_file(path, roots)
            return True

        key_shape: List[Tuple[int, int]] = []

        def read(index: int) -> np.ndarray:
            _check_slice_file(path_of(index), roots)
            img = read_hu_png_baseline(path_of(index))
            if key_shape and img.shape != key_shape[0]:
                raise ValueError(f'{path_of(index)}: shape {img.shape} '
                                 f'differs from the key slice {key_path}')
            key_shape.append(img.shape)
            return self._clip(img)

        key_img = read(key)
        num_fallback_before = self.num_fallbacks
        img = self._interpolate_baseline(key, slice_interval, read, exists,
                                         path_of, key_path, {key: key_img})
        results['num_fallback_slices'] = self.num_fallbacks - \
            num_fallback_before
        return img

    def _interpolate_baseline(
            self,
            key: int,
            slice_interval: float,
            read: Callable[[int], np.ndarray],
            exists: Callable[[int], bool],
            name: Callable[[int], str],
            key_name: str,
            cache: Optional[Dict[int, np.ndarray]] = None) -> np.ndarray:
        cache = {} if cache is None else cache
        resolved: Dict[int, int] = {}

        def load(index: int) -> np.ndarray:
            if index not in cache:
                cache[index] = read(index)
            return cache[index]

        def stored(index: int) -> np.ndarray:
            if index not in resolved:
                cur = index
                while cur != key and not exists(cur):
                    cur -= 1 if cur > key else -1
                if cur != index:
                    self._note_fallback(name(index), osp.basename(name(cur)))
                resolved[index] = cur
            return load(resolved[index])

        load(key)
        offsets = self._offsets(slice_interval)
        if not (math.isfinite(slice_interval) and slice_interval > 0):
            for _ in range(self.num_slices - 1):
                self._note_fallback(
                    f'{key_name} (slice interval {slice_interval})',
                    'key slice')
        channels = []
        for off in offsets:
            pos = key + off
            nearest = round(pos)
            if abs(pos - nearest) < 1e-6:
                img = stored(int(nearest))
            else:
                lo = math.floor(pos)
                w = pos - lo
                img_lo, img_hi = stored(lo), stored(lo + 1)
                if img_lo is img_hi:
                    img = img_lo
                else:
                    img = (1.0 - w) * img_lo + w * img_hi
            channels.append(img)
        return np.stack(channels, axis=-1).astype(np.float32, copy=False)


def baseline_steps(transforms: Sequence) -> Dict[str, Callable[[dict], dict]]:
    """The earlier ``LoadDeepLesionSlices`` and ``WindowHU`` of a pipeline.

    Args:
        transforms (Sequence): the built transforms of a pipeline.

    Returns:
        dict: class name -> ``results -> results`` with the same settings
        as the pipeline's transform, the earlier implementation.
    """
    steps: Dict[str, Callable[[dict], dict]] = {}
    for t in transforms:
        name = type(t).__name__
        if name == 'LoadDeepLesionSlices':
            steps[name] = LoadDeepLesionSlicesBaseline(
                num_slices=t.num_slices,
                interval_mm=t.interval_mm,
                hu_clip=t.hu_clip,
                log_every=t.log_every)
        elif name == 'WindowHU':

            def window(results: dict, t=t) -> dict:
                results['img'] = window_hu_baseline(results['img'], t.window,
                                                    t.out_range)
                results['hu_window'] = t.window
                results['hu_out_range'] = t.out_range
                return results

            steps[name] = window
    return steps
