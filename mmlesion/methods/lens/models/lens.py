# Copyright (c) mmlesion contributors. All rights reserved.
"""Lesion ENSemble (LENS) of Yan et al., "Learning from Multiple Datasets
with Heterogeneous and Partial Labels for Universal Lesion Detection in CT"
(TMI 2020), Sec. IV-C."""
import copy
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.ops import batched_nms
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList, OptConfigType
from mmengine.config import ConfigDict
from mmengine.model import ModuleList
from mmengine.structures import InstanceData
from torch import Tensor

from mmlesion.models.detectors.uncropped import to_uncropped

_DEFAULT_PROPOSAL_FUSION = dict(
    nms=dict(type='nms', iou_threshold=0.7), max_per_img=1000)
_DEFAULT_EXPERT_FUSION = dict(
    experts=None, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)


def fuse_instances(instances: Sequence[InstanceData], nms_cfg: dict,
                   max_per_img: int) -> InstanceData:
    """Pool boxes of several sources and apply class-agnostic NMS (mmcv).

    Args:
        instances (Sequence[InstanceData]): each with ``bboxes`` (n, 4),
            ``scores`` (n,) and any other per-box fields (kept).
        nms_cfg (dict): mmcv NMS config, e.g.
            ``dict(type='nms', iou_threshold=0.5)``.
        max_per_img (int): boxes kept (best first); <= 0 keeps all.

    Returns:
        InstanceData: the surviving boxes, sorted by score.
    """
    pooled = InstanceData.cat(list(instances))
    if len(pooled) == 0:
        return pooled
    _, keep = batched_nms(pooled.bboxes, pooled.scores,
                          pooled.scores.new_zeros(len(pooled)), nms_cfg)
    if max_per_img > 0:
        keep = keep[:max_per_img]
    return pooled[keep]


def fusion_cfg(cfg: Optional[dict], key: str, default: dict) -> ConfigDict:
    """``cfg[key]`` (e.g. ``test_cfg.expert_fusion``) over ``default``."""
    merged = copy.deepcopy(default)
    merged.update((cfg or {}).get(key, {}) or {})
    return ConfigDict(merged)


def dataset_names_of(owner: str, num_datasets: int,
                     dataset_names: Optional[Sequence[str]]
                     ) -> Tuple[str, ...]:
    """``dataset_names`` checked against ``num_datasets`` (``dataset<i>``
    where None), for the error messages of ``owner``."""
    if dataset_names is not None and len(dataset_names) != num_datasets:
        raise ValueError(f'{owner}: {len(dataset_names)} dataset_names for '
                         f'num_datasets={num_datasets}')
    return tuple(
        dataset_names or [f'dataset{i}' for i in range(num_datasets)])


def build_expert_heads(owner: str, key: str,
                       head_cfg: Union[ConfigType, List[ConfigType]],
                       num_datasets: int, **updates) -> ModuleList:
    """One head per dataset from one config (or one config each), each
    config updated with ``updates``."""
    if isinstance(head_cfg, (list, tuple)):
        if len(head_cfg) != num_datasets:
            raise ValueError(f'{owner}: {len(head_cfg)} {key} configs for '
                             f'num_datasets={num_datasets}')
        head_cfgs = list(head_cfg)
    else:
        head_cfgs = [head_cfg] * num_datasets
    heads = []
    for cfg in head_cfgs:
        cfg = copy.deepcopy(cfg)
        cfg.update(**updates)
        heads.append(MODELS.build(cfg))
    return ModuleList(heads)


def expert_indices(owner: str, experts: Optional[Sequence[int]],
                   num_datasets: int, noun: str = 'expert') -> List[int]:
    """The selected experts (all if None), each checked to exist."""
    if experts is None:
        experts = range(num_datasets)
    experts = [int(e) for e in experts]
    for e in experts:
        if not 0 <= e < num_datasets:
            raise ValueError(f'{owner}: {noun} {e} does not exist (model '
                             f'has {num_datasets})')
    return experts


