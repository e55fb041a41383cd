# Copyright (c) mmlesion contributors. All rights reserved.
"""Loading of DeepLesion multi-slice inputs and RECIST annotations."""
import logging
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import MMLogger
from mmdet.registry import TRANSFORMS
from mmlesion.utils.input_files import check_regular_file

from ..deeplesion.png_slices import _decode_hu_png, png_values_to_hu
from ..volumes.scan_switches import ScanChecks

#: The most channels an OpenCV matrix holds (``CV_CN_MAX``).
_CV_CN_MAX = 512


def slices_from_volume(volume: np.ndarray, key: int,
                       offsets: Sequence[float],
                       hu_clip: Optional[Tuple[float, float]]) -> np.ndarray:
    """The channels at ``key + offsets`` of a (z, y, x) volume.

    Linear interpolation between the two slices around each position;
    positions beyond the first or last slice take that slice.

    Args:
        volume (np.ndarray): (z, y, x) HU.
        key (int): index of the key slice.
        offsets (Sequence[float]): channel positions relative to the key, in
            slice units.
        hu_clip (tuple[float, float], optional): HU range applied.

    Returns:
        np.ndarray: float32 (y, x, len(offsets)).
    """
    depth = volume.shape[0]
    channels = []
    for off in offsets:
        pos = min(max(key + off, 0.), depth - 1.)
        lo = int(math.floor(pos))
        w = pos - lo
        if w < 1e-6 or lo + 1 >= depth:
            img = volume[lo]
        else:
            img = (1. - w) * volume[lo] + w * volume[lo + 1]
        channels.append(img)
    img = np.stack(channels, axis=-1).astype(np.float32)
    if hu_clip is not None:
        np.clip(img, hu_clip[0], hu_clip[1], out=img)
    return img


def stack_channels(channels: List[np.ndarray]) -> np.ndarray:
    """Stack (H, W) slices as the channels of a float32 (H, W, N) image.

    The same values as ``np.stack(channels, axis=-1).astype(np.float32)``;
    OpenCV's ``merge`` interleaves float32 slices in one pass, faster than
    NumPy's strided copy.

    Args:
        channels (list[np.ndarray]): N (H, W) slices of the same shape.

    Returns:
        np.ndarray: float32 (H, W, N), C-contiguous.
    """
    if (1 < len(channels) <= _CV_CN_MAX and all(
            c.dtype == np.float32 and c.ndim == 2 for c in channels)
            and len({c.shape for c in channels}) == 1):
        return cv2.merge(channels)
    return np.stack(channels, axis=-1).astype(np.float32, copy=False)


def _check_slice_file(path: str, roots: Optional[Tuple[str, str]]) -> None:
    """A slice of a series: a regular file inside one of ``roots``."""
    if not osp.exists(path):
        if osp.islink(path):
            raise FileNotFoundError(f'{path}: CT slice is a broken link (to '
                                    f'{os.readlink(path)})')
        raise FileNotFoundError(f'CT slice not found: {path}')
    if roots is not None:
        real = osp.realpath(path)
        if not any(osp.commonpath([r, real]) == r for r in roots):
            raise ValueError(
                f'{path}: CT slice is a link leading out of the data (to '
                f'{real}, outside {roots[1]}); refusing to read it (pass '
                '--allow-outside-data / scan_checks=dict('
                'allow_outside_data=True) if that is intended)')
    check_regular_file(path, 'CT slice')


