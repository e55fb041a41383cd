# Copyright (c) mmlesion contributors. All rights reserved.
"""Every stored slice of every series of a DeepLesion-layout dataset.

The walk needs only mmengine's dataset interface (``get_data_info``,
``pipeline``) and the DeepLesion folder layout (``<series_dir>/<z>.png``);
slice-by-slice inference and proposal mining
(:mod:`mmlesion.methods.lens.mining.proposals`) use it.
"""
import copy
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.dataset import BaseDataset

from ...utils.reporting.progress import progress_bar


def stored_slices(series_dir: str) -> List[int]:
    """The sorted indices ``z`` of the ``<z>.png`` slices of a series."""
    out = []
    for name in os.listdir(series_dir):
        stem, ext = osp.splitext(name)
        if ext == '.png' and stem.isdigit():
            out.append(int(stem))
    return sorted(out)


def iter_series_slices(
    dataset: BaseDataset,
    max_offset: Optional[int] = None,
    show_progress: bool = True
) -> Iterator[Tuple[str, int, dict, bool, dict]]:
    """Every stored slice of every series of a DeepLesion-layout dataset,
    through the dataset's pipeline.

    Args:
        dataset (DeepLesionDataset): built with a test pipeline ending in
            ``PackDetInputs``.
        max_offset (int, optional): only slices at most this many slices
            from a key slice of the series.
        show_progress (bool): mmengine progress bar.

    Yields:
        tuple: (series_dir, slice index, the series' data_info used as
        template (the key slice's own when the slice is a key slice),
        whether it is a key slice, the packed pipeline output).
    """
    by_series: Dict[str, List[dict]] = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        by_series.setdefault(info['series_dir'], []).append(info)
    plan = []
    for series_dir, infos in by_series.items():
        keys = {int(i['key_slice']): i for i in infos}
        for z in stored_slices(series_dir):
            if max_offset is not None and min(
                    abs(z - k) for k in keys) > max_offset:
                continue
            plan.append((series_dir, z, keys.get(z, infos[0]), z in keys))
    bar = progress_bar(
        len(plan), label='series') if show_progress and plan else None
    for series_dir, z, template, is_key in plan:
        item = copy.deepcopy(template)
        item.update(
            img_path=osp.join(series_dir, f'{z:03d}.png'), key_slice=z)
        if not is_key:
            item['instances'] = []
        yield series_dir, z, template, is_key, dataset.pipeline(item)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.finish()
