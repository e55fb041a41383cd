# Copyright (c) mmlesion contributors. All rights reserved.
"""3D Aggregated Faster R-CNN (Zhang et al.), an mmdet ``BaseDetector``."""
import math
from typing import Dict, List, NamedTuple, Sequence, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData
from mmengine.utils import to_3tuple
from torch import Tensor

from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmlesion.structures import nms_3d
from mmlesion.utils.host_copy import copy_into, fill
from mmlesion.utils.reporting.progress import progress_bar
from .aggregated_fprn_head_3d import rois_from_instances


def window_starts(length: int, window: int, overlap: int) -> List[int]:
    """Start indices of overlapping windows covering ``[0, length)``.

    The last window is shifted back to end at ``length``.

    Args:
        length (int): axis length.
        window (int): window length (clipped to ``length`` by the caller).
        overlap (int): overlap between consecutive windows.

    Returns:
        list[int]: window starts.
    """
    if window >= length:
        return [0]
    step = window - overlap
    if step < 1:
        raise ValueError(f'window overlap {overlap} must be smaller than the '
                         f'window {window}')
    starts = list(range(0, length - window, step))
    starts.append(length - window)
    return starts


class WindowLayout(NamedTuple):
    """The sliding window's size and starts per axis."""
    size: List[int]
    starts: List[List[int]]


def window_layout(dhw: Sequence[int], test_cfg: dict
                  ) -> WindowLayout:
    """The sliding windows of :meth:`AggregatedFasterRCNN3D.predict_volume`
    over a volume of ``dhw`` voxels (never past the volume rounded up to
    the backbone's divisor, 16).

    Args:
        dhw (Sequence[int]): the volume's (D, H, W).
        test_cfg (dict): ``window_size`` and ``overlap`` (an int or one per
            axis).

    Returns:
        tuple[list[int], list[list[int]]]: window size and starts per axis.
    """
    divisor = 16
    size = to_3tuple(test_cfg.get('window_size', 128))
    overlap = to_3tuple(test_cfg.get('overlap', 16))
    win = [min(s, int(math.ceil(n / divisor) * divisor))
           for s, n in zip(size, dhw)]
    return WindowLayout(win, [window_starts(n, w, o)
                 for n, w, o in zip(dhw, win, overlap)])


def window_cores(starts: Sequence[int], window: int,
                 length: int) -> List[Tuple[float, float]]:
    """Core region ``[lo, hi)`` of each window along one axis: the window
    minus half of its overlap with each neighbour, so the cores tile the
    axis. A detection is kept only by the window whose core holds its
    centre (as nnDetection and MONAI do).

    Args:
        starts (Sequence[int]): window starts, increasing (as
            :func:`window_starts` gives them).
        window (int): window length.
        length (int): axis length.

    Returns:
        list[tuple[float, float]]: ``(lo, hi)`` per window.
    """
    cuts = [(starts[i + 1] + starts[i] + window) / 2
            for i in range(len(starts) - 1)]
    bounds = [0.] + cuts + [float(length)]
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


#: The project's 3D boxes use SimpleITK continuous indices (voxel ``i``
#: centred at ``i``); anchors, RoI Align and crops inside the model use
#: mmdet's pixel-edge convention (voxel ``i`` spans ``[i, i + 1)``, centre
#: ``i + 0.5``). The detector converts at its boundary only.
VOXEL_CENTRE_OFFSET = 0.5


def to_edge_coords(instances: InstanceData) -> InstanceData:
    """Copy of ``instances`` with ``bboxes`` shifted by +0.5 voxel into the
    model's pixel-edge convention."""
    out = instances.clone()
    out.bboxes = instances.bboxes + VOXEL_CENTRE_OFFSET
    return out


