# Copyright (c) mmlesion contributors. All rights reserved.
"""DeepLesion with LENS's mined annotations (Yan et al., TMI 2020, Sec. V,
step 4 of Sec. III)."""
import copy
import os.path as osp
from typing import List, Optional

from mmdet.registry import DATASETS
from mmengine.logging import print_log

from mmlesion.datasets.mined_file import read_mined_file
from .deeplesion import DeepLesionDataset


@DATASETS.register_module()
class DeepLesionMinedDataset(DeepLesionDataset):
    """:class:`DeepLesionDataset` plus the output of
    ``tools/lens_mine_annotations.py``.

    For each slice of the mined file: mined annotations become ordinary
    lesions (``ignore_flag=0``, ``mined=<strategy>``), uncertain lesions
    ignored instances (``ignore_flag=1``: neither positive nor negative in
    AFP targets and RoI sampling). A slice that is a key slice of the
    dataset gets the boxes added to its instances; any other slice becomes a
    new sample (its series' metadata, ``img_path`` = ``<series>/<z>.png``,
    ``key_slice`` = z), positive if it has a mined box, otherwise a
    negative slice (none or only uncertain boxes), which
    :class:`~mmlesion.datasets.samplers.LENSDatasetBatchSampler` draws at
    1 : 2.

    Every sample gets a ``positive_group`` ``(series, key slice)``: a new
    slice belongs to the nearest key slice of its series (mining processes
    the slices around key slices, so its mined boxes are that key slice's
    lesions followed across slices, or lesions next to them). The batch
    sampler draws one positive slice per group and epoch, as the paper
    samples "one positive slice for each 3D GT in every training epoch"
    (Sec. VI-D, Table III): propagation multiplies a lesion's positive
    slices by the tracklet length, and without this an epoch of the
    retrained model would be that many times longer than the original one.
    A group is a key slice's lesions together, not one 3D lesion each (the
    mined file does not link boxes to lesions); a series without key slice
    in this split groups by slice.

    Args:
        mined_ann_file (str, optional): the mined file (relative to
            ``data_root``); None behaves as :class:`DeepLesionDataset`.
        use_negatives (bool): add the listed slices without mined boxes.
        **kwargs: :class:`DeepLesionDataset` arguments.
    """

    def __init__(self,
                 *args,
                 mined_ann_file: Optional[str] = None,
                 use_negatives: bool = True,
                 **kwargs) -> None:
        self.mined_ann_file = mined_ann_file
        self.use_negatives = use_negatives
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        if not self.mined_ann_file:
            return data_list
        path = self.mined_ann_file
        if self.data_root and not osp.isabs(path):
            path = osp.join(self.data_root, path)
        mined = read_mined_file(path)
        by_series = {}
        by_slice = {}
        for info in data_list:
            series = osp.basename(osp.normpath(info['series_dir']))
            by_series.setdefault(series, info)
            by_slice[(series, int(info['key_slice']))] = info
        next_id = max((int(i['img_id']) for i in data_list), default=-1) + 1
        added = dict(mined=0, uncertain=0, new_slices=0, negatives=0,
                     skipped_series=0)
        for entry in mined['slices']:
            series, z = entry['series_dir'], entry['slice']
            template = by_series.get(series)
            if template is None:  # another split's series
                added['skipped_series'] += 1
                continue
            instances = [
                dict(bbox=b, bbox_label=0, ignore_flag=0, mined=src)
                for b, src in zip(entry['mined'], entry['mined_sources'])
            ] + [
                dict(bbox=b, bbox_label=0, ignore_flag=1, mined='uncertain')
                for b in entry['uncertain']
            ]
            added['mined'] += len(entry['mined'])
            added['uncertain'] += len(entry['uncertain'])
            info = by_slice.get((series, z))
            if info is not None:
                info['instances'] = info['instances'] + instances
                continue
            if not entry['mined'] and not self.use_negatives:
                continue
            new = copy.deepcopy(template)
            new.update(
                img_path=osp.join(template['series_dir'], f'{z:03d}.png'),
                img_id=next_id,
                file_name=f'{series}_{z:03d}.png',
                key_slice=z,
                mined_slice=True,
                instances=instances)
            next_id += 1
            data_list.append(new)
            by_slice[(series, z)] = new
            added['new_slices'] += 1
            added['negatives'] += int(not entry['mined'])
        keys: dict = {}
        for (series, z), info in by_slice.items():
            if not info.get('mined_slice'):
                keys.setdefault(series, []).append(z)
        for (series, z), info in by_slice.items():
            near = keys.get(series)
            key = min(near, key=lambda k: (abs(k - z), k)) if near else z
            info['positive_group'] = (series, key)
        print_log(
            f'DeepLesionMinedDataset: {path}: {added}', logger='current')
        return data_list
