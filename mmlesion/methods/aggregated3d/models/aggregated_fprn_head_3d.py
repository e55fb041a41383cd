# Copyright (c) mmlesion contributors. All rights reserved.
"""Aggregated false positive reduction branch (FPRN) of the 3D Aggregated
Faster R-CNN (Sec. III-C, III-D, Fig. 3, Table I)."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList, OptConfigType, \
    OptMultiConfig
from mmlesion.structures import bbox3d_to_zyxd, zyxd_to_bbox3d
from .dense_block_3d import NORM3D, Bottleneck3D
from .roi_align_3d import roi_align_3d


def diameter_alignment(zyxd: Tensor,
                       ref_levels: Tensor,
                       strides: Sequence[int],
                       enabled: bool = True) -> Tensor:
    """RoI of a proposal on every pyramid level, in that level's feature
    voxels (Fig. 3).

    With Diameter Alignment the crop size at the proposal's reference level
    (``d / stride_ref`` feature voxels) is used on every level around the
    same centre (the caption's proposal of size 17.23 from "Resolution 16"
    has size 1.08 on every level), so a small nodule gets more context on
    coarse levels and a large one in-nodule detail on fine levels. Without
    it (the "w/o DA" ablation) the size on level ``l`` is ``d / stride_l``.

    Args:
        zyxd (Tensor): (K, 4) proposals ``(z, y, x, d)`` in input voxels.
        ref_levels (Tensor): (K,) index of each proposal's reference level.
        strides (Sequence[int]): level strides.
        enabled (bool): Diameter Alignment on.

    Returns:
        Tensor: (K, L, 4) ``(z, y, x, size)`` in feature voxels per level
        (continuous coordinates where input voxel ``v`` maps to ``v / s``).
    """
    strides_t = zyxd.new_tensor([float(s) for s in strides])
    ctr = zyxd[:, None, :3] / strides_t[None, :, None]
    if enabled:
        size = (zyxd[:, 3] / strides_t[ref_levels.long()])[:, None].expand(
            -1, len(strides))
    else:
        size = zyxd[:, 3:4] / strides_t[None]
    return torch.cat([ctr, size[..., None]], dim=-1)


class LocalMagnification(nn.Module):
    """Table I's "Magnify": ``[2x2x2 deconv, Bottle Neck x 2] x 2`` (Sec.
    III-D), shared by all pyramid levels.

    Table I gives a "Magnify Output 5x5x5" but not the deconvolution
    stride: with ``stride=1`` (default) each ``2x2x2`` transposed conv grows
    a crop by one voxel per axis (3^3 -> 5^3, a shift without zoom); with
    ``stride=2`` each stage doubles it (3^3 -> 12^3, a x2 zoom in RoI
    Align's ``aligned=True`` box coordinates). See :meth:`map_coords`.

    Args:
        channels (int): feature channels.
        num_stages (int): deconv stages (2).
        num_bottlenecks (int): bottlenecks per stage (2).
        stride (int): deconv stride, 1 (Table I's 5^3) or 2 (12^3).
        norm_cfg (dict, optional): norm layer.
    """

    #: Table I's "2x2x2 deconv" (no padding).
    kernel_size = 2
    padding = 0

    def __init__(self,
                 channels: int,
                 num_stages: int = 2,
                 num_bottlenecks: int = 2,
                 stride: int = 1,
                 norm_cfg: OptConfigType = None) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f'LocalMagnification stride must be 1 (Table '
                             f'I, 3^3 -> 5^3) or 2 (3^3 -> 12^3), got '
                             f'{stride!r}')
        layers = []
        for _ in range(num_stages):
            layers.append(
                nn.ConvTranspose3d(channels, channels, self.kernel_size,
                                   stride=stride, padding=self.padding))
            layers.extend(
                Bottleneck3D(channels, norm_cfg=norm_cfg)
                for _ in range(num_bottlenecks))
        self.layers = nn.Sequential(*layers)
        self.num_stages = num_stages
        self.stride = stride

    def output_size(self, k: int) -> int:
        """Edge of the magnified crop of a ``k^3`` window.

        Args:
            k (int): input window edge.

        Returns:
            int: ``k + num_stages`` (stride 1) or ``k * 2**num_stages``
            (stride 2), i.e. ``(k - 1) * s + t - 2p`` per stage.
        """
        for _ in range(self.num_stages):
            k = (k - 1) * self.stride + self.kernel_size - 2 * self.padding
        return k

    def map_coords(self, coords: Tensor, aligned: bool = True) -> Tensor:
        """Coordinates in the input crop -> the same points in the output.

        Each stage maps the voxel-centre index ``c`` to
        ``s * c + (t - 1) / 2 - p``; RoI Align reads box coordinate ``x``
        at index ``x - 0.5`` when ``aligned`` (``x`` itself otherwise).

        Args:
            coords (Tensor): box coordinates in voxels of the input crop
                (any shape).
            aligned (bool): the convention of the RoI Align that reads the
                output (:func:`roi_align_3d`'s ``aligned``).

        Returns:
            Tensor: the coordinates in voxels of the magnified crop.
        """
        offset = 0.5 if aligned else 0.0
        shift = (self.kernel_size - 1) / 2 - self.padding
        idx = coords - offset
        for _ in range(self.num_stages):
            idx = idx * self.stride + shift
        return idx + offset

    def forward(self, x: Tensor) -> Tensor:
        """Magnify (N, C, k, k, k) crops to (N, C, m, m, m), ``m =``
        :meth:`output_size` ``(k)``."""
        return self.layers(x)


@MODELS.register_module()
class AggregatedFPRNHead3D(BaseModule):
    """The aggregated classifier branch (Sec. III-C/D, Fig. 2, Fig. 3).

    For every proposal and every pyramid level: Diameter Alignment
    (:func:`diameter_alignment`) gives the RoI on the level; with
    ``use_magnify`` (Sec. III-D) the ``crop_size^3`` window of the level's
    voxels centred nearest the RoI centre is magnified by
    :class:`LocalMagnification` (shared by the levels) and the RoI is read
    where the deconvolutions put it (parts of a RoI larger than the window
    are not seen); ``RoIAlign3D`` reads it at ``roi_size^3``.

    The level features are concatenated (3 levels x 32 channels x 2^3 =
    768) and classified by ``FC 768 -> 256 -> 1`` (Table I). Training
    samples are the RPN's proposals plus the ground truth, labelled by
    ``train_cfg.assigner`` and balanced by ``train_cfg.sampler``; the loss
    is sigmoid cross-entropy.

    Args:
        in_channels (int): pyramid channels (32).
        strides (Sequence[int]): level strides (4, 8, 16).
        roi_size (int): RoI Align output per axis (2).
        sampling_ratio (int): RoI Align points per bin per axis.
        crop_size (int): Local Magnification window (feature voxels).
        magnify_stride (int): deconv stride of Local Magnification: 1
            (Table I, 3^3 -> 5^3) or 2 (3^3 -> 12^3).
        fc_channels (int): hidden FC width (256).
        use_diameter_alignment (bool): DA on (Table III ablation).
        use_magnify (bool): Local Magnification on (Table III ablation).
        loss_cls (dict): loss config.
        train_cfg (dict, optional): ``assigner``, ``sampler``.
        norm_cfg (dict, optional): norm layer.
        init_cfg (dict, optional): initialisation.
    """

    def __init__(self,
                 in_channels: int = 32,
                 strides: Sequence[int] = (4, 8, 16),
                 roi_size: int = 2,
                 sampling_ratio: int = 2,
                 crop_size: int = 3,
                 magnify_stride: int = 1,
                 fc_channels: int = 256,
                 use_diameter_alignment: bool = True,
                 use_magnify: bool = True,
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=True,
                     loss_weight=1.0),
                 train_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if crop_size < 1 or roi_size < 1:
            raise ValueError('crop_size and roi_size must be >= 1')
        self.strides = [int(s) for s in strides]
        self.roi_size = int(roi_size)
        self.sampling_ratio = int(sampling_ratio)
        self.crop_size = int(crop_size)
        self.use_diameter_alignment = use_diameter_alignment
        self.use_magnify = use_magnify
        self.magnify = LocalMagnification(
            in_channels, stride=magnify_stride,
            norm_cfg=norm_cfg or NORM3D) if use_magnify else None
        in_fc = len(self.strides) * in_channels * self.roi_size**3
        self.classifier = nn.Sequential(
            nn.Linear(in_fc, fc_channels), nn.ReLU(inplace=True),
            nn.Linear(fc_channels, 1))
        self.loss_cls = MODELS.build(loss_cls)
        self.train_cfg = train_cfg
        if train_cfg is not None:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            self.sampler = TASK_UTILS.build(train_cfg['sampler'])

    def _level_features(self, feat: Tensor, rois_f: Tensor, level: int,
                        batch_idx: Tensor) -> Tensor:
        """(K, C, r, r, r) features of the (K, 4) ``(z, y, x, size)`` RoIs
        (feature voxels, image ``batch_idx``) on one level's map."""
        boxes_f = zyxd_to_bbox3d(rois_f)  # feature-voxel box coordinates
        if not self.use_magnify:
            rois = torch.cat([batch_idx[:, None].to(boxes_f), boxes_f], 1)
            return roi_align_3d(feat, rois, self.roi_size, 1.0,
                                self.sampling_ratio)
        k = self.crop_size
        # window [start, start + k) whose centre is nearest the RoI centre
        ctr_xyz = rois_f[:, [2, 1, 0]]
        start = torch.round(ctr_xyz - k / 2)
        window = torch.cat([start, start + k], 1)
        crops = roi_align_3d(
            feat, torch.cat([batch_idx[:, None].to(window), window], 1), k,
            1.0, sampling_ratio=1,
            aligned=True)  # exact voxel values (zero outside)
        mag = self.magnify(crops)
        # where the deconvolutions put the window's points (stride 1: +1
        # voxel, no scale; stride 2: x4), in the RoI Align convention used
        local = self.magnify.map_coords(boxes_f - start.repeat(1, 2),
                                        aligned=True)
        idx = torch.arange(len(local), device=local.device, dtype=local.dtype)
        return roi_align_3d(mag, torch.cat([idx[:, None], local], 1),
                            self.roi_size, 1.0, self.sampling_ratio,
                            aligned=True)

    def forward(self, feats: Sequence[Tensor], rois: Tensor,
                ref_levels: Tensor) -> Tensor:
        """FPRN logits of proposals.

        Args:
            feats (Sequence[Tensor]): pyramid, (B, C, D, H, W) per level.
            rois (Tensor): (K, 7) ``[batch_idx, x1, y1, z1, x2, y2, z2]`` in
                input voxels.
            ref_levels (Tensor): (K,) reference level of each proposal.

        Returns:
            Tensor: (K,) logits.
        """
        if len(feats) != len(self.strides):
            raise ValueError(f'{len(feats)} feature maps for '
                             f'{len(self.strides)} FPRN levels')
        if len(rois) == 0:
            return rois.new_zeros((0, ))
        aligned = diameter_alignment(
            bbox3d_to_zyxd(rois[:, 1:]), ref_levels, self.strides,
            self.use_diameter_alignment)
        batch_idx = rois[:, 0].long()
        parts = [
            self._level_features(feat, aligned[:, lvl], lvl, batch_idx)
            for lvl, feat in enumerate(feats)
        ]
        agg = torch.cat([p.flatten(1) for p in parts], dim=1)
        return self.classifier(agg).squeeze(1)

    def sample(self, proposals: InstanceList, batch_gt_instances: InstanceList,
               nearest_level,
               batch_gt_instances_ignore: Optional[InstanceList] = None
               ) -> List[InstanceData]:
        """Label and balance training proposals (plus ground truth).

        Args:
            proposals (list[InstanceData]): RPN proposals (``bboxes``,
                ``level_ids``) per image.
            batch_gt_instances (list[InstanceData]): ground truth.
            nearest_level (callable): box -> reference level, for ground-truth
                boxes added as proposals.
            batch_gt_instances_ignore (list[InstanceData], optional): ignored
                boxes per image (e.g. LUNA16's excluded findings), passed to
                the assigner: proposals on them are not sampled as
                negatives (``IgnoreRegionMaxIoUAssigner``).

        Returns:
            list[InstanceData]: per image ``bboxes``, ``level_ids`` and
            ``labels`` (1 lesion, 0 background) of the sampled RoIs.
        """
        out = []
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * len(proposals)
        for props, gt, ignore in zip(proposals, batch_gt_instances,
                                     batch_gt_instances_ignore):
            gt = InstanceData(bboxes=gt.bboxes,
                              labels=gt.bboxes.new_zeros(len(gt),
                                                         dtype=torch.long))
            priors = props.bboxes.detach()
            assign = self.assigner.assign(InstanceData(priors=priors), gt,
                                          ignore)
            res = self.sampler.sample(assign, InstanceData(priors=priors), gt)
            levels = props.level_ids
            if getattr(self.sampler, 'add_gt_as_proposals',
                       False) and len(gt) > 0:  # gt boxes come first
                levels = torch.cat([nearest_level(gt.bboxes), levels])
            inds = torch.cat([res.pos_inds, res.neg_inds])
            boxes = torch.cat([res.pos_priors, res.neg_priors])
            labels = torch.cat([
                boxes.new_ones(len(res.pos_inds), dtype=torch.long),
                boxes.new_zeros(len(res.neg_inds), dtype=torch.long)
            ])
            out.append(InstanceData(bboxes=boxes, level_ids=levels[inds],
                                    labels=labels))
        return out

    def loss(self, feats: Sequence[Tensor],
             samples: List[InstanceData]) -> Dict[str, Tensor]:
        """FPRN loss on sampled RoIs.

        Args:
            feats (Sequence[Tensor]): pyramid.
            samples (list[InstanceData]): output of :meth:`sample`.

        Returns:
            dict[str, Tensor]: ``loss_fprn_cls`` and ``fprn_acc``.
        """
        rois = rois_from_instances(samples)
        levels = torch.cat([s.level_ids for s in samples])
        labels = torch.cat([s.labels for s in samples])
        logits = self(feats, rois, levels)
        if logits.numel() == 0:
            zero = sum(p.sum() for p in self.parameters()) * 0
            return dict(loss_fprn_cls=zero)
        loss = self.loss_cls(logits[:, None], labels.float()[:, None],
                             avg_factor=max(len(labels), 1))
        acc = ((logits > 0).long() == labels).float().mean().detach()
        return dict(loss_fprn_cls=loss, fprn_acc=acc)


def rois_from_instances(instances: Sequence[InstanceData]) -> Tensor:
    """Stack per-image ``bboxes`` into (K, 7) ``[batch_idx, box]`` RoIs."""
    if not instances:
        return torch.zeros(0, 7)
    return bbox2roi([inst.bboxes for inst in instances])
