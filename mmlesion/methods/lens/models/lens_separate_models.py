# Copyright (c) mmlesion contributors. All rights reserved.
"""One detector per dataset, their detections fused at test time: LENS
Table IV's "Separate models" (Yan et al., TMI 2020)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType
from mmengine.model import ModuleList
from mmengine.structures import InstanceData
from torch import Tensor

from mmlesion.models.detectors.uncropped import UNCROPPED_KEY

from .lens import ExpertEnsemble, expert_indices


@MODELS.register_module()
class LENSSeparateModels(ExpertEnsemble, BaseDetector):
    """``d`` whole detectors, one per dataset, sharing nothing: Table IV's
    "Separate models" ("learned a detector for each dataset and fused their
    proposals in inference").

    Member ``i`` is built from ``detector`` (a one-dataset LENS) with
    ``dataset_names=[dataset_names[i]]``. Trained with one dataset per
    batch (:class:`~mmlesion.methods.lens.datasets.LENSDatasetBatchSampler`), a batch of
    dataset ``i`` trains member ``i`` alone, as ``d`` separate trainings of
    the same schedule would (their parameters are disjoint, so per-parameter
    optimiser state such as RAdam's stays separate). At test time the
    members' detections are fused as LENS fuses its experts
    (``test_cfg.expert_fusion``; ``pred_instances`` gets ``expert_ids``).

    Args:
        detector (dict): the one-dataset detector config of every member
            (``num_datasets=1``).
        dataset_names (Sequence[str]): the datasets, in the training
            set's order; one member each.
        test_cfg (dict, optional): ``expert_fusion`` (``experts``: the
            members fused, None for all; ``nms``; ``max_per_img``).
        train_cfg (dict, optional): unused (each member has its own).
        data_preprocessor, init_cfg (dict, optional): as mmdet.

    Raises:
        ValueError: no dataset, or a ``detector`` that is not one-dataset.
    """

    def __init__(self,
                 detector: ConfigType,
                 dataset_names: Sequence[str],
                 test_cfg: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not dataset_names:
            raise ValueError('LENSSeparateModels needs dataset_names (one '
                             'member per dataset)')
        if int(detector.get('num_datasets', 1)) != 1:
            raise ValueError(
                'LENSSeparateModels: detector must be a one-dataset model '
                f"(num_datasets=1), got {detector.get('num_datasets')}")
        members = []
        for name in dataset_names:
            cfg = copy.deepcopy(detector)
            if 'num_datasets' in cfg:
                cfg['dataset_names'] = [name]
            members.append(MODELS.build(cfg))
        self.detectors = ModuleList(members)
        self.num_datasets = len(members)
        self.dataset_names = tuple(dataset_names)
        self.test_cfg = test_cfg

    @staticmethod
    def _as_first_dataset(batch_data_samples: SampleList) -> SampleList:
        """The samples as their member sees them: dataset 0 of one."""
        samples = copy.deepcopy(batch_data_samples)
        for s in samples:
            if 'dataset_id' in s.metainfo:
                s.set_metainfo(dict(dataset_id=0))
        return samples

    def extract_feat(self, batch_inputs: Tensor) -> List[Tuple[Tensor]]:
        """Every member's features."""
        return [m.extract_feat(batch_inputs) for m in self.detectors]

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """The loss of the member of the batch's dataset."""
        member = self.detectors[self.dataset_id_of(batch_data_samples)]
        return member.loss(batch_inputs,
                           self._as_first_dataset(batch_data_samples))

    def predict_experts(self,
                        batch_inputs: Tensor,
                        batch_data_samples: SampleList,
                        experts: Optional[Sequence[int]] = None,
                        rescale: bool = True) -> List[List[InstanceData]]:
        """Every selected member's detections (``rescale``: in original
        image coordinates).

        Returns:
            list[list[InstanceData]]: ``[member][image]`` with ``bboxes``,
            ``scores``, ``labels`` and ``expert_ids``.

        Raises:
            ValueError: a member index the model does not have.
        """
        out = []
        for e in expert_indices('LENSSeparateModels', experts,
                                self.num_datasets, 'member'):
            res = self.detectors[e].predict(
                batch_inputs, self._as_first_dataset(batch_data_samples),
                rescale=rescale)
            for member, sample in zip(res, batch_data_samples):
                if member.metainfo.get(UNCROPPED_KEY):  # the member's copy
                    sample.set_metainfo({UNCROPPED_KEY: True})
            preds = [r.pred_instances for r in res]
            for p in preds:
                p.expert_ids = torch.full_like(p.labels, e)
            out.append(preds)
        return out

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList = None) -> tuple:
        """Every member's raw outputs."""
        return tuple(
            m._forward(batch_inputs, self._as_first_dataset(
                batch_data_samples)) for m in self.detectors)
