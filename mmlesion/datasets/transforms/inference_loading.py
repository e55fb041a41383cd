# Copyright (c) mmlesion contributors. All rights reserved.
"""Accept what mmdet's inference APIs hand to a test pipeline."""
import os
import os.path as osp
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmdet.registry import TRANSFORMS

from mmlesion.datasets.deeplesion.dl_info import series_spacings

#: (csv path, mtime) -> {series folder name: (slice interval, pixel spacing)}
_DL_INFO_CACHE: Dict[Tuple[str, float], Dict[str, Tuple[float, float]]] = {}


def series_geometry(img_path: str) -> Optional[Dict[str, float]]:
    """Slice interval and pixel spacing of a DeepLesion key slice.

    Looks the series up in ``<root>/DL_info.csv`` of the release layout
    ``<root>/Images_png/<series>/<slice>.png`` (cached per file and
    modification time).

    Args:
        img_path (str): path of the key-slice PNG.

    Returns:
        dict | None: ``slice_interval`` (mm) and ``spacing`` (mm/px), or
        None when there is no such table or it does not list the series.
    """
    series_dir = osp.dirname(osp.abspath(img_path))
    csv_path = osp.join(osp.dirname(osp.dirname(series_dir)), 'DL_info.csv')
    if not osp.isfile(csv_path):
        return None
    key = (csv_path, os.stat(csv_path).st_mtime)
    if key not in _DL_INFO_CACHE:
        _DL_INFO_CACHE[key] = series_spacings(csv_path)
    found = _DL_INFO_CACHE[key].get(osp.basename(series_dir))
    if found is None:
        return None
    return dict(slice_interval=found[0], spacing=found[1])


@TRANSFORMS.register_module()
class LesionInferencerLoader(BaseTransform):
    """First transform of the mmlesion 2.5D test pipelines.

    A dataset sample passes unchanged. What mmdet's inference APIs hand over
    becomes the keys :class:`LoadDeepLesionSlices` reads:

    - a key-slice path (``str`` / ``Path`` / ``dict(img_path=...)``); a
      missing ``slice_interval`` (and ``spacing``) is looked up with
      :func:`series_geometry`, else the channels are key-slice copies
      (logged);
    - an (H, W, N) array of the N slices (HU, or uint16 PNG values);
    - ``dict(volume=(D, H, W) HU, key_slice=index, slice_interval=mm)``.

    It takes no arguments, so ``inference_detector`` may swap it for
    ``LoadImageFromNDArray``.
    """

    def transform(self, results: Union[str, Path, np.ndarray, dict]) -> dict:
        """Turn an inference input into a results dict.

        Args:
            results (str | Path | np.ndarray | dict): the input.

        Returns:
            dict: results for :class:`LoadDeepLesionSlices`.
        """
        if isinstance(results, (str, Path)):
            results = dict(img_path=str(results))
        elif isinstance(results, np.ndarray):
            results = dict(img=results, img_path=None)
        elif isinstance(results, dict):
            results = dict(results)
            inner = results.get('img_path')
            if isinstance(inner, dict):  # inference_detector(model, dict)
                results.pop('img_path')
                results.update(inner)
            elif isinstance(inner, np.ndarray):
                results['img'] = results.pop('img_path')
            elif isinstance(inner, Path):
                results['img_path'] = str(inner)
        else:
            raise TypeError(
                f'{self.__class__.__name__}: an input must be a slice path, '
                'an (H, W, N) array or a dict (img_path=... or volume=..., '
                f'key_slice=..., slice_interval=...), got {type(results)}')
        if results.get('volume') is not None or results.get(
                'img') is not None:
            results.setdefault('img_path', None)
            return results
        img_path = results.get('img_path')
        if not isinstance(img_path, str):
            raise KeyError(f'{self.__class__.__name__}: no image in the '
                           f'input (keys {sorted(results)})')
        if results.get('slice_interval') is None:
            geometry = series_geometry(img_path)
            if geometry is not None:
                for k, v in geometry.items():
                    results.setdefault(k, v)
            else:
                print_log(
                    f'{img_path}: slice interval unknown (no DL_info.csv '
                    'listing the series two folders up): the neighbour '
                    'channels are copies of the key slice. Pass dict('
                    'img_path=..., slice_interval=<mm>) for the real ones.',
                    logger='current', level=30)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'
