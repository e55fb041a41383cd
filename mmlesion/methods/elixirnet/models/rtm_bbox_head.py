# Copyright (c) mmlesion contributors. All rights reserved.
"""Auto-lesion Block box head with the Relation Transfer Module (ElixirNet,
sections "Relation Transfer Module" and "Multi-type Lesion Detection")."""
from typing import List, Optional, Sequence

import torch
from mmdet.registry import MODELS
from mmengine.logging import print_log
from torch import Tensor

from .alb_bbox_head import ALBBBoxHead
from .relation_transfer_module import RelationTransferModule


@MODELS.register_module()
class RTMBBoxHead(ALBBBoxHead):
    """:class:`ALBBBoxHead` whose predictors also see the RTM feature ``f_E``.

    ``f_E = E Gamma_s M W_E`` (:class:`RelationTransferModule`, ``E`` = the
    ALB's Non-local graph of the same forward, kept with its gradient);
    ``cls_score`` and ``bbox_pred`` are predicted from ``[f, f_E]``.
    Typically ``num_classes = 8`` (DeepLesion's coarse lesion types).

    Choices the paper leaves open:

    * ``E`` comes from the ALB's Non-local operation(s) (their mean; the
      ALBr's if the ALB has none); a genotype without one is refused.
    * The binary classifier (``M`` and ``Gamma_s``) is the pretrained
      single-class ElixirNet's ``fc_cls``, frozen by default: loading such
      a checkpoint moves its ``fc_cls`` into ``rtm.binary_cls`` and drops
      its ``fc_reg``. Without one a frozen classifier is a fixed random
      projection.
    * A learnt binary classifier (``freeze_binary_cls=False``, the
      single-class "+RTM" rows of Tables 1, 2 and 5) is supervised by
      ``loss_binary_cls`` on the sampled RoIs (label 0 = lesion of any
      class, 1 = background) so that its rows keep their meaning.

    Args:
        rtm_channels (int): size of ``f_E`` (the paper's ``E`` = 128).
        num_embeddings (int): outputs of the binary classifier (2: lesion,
            background).
        freeze_binary_cls (bool): freeze the binary classifier. Defaults to
            True.
        loss_binary_cls (dict, optional): loss of a trainable binary
            classifier (see above). Defaults to softmax
            ``CrossEntropyLoss`` with weight 1.0; None disables it. Ignored
            when the classifier is frozen.
        *args, **kwargs: :class:`ALBBBoxHead` arguments.
    """

    def __init__(self,
                 *args,
                 rtm_channels: int = 128,
                 num_embeddings: int = 2,
                 freeze_binary_cls: bool = True,
                 loss_binary_cls: Optional[dict] = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=False,
                     loss_weight=1.0),
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self._graph_ops:
            raise ValueError(
                'RTMBBoxHead needs the relation graph E of a non_local '
                'operation, but the genotypes have none; add a non_local op '
                "to genotypes['normal']")
        for op in self._graph_ops:
            op.keep_live_graph = True
        self.rtm_channels = rtm_channels
        self.rtm = RelationTransferModule(
            self.out_channels,
            rtm_channels,
            num_embeddings=num_embeddings,
            freeze_classifier=freeze_binary_cls)
        self._build_predictors(self.out_channels + rtm_channels)
        self.loss_binary_cls = None
        if loss_binary_cls is not None and not freeze_binary_cls:
            if num_embeddings != 2:
                raise ValueError(
                    'RTMBBoxHead: loss_binary_cls supervises a lesion-vs-'
                    f'background classifier (num_embeddings=2), got '
                    f'num_embeddings={num_embeddings}; set '
                    'loss_binary_cls=None')
            self.loss_binary_cls = MODELS.build(loss_binary_cls)
        # Binary scores of the last training forward, consumed by loss().
        self._binary_score: Optional[Tensor] = None

    def _live_graphs(self) -> List[Tensor]:
        return self._mean_graph(
            [op.pop_live_adjacency() for op in self._graph_ops])

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> tuple:
        """Forward RoI features through ALB cells, RTM and the predictors.

        Args:
            x (Tensor): ``(R, in_channels, S, S)`` RoI features of all images.
            num_rois (Sequence[int]): RoIs per image, summing to ``R``.

        Returns:
            tuple[Tensor, Tensor]: ``cls_score (R, num_classes + 1)`` and
            ``bbox_pred``.
        """
        feats = self.forward_features(x, num_rois)
        f_e, binary_score = self.rtm(
            feats,
            self._live_graphs(),
            self._check_num_rois(x, num_rois),
            return_scores=True)
        supervise = self.training and self.loss_binary_cls is not None
        self._binary_score = binary_score if supervise else None
        feats = torch.cat([feats, f_e], dim=1)
        cls_score = self.fc_cls(feats) if self.with_cls else None
        bbox_pred = self.fc_reg(feats) if self.with_reg else None
        return cls_score, bbox_pred

    def loss(self,
             cls_score: Tensor,
             bbox_pred: Tensor,
             rois: Tensor,
             labels: Tensor,
             label_weights: Tensor,
             bbox_targets: Tensor,
             bbox_weights: Tensor,
             reduction_override: Optional[str] = None) -> dict:
        """mmdet's box losses plus ``loss_binary_cls`` (see the class doc).

        Args: as :meth:`mmdet.models.roi_heads.BBoxHead.loss`.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``acc``, ``loss_bbox`` and, when
            the binary classifier is trained, ``loss_binary_cls``.
        """
        losses = super().loss(cls_score, bbox_pred, rois, labels,
                              label_weights, bbox_targets, bbox_weights,
                              reduction_override)
        binary_score, self._binary_score = self._binary_score, None
        if binary_score is None:
            return losses
        if binary_score.size(0) != labels.size(0):
            raise ValueError(
                f'RTMBBoxHead: {binary_score.size(0)} binary scores from the '
                f'last forward but {labels.size(0)} RoI targets; call loss() '
                'right after the training forward of the same RoIs')
        binary_labels = (labels >= self.num_classes).long()
        avg_factor = max(float((label_weights > 0).sum()), 1.0)
        losses['loss_binary_cls'] = self.loss_binary_cls(
            binary_score,
            binary_labels,
            label_weights,
            avg_factor=avg_factor,
            reduction_override=reduction_override)
        return losses

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        """Take the binary classifier from a single-class head's ``fc_cls``.

        When the checkpoint has no ``rtm.binary_cls`` but an ``fc_cls`` of the
        binary classifier's shape (a pretrained :class:`ALBBBoxHead`), that
        ``fc_cls`` becomes ``rtm.binary_cls`` and the pretrained ``fc_reg``,
        whose input lacks ``f_E``, is dropped.
        """
        src, dst = prefix + 'fc_cls.', prefix + 'rtm.binary_cls.'
        binary = self.rtm.binary_cls
        if (dst + 'weight' not in state_dict and src + 'weight' in state_dict
                and tuple(state_dict[src + 'weight'].shape) == tuple(
                    binary.weight.shape)):
            for name in ('weight', 'bias'):
                if src + name in state_dict:
                    state_dict[dst + name] = state_dict.pop(src + name)
            for name in ('weight', 'bias'):
                reg = state_dict.get(prefix + 'fc_reg.' + name)
                own = getattr(self.fc_reg, name, None) \
                    if self.with_reg else None
                if reg is not None and (own is None or reg.shape != own.shape):
                    state_dict.pop(prefix + 'fc_reg.' + name)
            print_log(
                f'RTMBBoxHead: loaded the binary classifier {src[:-1]} of the '
                f'checkpoint into {dst[:-1]} (M and Gamma_s of the Relation '
                'Transfer Module); the multi-type fc_cls/fc_reg keep their '
                'initialisation.',
                logger='current')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
