# Copyright (c) mmlesion contributors. All rights reserved.
"""Improved RetinaNet for CT lesion detection (Zlocha et al., MICCAI 2019,
"Improving RetinaNet for CT Lesion Detection with Dense Masks from Weak
RECIST Labels", Sec. 2 and Fig. 1(a))."""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import scale_boxes
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from .mask_box_calibration import calibrate_with_mask


@MODELS.register_module()
class ImprovedRetinaNet(SingleStageDetector):
    """Improved RetinaNet: RetinaNet + dense mask supervision + calibration.

    The ``backbone`` returns ``(C1, ..., C5)``; with ``neck_with_input``
    the input batch is prepended (for the P0 skip connection); the ``neck``
    (e.g. ``DenseFPN``) returns ``num_dense_levels`` dense levels, then the
    detection levels ``(P0, P1, P2, ..., P6)``; ``bbox_head`` runs on
    P2..P6 and ``seg_head`` (``LesionSegHead``) on P0.

    Training adds ``loss_seg`` to the RetinaNet losses. At inference the
    detections are calibrated with the predicted lesion map
    (:func:`~mmlesion.methods.retinanet_lesion.models.calibrate_with_mask`: ``p * (1 + IoU)``,
    so scores lie in ``[p, 2p]``; the IoU is kept in
    ``pred_instances.mask_box_ious``), re-sorted, then rescaled to the
    original image.

    Args:
        backbone (dict): backbone config.
        neck (dict): neck config.
        bbox_head (dict): RetinaNet head config.
        seg_head (dict, optional): segmentation head config; None gives a
            RetinaNet without dense supervision (then no calibration).
        num_dense_levels (int): number of leading neck outputs that are
            dense levels (not given to ``bbox_head``). Defaults to 2.
        neck_with_input (bool): prepend the input batch to the backbone
            outputs. Defaults to True.
        score_calibration (dict, optional): ``dict(mask_thr=0.5,
            connectivity=8, min_area=1)``; None disables the calibration.
        return_seg_map (bool): attach the lesion probability map to each
            result as ``pred_sem_seg`` (resized to the original image when
            ``rescale``). Defaults to False (it costs memory in evaluation).
        train_cfg, test_cfg, data_preprocessor, init_cfg: as in
            :class:`mmdet.models.detectors.SingleStageDetector`.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 seg_head: OptConfigType = None,
                 num_dense_levels: int = 2,
                 neck_with_input: bool = True,
                 score_calibration: Optional[dict] = dict(mask_thr=0.5),
                 return_seg_map: bool = False,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            bbox_head=bbox_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if num_dense_levels < 0:
            raise ValueError('ImprovedRetinaNet: num_dense_levels must be >= '
                             f'0, got {num_dense_levels}')
        if seg_head is not None and num_dense_levels < 1:
            raise ValueError('ImprovedRetinaNet: a seg_head needs at least '
                             'one dense neck level (num_dense_levels >= 1)')
        self.seg_head = MODELS.build(seg_head) if seg_head else None
        self.num_dense_levels = num_dense_levels
        self.neck_with_input = neck_with_input
        if score_calibration is not None:
            unknown = set(score_calibration) - {
                'mask_thr', 'connectivity', 'min_area'
            }
            if unknown:
                raise ValueError('ImprovedRetinaNet: unknown '
                                 f'score_calibration keys {sorted(unknown)}')
            score_calibration = dict(score_calibration)
        self.score_calibration = score_calibration
        self.return_seg_map = return_seg_map

    @property
    def with_seg_head(self) -> bool:
        """bool: whether the detector has a segmentation head."""
        return self.seg_head is not None

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone and neck features.

        Args:
            batch_inputs (Tensor): (B, C, H, W).

        Returns:
            tuple[Tensor]: all neck outputs, dense levels first.
        """
        x = tuple(self.backbone(batch_inputs))
        if self.neck_with_input:
            x = (batch_inputs, ) + x
        if self.with_neck:
            x = self.neck(x)
        x = tuple(x)
        if len(x) <= self.num_dense_levels:
            raise ValueError(
                f'ImprovedRetinaNet: the neck returned {len(x)} levels, '
                f'need more than num_dense_levels={self.num_dense_levels}')
        return x

    def _split(
        self, x: Tuple[Tensor,
                       ...]) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        return x[:self.num_dense_levels], x[self.num_dense_levels:]

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Union[dict, list]:
        """RetinaNet losses on P2..P6 plus ``loss_seg`` on P0.

        Args:
            batch_inputs (Tensor): (B, C, H, W).
            batch_data_samples (list[DetDataSample]): with ``gt_instances``
                (``bboxes``, ``labels`` and, for the seg head, ``masks``).

        Returns:
            dict[str, Tensor]: losses.
        """
        dense, det = self._split(self.extract_feat(batch_inputs))
        losses = self.bbox_head.loss(det, batch_data_samples)
        if self.with_seg_head:
            losses.update(self.seg_head.loss(dense[0], batch_data_samples))
        return losses

    def calibrate(self, results_list: InstanceList,
                  seg_probs: List[Tensor]) -> InstanceList:
        """Calibrate and re-sort detections with the predicted lesion maps.

        Args:
            results_list (list[InstanceData]): per image ``bboxes`` (in the
                coordinates of the maps), ``scores``, ``labels``.
            seg_probs (list[Tensor]): per image (h, w) probability maps.

        Returns:
            list[InstanceData]: results with calibrated ``scores``, sorted by
            them, and ``mask_box_ious``.
        """
        cfg = self.score_calibration or {}
        calibrated = []
        for results, prob in zip(results_list, seg_probs):
            scores, ious = calibrate_with_mask(results.scores, results.bboxes,
                                               prob, **cfg)
            results.scores = scores
            results.mask_box_ious = ious
            order = torch.argsort(scores, descending=True)
            calibrated.append(results[order])
        return calibrated

    @staticmethod
    def _rescale(results: InstanceData, data_sample) -> InstanceData:
        meta = data_sample.metainfo
        scale_factor = meta.get('scale_factor')
        if scale_factor is None:
            # no Resize in the pipeline: fine if the image was not resized
            if tuple(meta.get('img_shape',
                              ())[:2]) != tuple(meta.get('ori_shape', ())[:2]):
                raise ValueError(
                    'ImprovedRetinaNet: rescale=True needs scale_factor in '
                    'the metainfo of '
                    f"{meta.get('img_path', 'the sample')} (img_shape "
                    f"{meta.get('img_shape')} != ori_shape "
                    f"{meta.get('ori_shape')})")
            return results
        results.bboxes = scale_boxes(results.bboxes,
                                     [1 / s for s in scale_factor])
        return results

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detect, calibrate with the segmentation, rescale.

        Args:
            batch_inputs (Tensor): (B, C, H, W).
            batch_data_samples (list[DetDataSample]): the batch's samples.
            rescale (bool): map boxes back to the original image.

        Returns:
            list[DetDataSample]: with ``pred_instances`` (``bboxes``,
            ``scores``, ``labels`` and, if calibrated, ``mask_box_ious``) and,
            with ``return_seg_map``, ``pred_sem_seg`` (lesion probability).
        """
        dense, det = self._split(self.extract_feat(batch_inputs))
        results_list = self.bbox_head.predict(
            det, batch_data_samples, rescale=False)
        seg_probs = None
        if self.with_seg_head:
            seg_probs = self.seg_head.predict(dense[0], batch_data_samples)
            if self.score_calibration is not None:
                results_list = self.calibrate(results_list, seg_probs)
        if rescale:
            results_list = [
                self._rescale(results,
                              data_sample) for results, data_sample in zip(
                                  results_list, batch_data_samples)
            ]
        batch_data_samples = self.add_pred_to_datasample(
            batch_data_samples, results_list)
        if self.return_seg_map and seg_probs is not None:
            for data_sample, prob in zip(batch_data_samples, seg_probs):
                if rescale:
                    ori_h, ori_w = data_sample.metainfo['ori_shape'][:2]
                    prob = F.interpolate(
                        prob[None, None],
                        size=(int(ori_h), int(ori_w)),
                        mode='bilinear',
                        align_corners=False)[0, 0]
                data_sample.pred_sem_seg = PixelData(sem_seg=prob[None])
        return batch_data_samples

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: Optional[SampleList] = None) -> tuple:
        """Raw outputs: the RetinaNet head outputs and the seg logits.

        Returns:
            tuple: ``(cls_scores, bbox_preds)`` of ``bbox_head.forward``,
            followed by the seg logits (B, 1, H, W) if there is a seg head.
        """
        dense, det = self._split(self.extract_feat(batch_inputs))
        outs = tuple(self.bbox_head.forward(det))
        if self.with_seg_head:
            outs = outs + (self.seg_head(dense[0]), )
        return outs