def _cut_windows(volume: Tensor, origins: Sequence[Tuple[int, int, int]],
                 buffer: Tensor, pad_value: float) -> Tensor:
    """``buffer[:len(origins)]`` overwritten with the (C, d, h, w) windows
    of the (C, D, H, W) ``volume`` at the ``(z, y, x)`` ``origins``, padded
    past the volume's end with ``pad_value`` and copied on the calling
    thread (:mod:`mmlesion.utils.host_copy`)."""
    out = buffer[:len(origins)]
    d, h, w = buffer.shape[2:]
    for k, (z, y, x) in enumerate(origins):
        crop = volume[:, z:z + d, y:y + h, x:x + w]
        dst = out[k]
        if tuple(crop.shape[1:]) != (d, h, w):
            fill(dst, pad_value)
            dst = dst[:, :crop.shape[1], :crop.shape[2], :crop.shape[3]]
        copy_into(dst, crop)
    return out


@MODELS.register_module()
class AggregatedFasterRCNN3D(BaseDetector):
    """3D Aggregated Faster R-CNN (Fig. 2): ``DenseUNet3D`` backbone, per-level
    3D RPN heads and the aggregated FPRN branch on the same backbone.

    Training (``loss``) takes (B, 1, D, H, W) crops and runs one of the
    paper's schedules (``train_cfg.mode``): ``'joint'`` (Sec. III-E: RPN
    and FPRN losses every iteration, after ``rpn_only_iters`` of RPN alone)
    or ``'alternating'`` (Table III: after ``rpn_only_iters``, blocks of
    ``alternate_interval`` iterations train the RPN, then the FPRN, in
    turn). Without ``fprn_head`` the model is the RPN baseline (Table II).

    Inference slides ``test_cfg.window_size`` windows with at least
    ``test_cfg.overlap`` voxels of overlap over each whole volume (Sec.
    IV-A) and keeps a window's detection only when its centre lies in the
    window's core (:func:`window_cores`; the paper gives no rule): set
    ``overlap`` to at least the largest lesion that must be seen whole.
    Scores are the mean of the RPN and FPRN probabilities (Sec. III-C);
    windows are merged by 3D NMS (``merge_iou_thr``). ``bboxes`` are
    ``[x1, y1, z1, x2, y2, z2]`` voxels of the input volume (SimpleITK
    continuous indices, see ``VOXEL_CENTRE_OFFSET``).

    Args:
        backbone (dict): backbone config (``DenseUNet3D``).
        rpn_head (dict): ``AggregatedRPNHead3D`` config.
        fprn_head (dict, optional): ``AggregatedFPRNHead3D`` config.
        train_cfg (dict, optional): ``rpn`` (assigner), ``rpn_proposal``
            (proposal settings for FPRN training), ``fprn`` (assigner,
            sampler), ``mode``, ``rpn_only_iters``, ``alternate_interval``.
        test_cfg (dict, optional): ``rpn`` (proposal settings per window),
            ``window_size``, ``overlap``, ``pad_value``, ``merge_iou_thr``,
            ``score_thr``, ``max_per_img``, ``show_progress``.
        data_preprocessor (dict, optional): e.g. mmengine's
            ``ImgDataPreprocessor`` (stacks and pads volumes).
        init_cfg (dict, optional): initialisation.
    """

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 fprn_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.train_cfg = ConfigDict(train_cfg or {})
        self.test_cfg = ConfigDict(test_cfg or {})
        self.backbone = MODELS.build(backbone)
        rpn_head = dict(rpn_head)
        rpn_head.update(
            train_cfg=self.train_cfg.get('rpn'),
            test_cfg=self.test_cfg.get('rpn'))
        self.rpn_head = MODELS.build(rpn_head)
        self.fprn_head = None
        if fprn_head is not None:
            fprn_head = dict(fprn_head)
            fprn_head.update(train_cfg=self.train_cfg.get('fprn'))
            self.fprn_head = MODELS.build(fprn_head)
        mode = self.train_cfg.get('mode', 'joint')
        if mode not in ('joint', 'alternating'):
            raise ValueError(f"train_cfg.mode must be 'joint' or "
                             f"'alternating', got {mode!r}")
        self.mode = mode
        self.rpn_only_iters = int(self.train_cfg.get('rpn_only_iters', 0))
        self.alternate_interval = int(
            self.train_cfg.get('alternate_interval', 1))

    @property
    def with_fprn(self) -> bool:
        """bool: whether the model has the FPRN branch."""
        return self.fprn_head is not None

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Pyramid features of (B, 1, D, H, W) volumes."""
        return self.backbone(batch_inputs)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList = None) -> tuple:
        """Raw RPN outputs (for FLOPs counting and export)."""
        return self.rpn_head(self.extract_feat(batch_inputs))

    def active_branches(self) -> Tuple[bool, bool]:
        """Which losses this iteration trains: (rpn, fprn).

        Returns:
            tuple[bool, bool]: RPN and FPRN on or off.
        """
        if not self.with_fprn:
            return True, False
        it = MessageHub.get_current_instance().get_info('iter') or 0
        if it < self.rpn_only_iters:
            return True, False
        if self.mode == 'joint':
            return True, True
        phase = ((it - self.rpn_only_iters) // self.alternate_interval) % 2
        return phase == 0, phase == 1

    @staticmethod
    def _zero_loss(module: torch.nn.Module) -> Tensor:
        """A zero that touches every parameter (keeps DDP's graph whole)."""
        return sum(p.sum() for p in module.parameters()) * 0

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of one training batch.

        Args:
            batch_inputs (Tensor): (B, 1, D, H, W) crops.
            batch_data_samples (list[DetDataSample]): ``gt_instances`` with
                (n, 6) ``bboxes`` (and optionally ``ignored_instances``).

        Returns:
            dict[str, Tensor]: losses.
        """
        feats = self.extract_feat(batch_inputs)
        gts = [to_edge_coords(s.gt_instances) for s in batch_data_samples]
        ignores = [
            to_edge_coords(s.ignored_instances)
            if 'ignored_instances' in s else None for s in batch_data_samples
        ]
        if all(i is None or len(i) == 0 for i in ignores):
            ignores = None
        cls_scores, bbox_preds = self.rpn_head(feats)
        use_rpn, use_fprn = self.active_branches()
        losses = {}
        if use_rpn:
            losses.update(
                self.rpn_head.loss_by_feat(cls_scores, bbox_preds, gts,
                                           ignores))
        else:
            losses['loss_rpn_cls'] = self._zero_loss(self.rpn_head) + \
                sum(s.sum() for s in cls_scores) * 0
        if self.with_fprn:
            if use_fprn:
                with torch.no_grad():
                    proposals = self.rpn_head.predict_by_feat(
                        [s.detach() for s in cls_scores],
                        [p.detach() for p in bbox_preds],
                        self.train_cfg.get('rpn_proposal'))
                samples = self.fprn_head.sample(proposals, gts,
                                                self.rpn_head.nearest_level,
                                                ignores)
                losses.update(self.fprn_head.loss(feats, samples))
            else:
                losses['loss_fprn_cls'] = self._zero_loss(self.fprn_head)
        return losses

    def _predict_window(self, windows: Tensor) -> List[InstanceData]:
        """Detections of a batch of windows (in window voxels)."""
        feats = self.extract_feat(windows)
        cls_scores, bbox_preds = self.rpn_head(feats)
        proposals = self.rpn_head.predict_by_feat(cls_scores, bbox_preds,
                                                  self.test_cfg.get('rpn'))
        for props in proposals:
            props.rpn_scores = props.scores
        if self.with_fprn:
            rois = rois_from_instances(proposals).to(windows)
            levels = torch.cat([p.level_ids for p in proposals])
            fprn = self.fprn_head(feats, rois, levels).sigmoid()
            start = 0
            for props in proposals:
                props.fprn_scores = fprn[start:start + len(props)]
                props.scores = (props.rpn_scores + props.fprn_scores) / 2
                start += len(props)
        return proposals

    def predict_volume(self, volume: Tensor) -> InstanceData:
        """Sliding-window detection over one whole volume.

        Args:
            volume (Tensor): (C, D, H, W).

        Returns:
            InstanceData: merged ``bboxes`` (n, 6) in volume voxels,
            ``scores``, ``labels`` and ``rpn_scores`` (and ``fprn_scores``).
        """
        cfg = self.test_cfg
        pad_value = float(cfg.get('pad_value', 0.))
        batch = int(cfg.get('window_batch_size', 1))
        dhw = volume.shape[1:]
        win, starts = window_layout(dhw, cfg)
        cores = [window_cores(st, w, n) for st, w, n in zip(starts, win, dhw)]
        origins = [(z, y, x) for z in starts[0] for y in starts[1]
                   for x in starts[2]]
        bar = progress_bar(len(origins), label='windows') if cfg.get(
            'show_progress', True) and len(origins) > 1 else None
        # a new buffer per batch where autograd may keep the previous one
        buffer = volume.new_empty((min(batch, len(origins)),
                                   volume.shape[0], *win))
        reuse = not torch.is_grad_enabled()
        # plain tensors: an InstanceData checks and copies every field
        fields = ('bboxes', 'scores', 'rpn_scores') + (
            ('fprn_scores', ) if self.with_fprn else ())
        kept: Dict[str, List[Tensor]] = {k: [] for k in fields}
        for b in range(0, len(origins), batch):
            chunk = origins[b:b + batch]
            windows = _cut_windows(
                volume, chunk,
                buffer if reuse or b == 0 else torch.empty_like(buffer),
                pad_value)
            for (z, y, x), det in zip(chunk, self._predict_window(windows)):
                bboxes = det.bboxes + det.bboxes.new_tensor(
                    [x, y, z, x, y, z])
                # keep detections centred in the window's core region
                ctr = (bboxes[:, :3] + bboxes[:, 3:]) / 2
                core = [cores[a][starts[a].index(o)]
                        for a, o in zip((2, 1, 0), (x, y, z))]
                lo = ctr.new_tensor([c[0] for c in core])
                hi = ctr.new_tensor([c[1] for c in core])
                inside = ((ctr >= lo) & (ctr < hi)).all(1)
                kept['bboxes'].append(bboxes[inside])
                for k in fields[1:]:
                    kept[k].append(det.get(k)[inside])
            if bar is not None:
                for _ in chunk:
                    bar.update()
        dets = {k: torch.cat(v) for k, v in kept.items()}
        keep = dets['scores'] > cfg.get('score_thr', 0.)
        dets = {k: v[keep] for k, v in dets.items()}
        _, inds = nms_3d(dets['bboxes'], dets['scores'],
                         cfg.get('merge_iou_thr', 0.1))
        inds = inds[:cfg.get('max_per_img', 100)]
        dets = {k: v[inds] for k, v in dets.items()}
        out = InstanceData(
            bboxes=dets['bboxes'] - VOXEL_CENTRE_OFFSET,
            scores=dets['scores'],
            labels=dets['bboxes'].new_zeros(len(inds), dtype=torch.long),
            rpn_scores=dets['rpn_scores'])
        if self.with_fprn:
            out.fprn_scores = dets['fprn_scores']
        return out

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detect lesions in whole volumes (sliding windows).

        Args:
            batch_inputs (Tensor): (B, 1, D, H, W).
            batch_data_samples (list[DetDataSample]): metainfo per volume.
            rescale (bool): unused; boxes are in the voxels of the volume
                the metainfo describes (the network input).

        Returns:
            list[DetDataSample]: with ``pred_instances``.
        """
        for volume, sample in zip(batch_inputs, batch_data_samples):
            shape = sample.metainfo.get('img_shape')
            if shape is not None and len(shape) == 3:
                volume = volume[:, :shape[0], :shape[1], :shape[2]]
            sample.pred_instances = self.predict_volume(volume)
        return batch_data_samples