class ExpertEnsemble:
    """What the LENS detectors share: a training batch holds images of one
    dataset, and :meth:`predict` fuses the detections of the subclass's
    ``predict_experts``."""

    def dataset_id_of(self, batch_data_samples: SampleList) -> int:
        """The dataset of a training batch (all samples must agree).

        Raises:
            KeyError / ValueError: with a message saying how to fix it.
        """
        ids = set()
        for s in batch_data_samples:
            if 'dataset_id' not in s.metainfo:
                raise KeyError(
                    'LENS needs `dataset_id` in every sample\'s metainfo: '
                    'wrap the datasets in LENSMultiDataset (img_id '
                    f"{s.metainfo.get('img_id')} has none)")
            ids.add(int(s.metainfo['dataset_id']))
        if len(ids) != 1:
            raise ValueError(
                f'LENS trains on batches from one dataset, got dataset ids '
                f'{sorted(ids)}: use batch_sampler=dict(type='
                "'LENSDatasetBatchSampler')")
        (dataset_id, ) = ids
        if not 0 <= dataset_id < self.num_datasets:
            raise ValueError(f'dataset_id {dataset_id} outside [0, '
                             f'{self.num_datasets}) of this LENS model')
        return dataset_id

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Each image's detections of the experts in
        ``test_cfg.expert_fusion.experts`` pooled and NMS'd by its ``nms``
        and ``max_per_img`` (LENS Sec. IV-C)."""
        cfg = fusion_cfg(self.test_cfg, 'expert_fusion',
                         _DEFAULT_EXPERT_FUSION)
        per_expert = self.predict_experts(batch_inputs, batch_data_samples,
                                          cfg.experts, rescale)
        results = [
            fuse_instances([p[img] for p in per_expert], cfg.nms,
                           cfg.max_per_img)
            for img in range(len(batch_data_samples))
        ]
        return self.add_pred_to_datasample(batch_data_samples, results)


class LensProposals(NamedTuple):
    """The AFP losses and the pooled proposals per image."""
    losses: dict
    proposals: InstanceList


@MODELS.register_module()
class LENS(ExpertEnsemble, TwoStageDetector):
    r"""Lesion ensemble: one shared backbone, ``d`` dataset-specific AFPs, a
    multi-task detection head (LENS Sec. IV-C, Fig. 2).

    Training (a batch holds images of ONE dataset ``i``, ``dataset_id`` in
    every sample's metainfo, see :class:`~mmlesion.datasets.
    LENSDatasetBatchSampler`): every AFP proposes boxes (only ``AFP_i`` with
    gradients), the proposals are pooled and NMS'd
    (``train_cfg.proposal_fusion``), then RoIAlign, the two shared FC layers
    and expert ``i``'s layers (:class:`LENSBBoxHead`). The loss is Eq. 1
    (:math:`\lambda_1 = 0.1` is the AFP ``loss_bbox`` weight,
    :math:`\lambda_2 = 10` the bbox head's); a dataset-specific layer is
    updated only by batches of its own dataset. With DDP set
    ``find_unused_parameters=True`` in ``model_wrapper_cfg``.

    Inference: AFP proposals fused as in training; every selected expert
    scores and refines them; their detections are pooled and NMS'd again
    (Sec. IV-C; ``test_cfg.expert_fusion.experts``: None for all, ``[0]``
    for Table I row (b)); ``pred_instances`` gets ``expert_ids``.
    :meth:`embed` gives L2-normalised RoI embeddings of any boxes.

    Args:
        backbone, neck, roi_head (dict): as mmdet's two-stage detectors; the
            bbox head must be a :class:`LENSBBoxHead` (``num_datasets`` is
            set from this class's argument).
        rpn_head (dict | list[dict]): one AFP config used for every
            dataset, or one per dataset.
        num_datasets (int): ``d``.
        dataset_names (Sequence[str], optional): for logs and tools.
        train_cfg, test_cfg (dict): mmdet's, plus ``proposal_fusion`` and
            (test) ``expert_fusion``.
        data_preprocessor, init_cfg (dict, optional): as mmdet.
    """

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: Union[ConfigType, List[ConfigType]],
                 roi_head: ConfigType,
                 num_datasets: int,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 neck: OptConfigType = None,
                 dataset_names: Optional[Sequence[str]] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        if num_datasets < 1:
            raise ValueError(f'LENS: num_datasets must be >= 1, got '
                             f'{num_datasets}')
        roi_head = copy.deepcopy(roi_head)
        roi_head['bbox_head']['num_datasets'] = num_datasets
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=None,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if not hasattr(self.roi_head.bbox_head, 'set_expert'):
            raise TypeError('LENS needs a bbox head with dataset experts '
                            "(type='LENSBBoxHead'), got "
                            f'{type(self.roi_head.bbox_head).__name__}')
        self.num_datasets = num_datasets
        self.dataset_names = dataset_names_of('LENS', num_datasets,
                                              dataset_names)
        self.rpn_heads = build_expert_heads(
            'LENS',
            'rpn_head',
            rpn_head,
            num_datasets,
            train_cfg=train_cfg.get('rpn') if train_cfg else None,
            test_cfg=test_cfg.rpn,
            num_classes=1)

    @property
    def with_rpn(self) -> bool:
        return True

    def propose(self,
                x: Tuple[Tensor],
                batch_data_samples: SampleList,
                proposal_cfg: ConfigDict,
                train_id: Optional[int] = None,
                mode: str = 'test') -> LensProposals:
        """Proposals of all AFPs, pooled and NMS'd per image.

        Args:
            x (tuple[Tensor]): neck features.
            batch_data_samples (list[DetDataSample]): the batch.
            proposal_cfg (ConfigDict): each AFP's proposal config.
            train_id (int, optional): the AFP that gets a loss.
            mode (str): 'train' or 'test' (which fusion config).

        Returns:
            tuple: (AFP losses, pooled proposals per image).
        """
        metas = [s.metainfo for s in batch_data_samples]
        losses, per_head = {}, []
        for i, head in enumerate(self.rpn_heads):
            if i == train_id:
                rpn_samples = copy.deepcopy(batch_data_samples)
                for s in rpn_samples:
                    s.gt_instances.labels = torch.zeros_like(
                        s.gt_instances.labels)
                head_losses, props = head.loss_and_predict(
                    x, rpn_samples, proposal_cfg=proposal_cfg)
                losses.update(
                    {f'loss_afp_{k[5:]}': v
                     for k, v in head_losses.items()})
            else:
                with torch.no_grad():
                    props = head.predict_by_feat(
                        *head(x), batch_img_metas=metas, cfg=proposal_cfg)
            per_head.append(props)
        fcfg = fusion_cfg(self.train_cfg if mode == 'train' else
                          self.test_cfg, 'proposal_fusion',
                          _DEFAULT_PROPOSAL_FUSION)
        pooled = []
        for img in range(len(metas)):
            fused = fuse_instances([p[img] for p in per_head], fcfg.nms,
                                   fcfg.max_per_img)
            fused.bboxes = fused.bboxes.detach()
            fused.scores = fused.scores.detach()
            pooled.append(fused)
        return LensProposals(losses, pooled)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Eq. 1 for a batch of one dataset (see the class doc)."""
        dataset_id = self.dataset_id_of(batch_data_samples)
        x = self.extract_feat(batch_inputs)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        losses, proposals = self.propose(x, batch_data_samples, proposal_cfg,
                                         dataset_id, 'train')
        self.roi_head.bbox_head.set_expert(dataset_id)
        losses.update(
            self.roi_head.loss(x, proposals, batch_data_samples))
        return losses

    def predict_experts(self,
                        batch_inputs: Tensor,
                        batch_data_samples: SampleList,
                        experts: Optional[Sequence[int]] = None,
                        rescale: bool = True,
                        with_embeddings: bool = False
                        ) -> List[List[InstanceData]]:
        """Every selected dataset expert's detections.

        Args:
            batch_inputs (Tensor): (N, C, H, W).
            batch_data_samples (list[DetDataSample]): the batch.
            experts (Sequence[int], optional): expert indices; all if None.
            rescale (bool): boxes in original image coordinates.
            with_embeddings (bool): add ``embeddings`` (n, D), see
                :meth:`embed`.

        Returns:
            list[list[InstanceData]]: ``[expert][image]`` with ``bboxes``,
            ``scores``, ``labels`` and ``expert_ids``.
        """
        x = self.extract_feat(batch_inputs)
        experts = expert_indices('LENS', experts, self.num_datasets)
        _, proposals = self.propose(x, batch_data_samples, self.test_cfg.rpn)
        out = []
        for e in experts:
            self.roi_head.bbox_head.set_expert(e)
            res = self.roi_head.predict(
                x, copy.deepcopy(proposals), batch_data_samples,
                rescale=rescale)
            for r in res:
                r.expert_ids = torch.full_like(r.labels, e)
            if with_embeddings:
                for img, (r, s) in enumerate(zip(res, batch_data_samples)):
                    boxes = r.bboxes
                    if rescale and 'scale_factor' in s.metainfo:
                        boxes = boxes * boxes.new_tensor(
                            s.metainfo['scale_factor']).repeat(2)
                    r.embeddings = self._embed(
                        tuple(f[img:img + 1] for f in x), [boxes])
            if rescale:
                to_uncropped(res, batch_data_samples)
            out.append(res)
        return out

    def _embed(self, x: Tuple[Tensor], boxes: List[Tensor]) -> Tensor:
        rois = bbox2roi(boxes)
        head = self.roi_head.bbox_head
        feats = self.roi_head.bbox_roi_extractor(
            x[:self.roi_head.bbox_roi_extractor.num_inputs], rois)
        feats = feats.flatten(1)
        for fc in head.shared_fcs:
            feats = head.relu(fc(feats))
        return F.normalize(feats, dim=1)

    def embed(self, batch_inputs: Tensor, boxes: List[Tensor]) -> Tensor:
        """L2-normalised embeddings of boxes: RoIAlign features through the
        two shared FC layers. LENS Sec. V-B uses LesaNet's lesion embedding,
        which is not public; this is the substitute mmlesion uses.

        Args:
            batch_inputs (Tensor): (N, C, H, W) preprocessed images.
            boxes (list[Tensor]): per image (n_i, 4) in input coordinates.

        Returns:
            Tensor: (sum n_i, D), unit L2 norm.
        """
        return self._embed(self.extract_feat(batch_inputs), boxes)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList) -> tuple:
        x = self.extract_feat(batch_inputs)
        _, proposals = self.propose(x, batch_data_samples, self.test_cfg.rpn)
        return self.roi_head.forward(x, proposals, batch_data_samples)