@TRANSFORMS.register_module()
class LoadDeepLesionSlices(BaseTransform):
    """Load the key slice and its neighbours as an H x W x N HU image.

    The input of the 2.5D detectors of the papers: N slices at a fixed
    physical interval around the key slice, stacked as channels (ElixirNet
    Sec. 4: 3 slices; Improved RetinaNet Sec. 3.1: "three adjacent slices
    after resampling to 2 mm thickness"; LENS Sec. IV-A: 2 mm; MULAN: 9).

    Channel ``k`` (``k = -(N // 2) .. N // 2``) is the image at
    ``z = key * slice_interval + k * interval_mm``, linearly interpolated
    between the two stored slices around it. A stored slice missing on disk
    is replaced by the nearest one towards the key slice (Improved
    RetinaNet Sec. 3.1, "we duplicate the lesion slice"; logged on the first
    and every ``log_every``-th fallback); a slice interval that is not
    positive and finite gives N copies of the key slice.

    Every slice read must be a regular file lying, links resolved, in the
    series folder or its parent, unless ``scan_checks=dict(
    allow_outside_data=True)`` (``--allow-outside-data``).

    Required keys: ``img_path`` (key slice), ``slice_interval`` (mm);
    optional ``key_slice`` (default: the file name's number),
    ``series_dir`` (default: the folder of ``img_path``) and
    ``height``/``width`` (checked against the PNG).

    Added keys: ``img`` (float32 H x W x N, HU, key slice in the middle
    channel), ``img_shape``, ``ori_shape``, ``num_fallback_slices``.

    Args:
        num_slices (int): N, odd. Defaults to 3.
        interval_mm (float): physical distance between channels in mm.
            Defaults to 2.0.
        hu_clip (tuple[float, float], optional): HU range every slice is
            clamped to (the outside of the field of view may be -3024);
            None keeps raw values. Defaults to (-1024, 3071).
        log_every (int): fallbacks between two logs. Defaults to 1000.
        scan_checks (dict | ScanChecks, optional): only
            ``allow_outside_data`` applies; default: the sample's
            ``scan_checks``, else :class:`ScanChecks`' defaults.
    """

    def __init__(self,
                 num_slices: int = 3,
                 interval_mm: float = 2.0,
                 hu_clip: Optional[Tuple[float, float]] = (-1024., 3071.),
                 log_every: int = 1000,
                 scan_checks: Union[None, dict, ScanChecks] = None) -> None:
        self.scan_checks = None if scan_checks is None else ScanChecks.of(
            scan_checks)
        if num_slices < 1 or num_slices % 2 != 1:
            raise ValueError(f'num_slices must be a positive odd number, got '
                             f'{num_slices}')
        if not interval_mm > 0:
            raise ValueError(f'interval_mm must be > 0, got {interval_mm}')
        if hu_clip is not None and not hu_clip[0] < hu_clip[1]:
            raise ValueError(f'hu_clip must be (low, high), got {hu_clip}')
        if log_every < 1:
            raise ValueError(f'log_every must be >= 1, got {log_every}')
        self.num_slices = num_slices
        self.interval_mm = float(interval_mm)
        self.hu_clip = hu_clip
        self.log_every = log_every
        self.num_samples = 0
        self.num_fallbacks = 0

    def _offsets(self, slice_interval: float) -> List[float]:
        """Positions of the channels relative to the key, in slice units."""
        half = self.num_slices // 2
        if not (math.isfinite(slice_interval) and slice_interval > 0):
            return [0.0] * self.num_slices
        rel = self.interval_mm / slice_interval
        return [k * rel for k in range(-half, half + 1)]

    def _note_fallback(self, wanted: str, used: str) -> None:
        self.num_fallbacks += 1
        if self.num_fallbacks == 1 or self.num_fallbacks % self.log_every == 0:
            MMLogger.get_current_instance().log(
                logging.WARNING,
                f'{self.__class__.__name__}: {self.num_fallbacks} missing '
                f'neighbour slice(s) so far in {self.num_samples} sample(s), '
                'each replaced by the nearest stored slice towards the key '
                f'slice (latest: {wanted} -> {used})')

    def transform(self, results: dict) -> dict:
        """Load the N channels.

        Besides a dataset sample, accepts (:class:`LesionInferencerLoader`)
        ``img``, the (H, W, N) slices (HU, or uint16 ``HU + 32768``), or
        ``volume``, a (D, H, W) series (as :class:`LoadVolumeSlices`).

        Args:
            results (dict): result of the dataset (see the class doc).

        Returns:
            dict: with ``img``, ``img_shape``, ``ori_shape`` and
            ``num_slices`` (so drawings know the key channel).
        """
        if results.get('volume') is not None:
            img = self._from_volume(results)
        elif results.get('img_path') is None and results.get(
                'img') is not None:
            img = self._from_array(results['img'])
        else:
            img = self._from_files(results)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results['num_slices'] = self.num_slices
        return results

    def _clip(self, img: np.ndarray) -> np.ndarray:
        if self.hu_clip is not None:
            np.clip(img, self.hu_clip[0], self.hu_clip[1], out=img)
        return img

    def _as_hu(self, array, source: str) -> np.ndarray:
        array = np.asarray(array)
        if array.dtype == np.uint16:  # stored PNG values
            return png_values_to_hu(array, source)
        if not (np.issubdtype(array.dtype, np.number)
                and not np.issubdtype(array.dtype, np.complexfloating)):
            raise TypeError(f'{source}: expected a numeric array of HU, got '
                            f'dtype {array.dtype}')
        return array.astype(np.float32)  # a copy: the caller's stays intact

    def _from_array(self, array) -> np.ndarray:
        """An (H, W, N) stack of the N slices given by the caller."""
        img = self._as_hu(array, 'img array')
        if img.ndim == 2 and self.num_slices == 1:
            img = img[..., None]
        if img.ndim != 3 or img.shape[-1] != self.num_slices:
            raise ValueError(
                f'{self.__class__.__name__}: an image array must be (H, W, '
                f'{self.num_slices}): the {self.num_slices} slices at '
                f'{self.interval_mm:g} mm around the key slice (HU), key '
                f'slice in the middle; got shape {img.shape}. Pass '
                'dict(volume=<(D, H, W) HU>, key_slice=<index>, '
                'slice_interval=<mm>) to let the pipeline pick them.')
        self.num_samples += 1
        return self._clip(np.ascontiguousarray(img))

    def _from_volume(self, results: dict) -> np.ndarray:
        """The N channels of an in-memory (D, H, W) volume (a float32 copy
        in HU), as :class:`LoadVolumeSlices` takes them."""
        img = self._volume_channels(results,
                                    self._as_hu(results['volume'], 'volume'))
        results.pop('volume')  # never packed
        return img

    def _volume_channels(self, results: dict, volume: np.ndarray
                         ) -> np.ndarray:
        """The N channels around ``results['key_slice']`` of a (D, H, W) HU
        volume (positions beyond it take its first / last slice)."""
        where = (f'{self.__class__.__name__} '
                 f"({results.get('img_path', 'volume')})")
        if volume.ndim != 3 or min(volume.shape) < 1:
            raise ValueError(f'{where}: volume must be (D, H, W), got shape '
                             f'{volume.shape}')
        if results.get('key_slice') is None:
            raise KeyError(f"{where}: a volume input needs 'key_slice' "
                           '(index along its first axis)')
        key = int(results['key_slice'])
        if not 0 <= key < volume.shape[0]:
            raise ValueError(f'{where}: key slice {key} outside the volume '
                             f'of {volume.shape[0]} slices')
        slice_interval = float(results.get('slice_interval', float('nan')))
        if not (math.isfinite(slice_interval) and slice_interval > 0):
            raise ValueError(f"{where}: a volume input needs a positive "
                             f"'slice_interval' (mm), got {slice_interval}")
        self.num_samples += 1
        return slices_from_volume(volume, key, self._offsets(slice_interval),
                                  self.hu_clip)

    def _allow_outside_data(self, results: dict) -> bool:
        """The switch of this transform's ``scan_checks``, else of the
        sample's (its dataset's), else :class:`ScanChecks`' default."""
        return ScanChecks.of(self.scan_checks or results.get(
            'scan_checks')).allow_outside_data

    def _from_files(self, results: dict) -> np.ndarray:
        """The N channels read from the PNG series of ``img_path``."""
        key_path = results['img_path']
        series_dir = results.get('series_dir') or osp.dirname(key_path)
        if results.get('key_slice') is not None:
            key = int(results['key_slice'])
        else:  # DeepLesion names slices <index>.png
            stem = osp.splitext(osp.basename(key_path))[0]
            if not stem.isdigit():
                raise ValueError(
                    f"{key_path}: no 'key_slice' in the results and the "
                    'file name is not <slice index>.png')
            key = int(stem)
        slice_interval = float(results.get('slice_interval', float('nan')))
        self.num_samples += 1

        def path_of(index: int) -> str:
            return key_path if index == key else osp.join(
                series_dir, f'{index:03d}.png')

        # the folders a slice may lie in, links resolved (None: any)
        roots = None if self._allow_outside_data(results) else (
            osp.realpath(series_dir),
            osp.realpath(osp.dirname(osp.abspath(series_dir))))

        def exists(index: int) -> bool:
            if not osp.lexists(path_of(index)):
                return False
            _check_slice_file(path_of(index), roots)
            return True

        def read(index: int) -> np.ndarray:
            img = _decode_hu_png(path_of(index))
            if cache and img.shape != cache[key].shape:
                raise ValueError(
                    f'{path_of(index)}: shape {img.shape} differs from the '
                    f'key slice {key_path} {cache[key].shape}')
            return self._clip(img)

        cache: Dict[int, np.ndarray] = {}
        _check_slice_file(key_path, roots)
        cache[key] = read(key)
        height, width = cache[key].shape
        if 'height' in results and 'width' in results and (
                results['height'], results['width']) != (height, width):
            raise ValueError(
                f'{key_path}: image is {height}x{width} (HxW) but the '
                f"annotation (Image_size) says {results['height']}x"
                f"{results['width']}")
        num_fallback_before = self.num_fallbacks
        resolved: Dict[int, int] = {}

        def stored(index: int) -> np.ndarray:
            """Slice ``index``, or the nearest existing one towards key."""
            if index not in resolved:
                cur = index
                while cur != key and not exists(cur):
                    cur -= 1 if cur > key else -1
                if cur != index:
                    self._note_fallback(path_of(index),
                                        osp.basename(path_of(cur)))
                resolved[index] = cur
            if resolved[index] not in cache:
                cache[resolved[index]] = read(resolved[index])
            return cache[resolved[index]]

        if not (math.isfinite(slice_interval) and slice_interval > 0):
            for _ in range(self.num_slices - 1):
                self._note_fallback(
                    f'{key_path} (slice interval {slice_interval})',
                    'key slice')
        channels = []
        for off in self._offsets(slice_interval):
            pos = key + off
            nearest = round(pos)
            if abs(pos - nearest) < 1e-6:
                img = stored(int(nearest))
            else:
                lo = math.floor(pos)
                w = pos - lo
                img_lo, img_hi = stored(lo), stored(lo + 1)
                if img_lo is img_hi:  # both replaced by the same slice
                    img = img_lo
                else:
                    img = (1.0 - w) * img_lo + w * img_hi
            channels.append(img)
        results['num_fallback_slices'] = self.num_fallbacks - \
            num_fallback_before
        return stack_channels(channels)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_slices={self.num_slices}, '
                f'interval_mm={self.interval_mm}, hu_clip={self.hu_clip}, '
                f'log_every={self.log_every})')


