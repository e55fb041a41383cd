# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS step 5, data (Yan et al., TMI 2020, Sec. IV-D, VI-B): 3D proposals
of a trained LENS model on its training set, labelled TP / FP for the FPR
network (shared by ``tools/lens_fpr_proposals.py`` and the demo command)."""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dataset import BaseDataset

from mmlesion.datasets.lens_fpr_patches import label_fpr_proposal
from mmlesion.datasets.lens.mined_file import read_mined_file
from .series_inference import predict_series_3d


def _add(d: dict, key: tuple, boxes) -> None:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(boxes):
        d[key] = np.concatenate(
            [d.get(key, np.zeros((0, 4), np.float32)), boxes])


def positive_box_3d(box, decimals: int = 2) -> List[float]:
    """A 3D box rounded to ``decimals``, each extent at least one unit of
    the last decimal (a detector's box clipped at the image border can be
    flat, which :class:`LENSFPRPatchDataset` rightly rejects)."""
    step = 10.**-decimals
    b = [round(float(v), decimals) for v in box]
    for i in range(3):
        b[i + 3] = max(b[i + 3], round(b[i] + step, decimals))
    return b


def make_fpr_proposals(model: torch.nn.Module,
                       dataset: BaseDataset,
                       mined: Optional[str] = None,
                       tp_thr: float = 0.5,
                       fp_thr: float = 0.3,
                       max_offset: Optional[int] = None,
                       show_progress: bool = True
                       ) -> Tuple[List[dict], Dict[str, int]]:
    """3D proposals of ``model`` on ``dataset``, labelled for the FPR.

    A proposal is a TP when one of its 2D boxes has IoU > ``tp_thr`` with an
    annotation or mined annotation on its slice, an FP when all its 2D boxes
    have IoU < ``fp_thr`` with everything (annotations, mined and uncertain
    lesions); the rest is not used (Sec. VI-B).

    Args:
        model (nn.Module): a trained LENS model.
        dataset (DeepLesionDataset): its training set with a test pipeline.
        mined (str, optional): the mined annotation file.
        tp_thr (float): TP IoU threshold. Defaults to 0.5.
        fp_thr (float): FP IoU threshold. Defaults to 0.3.
        max_offset (int, optional): only slices this close to a key slice.
        show_progress (bool): progress bar.

    Returns:
        tuple: (proposals ``dict(series_dir, bbox_3d, score, label)``, the
        format of :class:`LENSFPRPatchDataset`; counts of tp / fp / unused).
    """
    positives: dict = {}
    everything: dict = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        name = osp.basename(osp.normpath(info['series_dir']))
        boxes = [ins['bbox'] for ins in info['instances']]
        key = (name, int(info['key_slice']))
        _add(positives, key, [
            b for b, ins in zip(boxes, info['instances'])
            if not ins['ignore_flag']
        ])
        _add(everything, key, boxes)
    if mined:
        for s in read_mined_file(mined)['slices']:
            key = (s['series_dir'], s['slice'])
            _add(positives, key, s['mined'])
            _add(everything, key, s['mined'] + s['uncertain'])
    findings = predict_series_3d(model, dataset, tp_thr, max_offset,
                                 show_progress=show_progress)
    out, counts = [], dict(tp=0, fp=0, unused=0)
    for name, items in findings.items():
        pos = {z: b for (n, z), b in positives.items() if n == name}
        every = {z: b for (n, z), b in everything.items() if n == name}
        for f in items:
            label = label_fpr_proposal(f.boxes_2d, pos, every, tp_thr,
                                       fp_thr)
            if label is None:
                counts['unused'] += 1
                continue
            counts['tp' if label else 'fp'] += 1
            out.append(dict(series_dir=name,
                            bbox_3d=positive_box_3d(f.bbox_3d),
                            score=round(float(f.score), 4), label=label))
    return out, counts
