# Copyright (c) mmlesion contributors. All rights reserved.
"""The RPN's proposals on the CPU path: mmdet's ``RPNHead`` proposals,
the same boxes and scores, in a little more than half its time on a CPU
(:func:`attach_proposals`).

Two steps of mmdet's ``RPNHead._predict_by_feat_single`` cost more than
they need on a CPU: the ``nms_pre`` best anchors of each level are taken
by sorting all of its scores (some 32,000 on P2 of a 416-pixel slice), and
its NMS compares every kept box with every other, the levels kept apart
only by an offset on their coordinates. Here the best are taken by
``topk`` and mmcv's ``batched_nms`` runs level by level (its
``split_thr``: the same offset boxes, so the same IoUs, without the
comparisons across levels). The rest is the head's own: its box coder, its
``_bbox_post_process`` (the small-box filter, ``max_per_img``, rescaling).
"""
import functools
from typing import Any, List, Optional, Sequence

import torch
from mmdet.structures.bbox import cat_boxes
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn


def _proposals_of_image(head: nn.Module,
                        cls_score_list: Sequence[Tensor],
                        bbox_pred_list: Sequence[Tensor],
                        score_factor_list: Any,
                        mlvl_priors: Sequence[Tensor], img_meta: dict,
                        cfg: Optional[ConfigDict], rescale: bool = False,
                        with_nms: bool = True) -> InstanceData:
    """One image's proposals, as mmdet's ``RPNHead`` gives them (module
    doc); the arguments of its ``_predict_by_feat_single``, by its names.
    Private like the mmdet method it stands in for, whose arguments it must
    take (so no settings object).

    Args:
        head (nn.Module): an mmdet ``RPNHead``.
        cls_score_list (Sequence[Tensor]): per level, (A * C, H, W).
        bbox_pred_list (Sequence[Tensor]): per level, (A * 4, H, W).
        score_factor_list: not used by an RPN.
        mlvl_priors (Sequence[Tensor]): per level, (H * W * A, 4) anchors.
        img_meta (dict): the image's meta (its ``img_shape``).
        cfg (ConfigDict, optional): the test config (``nms_pre``, ``nms``,
            ``max_per_img``, ``min_bbox_size``); None: the head's.
        rescale (bool): boxes in the original image's pixels.
        with_nms (bool): mmdet's RPN asks it to be True.

    Returns:
        InstanceData: ``bboxes``, ``scores`` and ``labels``, best first.
    """
    cfg = ConfigDict(head.test_cfg if cfg is None else cfg)
    nms_pre = cfg.get('nms_pre', -1)
    deltas: List[Tensor] = []
    anchors: List[Tensor] = []
    scores: List[Tensor] = []
    levels: List[Tensor] = []
    for level, (cls, reg, prior) in enumerate(
            zip(cls_score_list, bbox_pred_list, mlvl_priors)):
        cls = cls.permute(1, 2, 0).reshape(-1, head.cls_out_channels)
        score = (cls.sigmoid() if head.use_sigmoid_cls else
                 cls.softmax(-1)[:, :-1]).reshape(-1)
        reg = reg.permute(1, 2, 0).reshape(-1, head.bbox_coder.encode_size)
        if 0 < nms_pre < score.numel():
            score, best = score.topk(nms_pre)
            reg, prior = reg[best], prior[best]
        deltas.append(reg)
        anchors.append(prior)
        scores.append(score)
        levels.append(torch.full_like(score, level, dtype=torch.long))
    results = InstanceData()
    results.bboxes = head.bbox_coder.decode(
        cat_boxes(anchors), torch.cat(deltas), max_shape=img_meta['img_shape'])
    results.scores = torch.cat(scores)
    results.level_ids = torch.cat(levels)
    cfg.nms = dict(cfg.nms, split_thr=0)
    return head._bbox_post_process(results=results, cfg=cfg, rescale=rescale,
                                   with_nms=with_nms, img_meta=img_meta)


def attach_proposals(head: Any, marker: object) -> bool:
    """Let ``head`` give its proposals by :func:`_proposals_of_image`
    (``marker`` kept on the method: :func:`~.use.detach_backend`).

    Returns:
        bool: whether it was attached: only to mmdet's own ``RPNHead``, not
        to a subclass, which may give other proposals (nor to None).
    """
    from mmdet.models.dense_heads import RPNHead
    if type(head) is not RPNHead:
        return False

    predict_single = functools.partial(_proposals_of_image, head)
    predict_single.backend = marker
    head._predict_by_feat_single = predict_single
    return True
