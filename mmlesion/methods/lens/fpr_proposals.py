# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS step 5, data (Yan et al., TMI 2020, Sec. IV-D, VI-B): 3D proposals
of a trained LENS model on its training set, labelled TP / FP for the FPR
network (shared by ``tools/lens_fpr_proposals.py`` and the demo command)."""
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dataset import BaseDataset

from mmlesion.apis.series_inference import predict_series_3d
from mmlesion.methods.lens.datasets.fpr_patches import (FORMAT,
                                                        label_fpr_proposal,
                                                        positive_box_3d)
from mmlesion.datasets.deeplesion.mined_file import read_mined_file
from mmlesion.utils.tool_defaults import tool_defaults
from mmlesion.utils.writing.field_record import FieldRecord

#: The defaults ``lens_fpr_proposals.py --help`` shows
#: (``tool_defaults.json``).
_SHOWN = tool_defaults(__file__)['FPRProposalSettings']


@dataclass(frozen=True)
class FPRProposalSettings:
    """How proposals are labelled for the FPR (the options of
    ``tools/lens_fpr_proposals.py``).

    Args:
        tp_thr (float): a proposal is a TP when a 2D box has IoU above
            this with a positive.
        fp_thr (float): an FP when all its boxes have IoU below this with
            every box.
        max_offset (int, optional): only slices this close to a key slice.
    """
    tp_thr: float = _SHOWN['tp_thr']
    fp_thr: float = _SHOWN['fp_thr']
    max_offset: Optional[int] = _SHOWN['max_offset']


@dataclass
class FPRProposal(FieldRecord):
    """A labelled 3D proposal, a record of the FPR's training file (the
    format of :class:`~mmlesion.methods.lens.datasets.LENSFPRPatchDataset`).

    Args:
        series_dir (str): the series folder.
        bbox_3d (list[float]): ``[x1, y1, z1, x2, y2, z2]``, z in slice
            indices, with a positive extent.
        score (float): the LENS score, 4 decimals.
        label (int): 1 TP, 0 FP.
    """
    series_dir: str
    bbox_3d: List[float]
    score: float
    label: int


@dataclass
class FPRProposalCounts(FieldRecord):
    """How many 3D proposals were labelled TP, FP or left unused."""
    tp: int = 0
    fp: int = 0
    unused: int = 0


@dataclass
class FPRProposals:
    """What :func:`make_fpr_proposals` gives back.

    Args:
        proposals (list[FPRProposal]): the labelled proposals.
        counts (FPRProposalCounts): TP / FP / unused counts.
    """
    proposals: List[FPRProposal] = field(default_factory=list)
    counts: FPRProposalCounts = field(default_factory=FPRProposalCounts)

    def to_dict(self, **metainfo: Any) -> Dict[str, Any]:
        """The FPR's training file (the JSON it is written as).

        Args:
            **metainfo: further provenance, e.g. the thresholds.
        """
        return dict(
            metainfo=dict(format=FORMAT, counts=self.counts.to_dict(),
                          **metainfo),
            proposals=[p.to_dict() for p in self.proposals])


def _add(d: dict, key: tuple, boxes) -> None:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(boxes):
        d[key] = np.concatenate(
            [d.get(key, np.zeros((0, 4), np.float32)), boxes])


def make_fpr_proposals(model: torch.nn.Module,
                       dataset: BaseDataset,
                       mined: Optional[str] = None,
                       settings: FPRProposalSettings = FPRProposalSettings(),
                       show_progress: bool = True) -> FPRProposals:
    """3D proposals of ``model`` on ``dataset``, labelled for the FPR
    (Sec. VI-B: :func:`~mmlesion.methods.lens.datasets.fpr_patches.
    label_fpr_proposal`).

    Args:
        model (nn.Module): a trained LENS model.
        dataset (DeepLesionDataset): its training set with a test pipeline.
        mined (str, optional): the mined annotation file.
        settings (FPRProposalSettings): the TP / FP IoU thresholds and the
            slices used.
        show_progress (bool): progress bar.

    Returns:
        FPRProposals: the proposals (the records of
        :class:`LENSFPRPatchDataset`'s file) and the TP / FP / unused
        counts.
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
    tp_thr, fp_thr = settings.tp_thr, settings.fp_thr
    findings = predict_series_3d(model, dataset, tp_thr, settings.max_offset,
                                 show_progress=show_progress)
    out = FPRProposals()
    for name, items in findings.items():
        pos = {z: b for (n, z), b in positives.items() if n == name}
        every = {z: b for (n, z), b in everything.items() if n == name}
        for f in items:
            label = label_fpr_proposal(f.boxes_2d, pos, every, tp_thr,
                                       fp_thr)
            if label is None:
                out.counts.unused += 1
                continue
            if label:
                out.counts.tp += 1
            else:
                out.counts.fp += 1
            out.proposals.append(FPRProposal(
                series_dir=name, bbox_3d=positive_box_3d(f.bbox_3d),
                score=round(float(f.score), 4), label=label))
    return out