@TRANSFORMS.register_module()
class LoadRecistPoints(BaseTransform):
    """Load the RECIST end points of the lesions as ``gt_recists``.

    RECIST diameters are DeepLesion's weak labels (Improved RetinaNet
    Sec. 2.2). Every instance is kept, ignored ones included, so
    ``gt_recists[i]`` belongs to ``gt_bboxes[i]`` (as mmdet's
    ``LoadAnnotations``). Only mmlesion's geometric transforms move them.

    Added keys: ``gt_recists`` (float32, (num_instances, 4, 2): long-axis end
    points p1, p2 then short-axis p3, p4, as (x, y), 0-based pixels).

    Args:
        allow_missing (bool): if True, an instance without a ``recist``
            field (e.g. from another dataset) gets NaN points; if False
            (default) it raises a ValueError naming the image and CSV row.
    """

    def __init__(self, allow_missing: bool = False) -> None:
        self.allow_missing = allow_missing

    def transform(self, results: dict) -> dict:
        """Read ``instance['recist']`` of every instance."""
        recists = []
        for i, instance in enumerate(results.get('instances', [])):
            recist = instance.get('recist')
            if recist is None and self.allow_missing:
                recist = np.full((4, 2), np.nan)
            if recist is None or np.shape(recist) != (4, 2):
                raise ValueError(
                    f"{results.get('img_path', '<image>')}: instance {i} "
                    f'(CSV row {instance.get("row", "?")}) needs a (4, 2) '
                    f"'recist' field, got {recist!r}")
            recists.append(recist)
        results['gt_recists'] = np.array(
            recists, dtype=np.float32).reshape(-1, 4, 2)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'allow_missing={self.allow_missing})')


@TRANSFORMS.register_module()
class LoadVolumeSlices(LoadDeepLesionSlices):
    """Build a slice's N-channel input from a (z, y, x) HU volume.

    The in-memory counterpart of :class:`LoadDeepLesionSlices` (same
    arguments, channels and HU clamp; :func:`slices_from_volume`), used to
    run a 2.5D detector's own test pipeline on every slice of a CT scan
    (:mod:`mmlesion.apis.whole_scan.infer`).

    Required keys: ``volume`` (float32 (z, y, x) HU, not copied),
    ``key_slice`` (int), ``slice_interval`` (mm). Added keys: ``img``,
    ``img_shape``, ``ori_shape``; ``volume`` is removed (never packed).
    """

    def transform(self, results: dict) -> dict:
        """Take the N channels around ``results['key_slice']``."""
        img = self._volume_channels(results, results.pop('volume'))
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
