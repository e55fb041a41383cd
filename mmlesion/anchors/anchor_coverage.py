# Copyright (c) mmlesion contributors. All rights reserved.
"""Anchor coverage of a dataset: best-anchor IoU per ground-truth box.

Zlocha et al. 2019 (Improved RetinaNet), Sec. 2.1 motivate the anchor
optimisation by the ground-truth boxes whose best anchor overlaps them with
IoU < 0.5 (never positives). This module measures that for named anchor
sets on the boxes a config trains on, and runs :class:`DEAnchorOptimizer`
on those same boxes.
"""
from typing import Dict, List, NamedTuple, Optional, TypedDict

import numpy as np
from mmengine.config import Config

from .anchor_config import AnchorConfig, evaluate_anchors
from .anchor_iou import best_anchor_iou, boxes_to_wh
from .box_sources import anchor_config_from_model, boxes_from_config
from .de_anchor_optimizer import AnchorOptimResult, DEAnchorOptimizer


class AnchorCoverage(TypedDict):
    """Best-anchor IoU statistics of one anchor set (a JSON record of the
    coverage reports): ``frac_iou_ge_thr`` is the fraction of boxes whose
    best anchor reaches ``iou_thr``; ``strides`` to ``scales`` are the
    anchors."""
    num_boxes: int
    mean_iou: float
    median_iou: float
    frac_iou_ge_thr: float
    iou_thr: float
    strides: List[int]
    sizes: List[float]
    ratios: List[float]
    scales: List[float]


def anchor_coverage(box_wh: np.ndarray,
                    anchor_sets: Dict[str, AnchorConfig],
                    iou_thr: float = .5) -> Dict[str, AnchorCoverage]:
    """Best-anchor IoU statistics of each anchor set on the same boxes.

    Args:
        box_wh (np.ndarray): ``(N, 2)`` box widths and heights (pixels of
            the network input).
        anchor_sets (dict): name -> anchors.
        iou_thr (float): the positive IoU of the head (RetinaNet: 0.5).

    Returns:
        dict: name -> its :class:`AnchorCoverage`.
    """
    box_wh = np.asarray(box_wh, np.float64).reshape(-1, 2)
    if not len(box_wh):
        raise ValueError('anchor_coverage: no boxes')
    out = {}
    for name, anchors in anchor_sets.items():
        best = best_anchor_iou(box_wh, anchors.shapes())
        stats = evaluate_anchors(box_wh, anchors, iou_thr)
        out[name] = AnchorCoverage(
            num_boxes=stats.num_boxes,
            mean_iou=round(stats.mean_iou, 4),
            median_iou=round(float(np.median(best)), 4),
            frac_iou_ge_thr=round(1. - stats.frac_below, 4),
            iou_thr=float(iou_thr),
            strides=[int(s) for s in anchors.strides],
            sizes=[float(s) for s in anchors.sizes],
            ratios=[round(float(r), 4) for r in anchors.ratios],
            scales=[round(float(s), 4) for s in anchors.scales])
    return out


def config_boxes(cfg: Config, split: str = 'train') -> np.ndarray:
    """``(N, 2)`` widths / heights of the boxes of ``cfg``'s ``split``
    dataloader, resized as its pipeline."""
    boxes, _ = boxes_from_config(cfg, split)
    return boxes_to_wh(boxes)


def optimise_anchors(cfg: Config,
                     box_wh: np.ndarray,
                     seed: int = 0,
                     **kwargs) -> AnchorOptimResult:
    """Run :class:`DEAnchorOptimizer` for ``cfg``'s head on ``box_wh``.

    The strides and sizes of the config's anchor generator are kept, the
    ratios and scales searched (the paper's bounds; ``kwargs`` override
    the optimiser's settings).
    """
    before = anchor_config_from_model(cfg)
    kwargs.setdefault('log_interval', 0)
    return DEAnchorOptimizer(
        sizes=before.sizes, strides=before.strides, seed=seed,
        **kwargs).optimize(box_wh)


class CoverageReport(NamedTuple):
    """What :func:`coverage_report` found: the :func:`anchor_coverage`
    dict (``mmdet_default``, ``config``, ``optimised``) and the optimised
    anchors."""
    coverage: Dict[str, AnchorCoverage]
    optimised: AnchorConfig


def coverage_report(cfg: Config,
                    split: str = 'train',
                    seed: int = 0,
                    iou_thr: float = .5,
                    optimised: Optional[AnchorConfig] = None
                    ) -> CoverageReport:
    """Coverage of mmdet's default RetinaNet anchors (at the config's
    strides and sizes), the config's own anchors and the anchors optimised
    on the config's ``split`` boxes.

    Args:
        cfg (Config): a RetinaNet-style config (``model.bbox_head`` or
            ``model.rpn_head`` with an ``anchor_generator``).
        split (str): the split whose boxes are covered and optimised on.
        seed (int): seed of the optimiser.
        iou_thr (float): positive IoU.
        optimised (AnchorConfig, optional): use these instead of running
            the optimiser.

    Returns:
        tuple: the :func:`anchor_coverage` dict (``mmdet_default``,
        ``config``, ``optimised``) and the optimised anchors.
    """
    wh = config_boxes(cfg, split)
    own = anchor_config_from_model(cfg)
    if optimised is None:
        optimised = optimise_anchors(cfg, wh, seed=seed).anchors
    default = AnchorConfig.retinanet_default(strides=own.strides,
                                             sizes=own.sizes)
    return CoverageReport(anchor_coverage(
        wh, dict(mmdet_default=default, config=own, optimised=optimised),
        iou_thr), optimised)
