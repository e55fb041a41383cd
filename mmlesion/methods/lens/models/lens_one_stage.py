# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS without its detection head: a one-stage lesion ensemble (Yan et
al., TMI 2020, Table II, "FCOS, one stage")."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType
from mmengine.structures import InstanceData
from torch import Tensor

from mmlesion.models.detectors.uncropped import to_uncropped

from .lens import (ExpertEnsemble, build_expert_heads, dataset_names_of,
                   expert_indices)


@MODELS.register_module()
class LENSOneStage(ExpertEnsemble, BaseDetector):
    """A shared backbone and neck, one dense detection head per dataset,
    no RoI stage: LENS Table II's "FCOS, one stage" ("We also tried to use
    FCOS as the proposal network and remove the detection head of LENS to
    make it a one-stage detector").

    Head ``i`` is dataset ``i``'s expert: a training batch holds images of
    one dataset (``dataset_id`` in the metainfo, as for
    :class:`~mmlesion.models.LENS`) and only its head gets a loss. At test
    time every selected expert predicts with ``test_cfg`` (as mmdet's
    one-stage detectors) and their detections are fused as LENS fuses its
    experts (``test_cfg.expert_fusion``; ``pred_instances`` gets
    ``expert_ids``).

    Args:
        backbone, neck (dict): as mmdet's single-stage detectors.
        bbox_head (dict | list[dict]): one head config used for every
            dataset (e.g. mmdet's ``FCOSHead``), or one per dataset;
            ``num_classes`` is set to 1 (lesion).
        num_datasets (int): the experts.
        dataset_names (Sequence[str], optional): for logs and tools.
        train_cfg, test_cfg (dict, optional): the heads'; ``test_cfg`` also
            holds ``expert_fusion`` (``experts``: the indices fused, None
            for all; ``nms``; ``max_per_img``).
        data_preprocessor, init_cfg (dict, optional): as mmdet.
    """

    def __init__(self,
                 backbone: ConfigType,
                 bbox_head: Union[ConfigType, List[ConfigType]],
                 num_datasets: int,
                 neck: OptConfigType = None,
                 dataset_names: Optional[Sequence[str]] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if num_datasets < 1:
            raise ValueError(f'LENSOneStage: num_datasets must be >= 1, got '
                             f'{num_datasets}')
        self.num_datasets = num_datasets
        self.dataset_names = dataset_names_of('LENSOneStage', num_datasets,
                                              dataset_names)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.bbox_heads = build_expert_heads(
            'LENSOneStage',
            'bbox_head',
            bbox_head,
            num_datasets,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            num_classes=1)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """Backbone and neck features."""
        x = self.backbone(batch_inputs)
        return self.neck(x) if self.neck is not None else x

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """The loss of the batch's dataset's head (one dataset a batch)."""
        dataset_id = self.dataset_id_of(batch_data_samples)
        samples = copy.deepcopy(batch_data_samples)
        for s in samples:  # one class: lesion
            s.gt_instances.labels = torch.zeros_like(s.gt_instances.labels)
        return self.bbox_heads[dataset_id].loss(
            self.extract_feat(batch_inputs), samples)

    def predict_experts(self,
                        batch_inputs: Tensor,
                        batch_data_samples: SampleList,
                        experts: Optional[Sequence[int]] = None,
                        rescale: bool = True) -> List[List[InstanceData]]:
        """Every selected expert's detections.

        Args:
            batch_inputs (Tensor): (N, C, H, W).
            batch_data_samples (list[DetDataSample]): the batch.
            experts (Sequence[int], optional): expert indices; all if None.
            rescale (bool): boxes in original image coordinates.

        Returns:
            list[list[InstanceData]]: ``[expert][image]`` with ``bboxes``,
            ``scores``, ``labels`` and ``expert_ids``.

        Raises:
            ValueError: an expert index the model does not have.
        """
        x = self.extract_feat(batch_inputs)
        experts = expert_indices('LENSOneStage', experts, self.num_datasets)
        out = []
        for e in experts:
            res = self.bbox_heads[e].predict(
                x, batch_data_samples, rescale=rescale)
            if rescale:
                to_uncropped(res, batch_data_samples)
            for r in res:
                r.expert_ids = torch.full_like(r.labels, e)
            out.append(res)
        return out

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList = None) -> tuple:
        """Every head's raw outputs."""
        x = self.extract_feat(batch_inputs)
        return tuple(head.forward(x) for head in self.bbox_heads)
