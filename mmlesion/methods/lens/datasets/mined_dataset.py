# Copyright (c) mmlesion contributors. All rights reserved.
"""DeepLesion with LENS's mined annotations (Yan et al., TMI 2020, Sec. V,
step 4 of Sec. III)."""
import copy
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmdet.registry import DATASETS
from scipy.cluster.hierarchy import DisjointSet
from mmengine.logging import print_log

from mmlesion.datasets.deeplesion.dataset import DeepLesionDataset
from mmlesion.datasets.deeplesion.mined_file import read_mined_file

#: (series, z) -> the data info of that slice.
SliceInfos = Dict[Tuple[str, int], dict]


def _series_lesions(items: List[tuple], iou_thr: float) -> List[List[int]]:
    """The 3D lesions of one series (see :func:`link_3d_lesions`).

    Args:
        items (list[tuple]): ``(z, box, mined)`` of its non-ignored boxes
            (``mined`` None for an annotation, else the mining strategy).
        iou_thr (float): theta.

    Returns:
        list[list[int]]: the items of each lesion, lesions in the order of
        their first item.
    """
    from mmlesion.evaluation.functional.box_stacking import (
        StackSettings, stack_slice_boxes)
    from mmlesion.structures.box_iou_2d import box_iou
    ids: Dict[int, List[int]] = {}
    for k, (z, _, _) in enumerate(items):
        ids.setdefault(z, []).append(k)
    zs = sorted(ids)
    # each box's score is its item number, read back from the chains
    findings = stack_slice_boxes(
        zs, [np.stack([items[k][1] for k in ids[z]]) for z in zs],
        [np.asarray(ids[z], np.float64) for z in zs], StackSettings(iou_thr))
    chains = [[int(round(s)) for _, _, s in f.boxes_2d] for f in findings]
    chain_of = {k: c for c, chain in enumerate(chains) for k in chain}
    joined = DisjointSet(range(len(chains)))
    for c, chain in enumerate(chains):
        if any(items[k][2] != 'propagation' for k in chain):
            continue
        best_iou, best = 0., None
        for end, step in ((chain[0], -1), (chain[-1], 1)):
            ann = [k for k in ids.get(items[end][0] + step, [])
                   if items[k][2] is None]
            if not ann:
                continue
            iou = box_iou(items[end][1][None],
                          np.stack([items[k][1] for k in ann]))[0]
            j = int(iou.argmax())
            if iou[j] > best_iou:
                best_iou, best = float(iou[j]), ann[j]
        if best is not None:
            joined.merge(c, chain_of[best])
    lesions: Dict[int, List[int]] = {}
    for k in range(len(items)):
        lesions.setdefault(joined[chain_of[k]], []).append(k)
    return sorted(lesions.values(), key=lambda m: m[0])


def link_3d_lesions(by_slice: SliceInfos, iou_thr: float = 0.5) -> int:
    """Group the non-ignored boxes of every series into 3D lesions and
    write each slice's lesions into its ``positive_lesions``.

    LENS samples "one positive slice for each 3D GT in every training
    epoch" (Sec. VI-D, Table III). Boxes on consecutive slices with IoU >
    ``iou_thr`` (theta) are one lesion, mining's tracklet rule (Sec. V-A);
    a propagated chain that no longer links to its annotated box is joined
    to the annotated box overlapping its end most on the next slice.
    Intra-patient lesions (Sec. V-B) are chains of their own.

    Args:
        by_slice (SliceInfos): the data infos of the dataset by (series
            folder name, slice index); their ``instances`` are read and
            ``positive_lesions`` (a list of ``(series, n)`` keys, empty
            without a non-ignored box) is set on every one.
        iou_thr (float): theta.

    Returns:
        int: the number of 3D lesions.
    """
    per_series: Dict[str, List[tuple]] = {}
    for (series, z), info in sorted(by_slice.items()):
        info['positive_lesions'] = []
        for ins in info['instances']:
            if not ins.get('ignore_flag', 0):
                per_series.setdefault(series, []).append(
                    (z, np.asarray(ins['bbox'], np.float64), ins.get('mined')))
    total = 0
    for series, items in per_series.items():
        lesions = _series_lesions(items, iou_thr)
        for n, members in enumerate(lesions):
            for k in members:
                keys = by_slice[(series, items[k][0])]['positive_lesions']
                if (series, n) not in keys:
                    keys.append((series, n))
        total += len(lesions)
    return total


@DATASETS.register_module()
class DeepLesionMinedDataset(DeepLesionDataset):
    """:class:`DeepLesionDataset` plus the output of
    ``tools/lens_mine_annotations.py``.

    Mined annotations become lesions (``ignore_flag=0``,
    ``mined=<strategy>``), uncertain lesions ignored instances (neither
    positive nor negative for AFP targets and RoI sampling). A key slice
    gets them added; another slice becomes a new sample (its series'
    metadata, ``key_slice`` = z), positive with a mined box, else negative.
    Every sample gets ``positive_lesions`` (:func:`link_3d_lesions`, Sec.
    VI-D) and ``positive_group``, the nearest key slice of the series.

    Args:
        mined_ann_file (str, optional): the mined file (relative to
            ``data_root``); None behaves as :class:`DeepLesionDataset`.
        use_negatives (bool): add the listed slices without mined boxes.
        uncertain_as_gt (bool): the uncertain lesions become ground truth
            (``ignore_flag=0``, ``mined='uncertain'``) instead of ignored
            regions: LENS Table IV's "Ignored as GT" (default False, the
            paper's method).
        lesion_iou_thr (float, optional): theta of :func:`link_3d_lesions`;
            None takes the mined file's ``iou_thr`` (the theta mining
            linked its tracklets with), 0.5 (the paper's) if it has none.
        **kwargs: :class:`DeepLesionDataset` arguments.
    """

    def __init__(self,
                 *args,
                 mined_ann_file: Optional[str] = None,
                 use_negatives: bool = True,
                 lesion_iou_thr: Optional[float] = None,
                 uncertain_as_gt: bool = False,
                 **kwargs) -> None:
        self.mined_ann_file = mined_ann_file
        self.use_negatives = use_negatives
        self.uncertain_as_gt = uncertain_as_gt
        self.lesion_iou_thr = lesion_iou_thr
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
                dict(bbox=b, bbox_label=0,
                     ignore_flag=int(not self.uncertain_as_gt),
                     mined='uncertain') for b in entry['uncertain']
            ]
            added['mined'] += len(entry['mined'])
            added['uncertain'] += len(entry['uncertain'])
            info = by_slice.get((series, z))
            if info is not None:
                info['instances'] = info['instances'] + instances
                continue
            positive = bool(entry['mined'] or (self.uncertain_as_gt
                                               and entry['uncertain']))
            if not positive and not self.use_negatives:
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
            added['negatives'] += int(not positive)
        keys: dict = {}
        for (series, z), info in by_slice.items():
            if not info.get('mined_slice'):
                keys.setdefault(series, []).append(z)
        for (series, z), info in by_slice.items():
            near = keys.get(series)
            key = min(near, key=lambda k: (abs(k - z), k)) if near else z
            info['positive_group'] = (series, key)
        iou_thr = self.lesion_iou_thr
        if iou_thr is None:
            iou_thr = float(mined['metainfo'].get('iou_thr', 0.5))
        added['lesions_3d'] = link_3d_lesions(by_slice, iou_thr)
        print_log(
            f'DeepLesionMinedDataset: {path}: {added}', logger='current')
        return data_list
