# Copyright (c) mmlesion contributors. All rights reserved.
"""3D false-positive reduction (FPR) of LENS (Yan et al., TMI 2020,
Sec. IV-D)."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor


def combine_fpr_scores(lens_scores: Tensor, fpr_scores: Tensor) -> Tensor:
    """LENS Eq. 2: the final score of a 3D proposal,
    ``(s_LENS + s_FPR) / 2``."""
    return (lens_scores + fpr_scores) / 2


def roi_pool_3d(feat: Tensor, boxes: Tensor, stride: Sequence[int],
                output_size: Sequence[int]) -> Tensor:
    """Max-pool 3D boxes of a feature map to a fixed size.

    mmcv's RoIAlign / RoIPool are 2D and its 3D RoI-aware pooling is for
    point clouds, so the 3D RoI pooling is written here: the box, divided by
    the feature stride, is rounded outwards to whole voxels (at least one,
    clipped to the map) and adaptively max-pooled (as RoIPool).

    Args:
        feat (Tensor): (N, C, Z, Y, X).
        boxes (Tensor): (N, 6) ``[x1, y1, z1, x2, y2, z2]`` in input voxels,
            one per sample.
        stride (Sequence[int]): (sz, sy, sx) of ``feat``.
        output_size (Sequence[int]): (oz, oy, ox).

    Returns:
        Tensor: (N, C, oz, oy, ox).
    """
    n, _, zd, yd, xd = feat.shape
    sz, sy, sx = stride
    out = []
    for i in range(n):
        x1, y1, z1, x2, y2, z2 = boxes[i].tolist()
        lo, hi = [], []
        for a, b, s, size in ((z1, z2, sz, zd), (y1, y2, sy, yd),
                              (x1, x2, sx, xd)):
            start = min(max(int(a // s), 0), size - 1)
            stop = max(min(int(-(-b // s)), size), start + 1)
            lo.append(start)
            hi.append(stop)
        crop = feat[i:i + 1, :, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        out.append(F.adaptive_max_pool3d(crop, output_size))
    return torch.cat(out)


@MODELS.register_module()
class LENSFPR(BaseModel):
    """3D FPR classifier of LENS (Sec. IV-D, Fig. 2).

    A 3D patch centred on a LENS 3D proposal goes through
    :class:`~mmlesion.models.backbones.ResNet18FPR3D`; the features of the
    four ResBlocks are RoI-pooled ("the ROI of ResBlocks 1-3 is the 3D box
    and that of ResBlock 4 is the whole 3D patch"), concatenated, and
    FC-ReLU-FC gives one logit (TP vs FP) trained with a sigmoid focal
    loss. At inference the final score is Eq. 2
    (:func:`combine_fpr_scores`).

    Samples: per patch a dict (or a ``BaseDataElement`` metainfo) with
    ``bbox_3d`` (the proposal in patch voxels), ``label`` (1 = TP; training)
    and ``lens_score`` (prediction).

    Args:
        backbone (dict): the 3D ResNet-18 config.
        roi_output_size (Sequence[int]): pooled (z, y, x) per ResBlock.
        fc_channels (int): hidden FC width.
        loss_cls (dict): focal loss config.
        data_preprocessor (dict, optional): mmengine's; patches come
            normalised.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 roi_output_size: Sequence[int] = (1, 2, 2),
                 fc_channels: int = 256,
                 loss_cls: dict = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.roi_output_size = tuple(roi_output_size)
        pooled = sum(self.backbone.out_channels) * int(
            torch.tensor(self.roi_output_size).prod())
        self.fc = nn.Sequential(
            nn.Linear(pooled, fc_channels), nn.ReLU(inplace=True),
            nn.Linear(fc_channels, 1))
        self.loss_cls = MODELS.build(loss_cls)

    @staticmethod
    def _boxes(data_samples: List[dict], device) -> Tensor:
        try:
            return torch.tensor([list(map(float, s['bbox_3d']))
                                 for s in data_samples],
                                device=device).reshape(-1, 6)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                'LENSFPR: every sample needs bbox_3d = [x1, y1, z1, x2, y2, '
                f'z2] ({err})') from err

    def extract_feat(self, inputs: Tensor, boxes: Tensor) -> Tensor:
        """Concatenated RoI-pooled features of ResBlocks 1-4, (N, D)."""
        feats = self.backbone(inputs)
        pooled = []
        for i, f in enumerate(feats):
            if i < 3:
                pooled.append(
                    roi_pool_3d(f, boxes, self.backbone.strides[i],
                                self.roi_output_size))
            else:  # ResBlock 4: the whole patch
                pooled.append(F.adaptive_max_pool3d(f, self.roi_output_size))
        return torch.cat([p.flatten(1) for p in pooled], dim=1)

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[dict]] = None,
                mode: str = 'tensor') -> Union[Tensor, Dict, List[dict]]:
        """mmengine's three modes: logits, losses or predictions.

        Args:
            inputs (Tensor | list[Tensor]): (N, 1, Z, Y, X) patches, or a
                list of (1, Z, Y, X) patches (mmengine's pseudo collate).
            data_samples (list[dict]): see the class doc.
            mode (str): 'tensor', 'loss' or 'predict'.
        """
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if data_samples is not None:
            data_samples = [
                s.metainfo if isinstance(s, BaseDataElement) else s
                for s in data_samples
            ]
        if data_samples is None or len(data_samples) != inputs.shape[0]:
            raise ValueError('LENSFPR needs one data sample per patch')
        logits = self.fc(
            self.extract_feat(inputs, self._boxes(data_samples,
                                                  inputs.device)))[:, 0]
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            labels = torch.tensor([int(s['label']) for s in data_samples],
                                  device=inputs.device)
            # mmdet's focal loss: class 0 is the foreground (TP), 1 the
            # background (FP).
            target = (labels == 0).long()
            return dict(
                loss_fpr=self.loss_cls(
                    logits[:, None], target, avg_factor=float(len(labels))))
        if mode == 'predict':
            fpr = logits.sigmoid()
            out = []
            for s, p in zip(data_samples, fpr):
                res = dict(s, fpr_score=float(p))
                if 'lens_score' in s:
                    res['score'] = float(
                        combine_fpr_scores(
                            torch.tensor(float(s['lens_score'])), p))
                out.append(res)
            return out
        raise ValueError(f'LENSFPR: unknown mode {mode!r}')
