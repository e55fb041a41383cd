# Copyright (c) mmlesion contributors. All rights reserved.
"""Auto-lesion Block box head of ElixirNet (paper sections "Auto-lesion Block"
and "Implementation Details / ElixirNet", Figures 2 and 3)."""
import copy
from functools import partial
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.roi_heads.bbox_heads import BBoxHead
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from torch import Tensor

from .alb_cell import ALBCell, Genotypes, normalize_genotype
from .alb_ops import ALB_OP_NAMES
from .nonlocal_graph import NonLocalGraph, check_num_rois

#: Genotypes written from the paper's text description of Figure 3 (its
#: exact wiring is not in the text); used when neither ``genotypes`` nor
#: ``search`` is given; replace it with ``tools/search_alb.py``'s output.
DEFAULT_ALB_GENOTYPES = dict(
    normal=dict(
        ops=[('non_local', 0), ('dil_conv_3x3_d3', 0), ('dil_conv_3x3_d5', 0),
             ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 1),
             ('dil_conv_3x3_d3', 2), ('skip_connect', 3)],
        concat=[1, 2, 3, 4]),
    reduce=dict(
        ops=[('sep_conv_1x3_3x1', 0), ('avg_pool_3x3', 0), ('sep_conv_5x5', 0),
             ('skip_connect', 1), ('sep_conv_1x3_3x1', 1), ('avg_pool_3x3', 0),
             ('sep_conv_5x5', 2), ('skip_connect', 3)],
        concat=[1, 2, 3, 4]))


@MODELS.register_module()
class ALBBBoxHead(BBoxHead):
    """RoI box head made of Auto-lesion Blocks (ElixirNet).

    ``RoI Align features (R, in_channels, S, S)`` -> 3x3 conv + BN + ReLU to
    ``conv_out_channels`` (paper: 128) -> 1 ALB (same size and channels) ->
    ``num_reduction_cells`` ALBr (each halves the size and doubles the
    channels; paper: 2, so ``P = 512``) -> global average pooling -> ``fc_cls``
    and ``fc_reg`` (mmdet's ``BBoxHead`` predictors, losses, targets and
    post-processing). The reduction cells share one genotype (``reduce``).

    RoI size: use 14 in full-size configs so that the atrous convolutions
    see real context (14 -> 7 -> 4), 7 for demo models. The Non-local
    operator builds one graph per image, so ``forward`` needs ``num_rois``
    (RoIs per image), which :class:`~mmlesion.methods.elixirnet.models.ALBRoIHead`
    passes. After each forward, :attr:`last_adjacency` holds, per image, the
    detached ``(R_i, R_i)`` graph ``E`` of the ALB (the mean over its
    Non-local operations; the ALBr's if the ALB has none).

    **Search mode** (``search=True``, "Differentiable Search Strategy"):
    every cell is a DARTS mixed cell; the head owns ``arch_alpha_normal``
    (the ALB) and ``arch_alpha_reduce`` (shared by all ALBr cells);
    :meth:`genotypes` derives ``dict(normal=..., reduce=...)`` for a
    config. The paper searches with ``D = 16`` channels per branch and
    trains with ``D = 32`` (``conv_out_channels = 4 * D``). Table 6's
    "random ALB": :meth:`set_sampled_genotypes`.

    Args:
        in_channels (int): RoI feature channels. Defaults to 256.
        roi_feat_size (int): RoI Align output size. Defaults to 7.
        conv_out_channels (int): channels after the 3x3 conv, i.e. of the ALB.
            Defaults to 128.
        num_reduction_cells (int): number of ALBr cells. Defaults to 2.
        num_branches (int): B, branches per cell. Defaults to 4.
        genotypes (dict, optional): ``dict(normal=genotype, reduce=genotype)``
            (format: :mod:`mmlesion.methods.elixirnet.models.alb_cell`). Defaults to
            :data:`DEFAULT_ALB_GENOTYPES` unless ``search`` is True.
        search (bool): build the search (mixed) cells. Defaults to False.
        op_names (Sequence[str]): candidate operations (the genotypes are
            checked against them), as :class:`ALBCell`'s.
        norm_cfg (dict): norm of the 3x3 conv and of the discrete cells
            (search cells use affine-free BN). Defaults to BN.
        **kwargs: :class:`mmdet.models.roi_heads.bbox_heads.BBoxHead`
            arguments (``num_classes``, ``bbox_coder``, ``reg_class_agnostic``,
            ``loss_cls``, ``loss_bbox``, ``init_cfg``, ...).
    """

    def __init__(self,
                 in_channels: int = 256,
                 roi_feat_size: int = 7,
                 conv_out_channels: int = 128,
                 num_reduction_cells: int = 2,
                 num_branches: int = 4,
                 genotypes: Optional[dict] = None,
                 search: bool = False,
                 op_names: Sequence[str] = ALB_OP_NAMES,
                 norm_cfg: dict = dict(type='BN'),
                 **kwargs) -> None:
        if kwargs.pop('with_avg_pool', False):
            raise ValueError('ALBBBoxHead always pools globally after the '
                             'cells; do not set with_avg_pool')
        super().__init__(
            in_channels=in_channels,
            roi_feat_size=roi_feat_size,
            with_avg_pool=False,
            **kwargs)
        if search and genotypes is not None:
            raise ValueError('ALBBBoxHead: give genotypes or search=True, '
                             'not both')
        self.conv_out_channels = conv_out_channels
        self.num_reduction_cells = num_reduction_cells
        self.num_branches = num_branches
        self.search = search
        self.op_names = tuple(op_names)
        self.out_channels = conv_out_channels * 2**num_reduction_cells

        if search:
            self.genotype_cfg = None
            num_edges = num_branches * (num_branches + 1) // 2
            self.arch_alpha_normal = nn.Parameter(
                1e-3 * torch.randn(num_edges, len(self.op_names)))
            self.arch_alpha_reduce = nn.Parameter(
                1e-3 * torch.randn(num_edges, len(self.op_names)))
            cell_args = [dict(search=True, own_arch_alpha=False)] * 2
        else:
            self.genotype_cfg = self._normalize_genotypes(
                DEFAULT_ALB_GENOTYPES if genotypes is None else genotypes)
            cell_args = [
                dict(genotype=self.genotype_cfg['normal']),
                dict(genotype=self.genotype_cfg['reduce'])
            ]
        cell = partial(
            ALBCell, num_branches=num_branches, op_names=self.op_names,
            norm_cfg=None if search else norm_cfg)

        self.stem = ConvModule(
            in_channels, conv_out_channels, 3, padding=1, norm_cfg=norm_cfg)
        self.normal_cell = cell(
            conv_out_channels, conv_out_channels, reduction=False,
            **cell_args[0])
        self.reduce_cells = nn.ModuleList()
        channels = conv_out_channels
        for _ in range(num_reduction_cells):
            self.reduce_cells.append(
                cell(channels, channels * 2, reduction=True, **cell_args[1]))
            channels *= 2

        self._graph_ops = self.normal_cell.nonlocal_ops() or [
            op for cell in self.reduce_cells for op in cell.nonlocal_ops()
        ]
        self.last_adjacency: List[Tensor] = []
        self.sampled_genotypes: Optional[Genotypes] = None
        self._build_predictors(self.out_channels)

    def _normalize_genotypes(self, genotypes: dict) -> Genotypes:
        if not isinstance(genotypes, dict) or set(genotypes) != {
                'normal', 'reduce'
        }:
            raise ValueError(
                "ALBBBoxHead genotypes must be dict(normal=..., reduce=...), "
                f'got {genotypes!r}')
        return {
            key:
            normalize_genotype(genotypes[key], self.num_branches,
                               self.op_names, f'genotypes[{key!r}]')
            for key in ('normal', 'reduce')
        }

    def _build_predictors(self, in_features: int) -> None:
        """(Re)build ``fc_cls`` / ``fc_reg`` for ``in_features`` inputs, as
        mmdet's ``BBoxHead`` does."""
        if self.with_cls:
            if self.custom_cls_channels:
                cls_channels = self.loss_cls.get_cls_channels(self.num_classes)
            else:
                cls_channels = self.num_classes + 1
            cls_cfg = copy.deepcopy(self.cls_predictor_cfg)
            cls_cfg.update(in_features=in_features, out_features=cls_channels)
            self.fc_cls = MODELS.build(cls_cfg)
        if self.with_reg:
            box_dim = self.bbox_coder.encode_size
            out_dim_reg = box_dim if self.reg_class_agnostic \
                else box_dim * self.num_classes
            reg_cfg = copy.deepcopy(self.reg_predictor_cfg)
            if isinstance(reg_cfg, (dict, ConfigDict)):
                reg_cfg.update(
                    in_features=in_features, out_features=out_dim_reg)
            self.fc_reg = MODELS.build(reg_cfg)

    @staticmethod
    def _check_num_rois(x: Tensor,
                        num_rois: Optional[Sequence[int]]) -> List[int]:
        return check_num_rois(
            x, num_rois, 'ALBBBoxHead.forward needs num_rois (RoIs per image) '
            "for the Non-local graphs; use roi_head=dict(type='ALBRoIHead', "
            "...) instead of mmdet's StandardRoIHead")

    def forward_features(self, x: Tensor, num_rois: Sequence[int]) -> Tensor:
        """Run the 3x3 conv, ALB, ALBr cells and global pooling.

        Args:
            x (Tensor): ``(R, in_channels, S, S)`` RoI features.
            num_rois (Sequence[int]): RoIs per image, summing to ``R``.

        Returns:
            Tensor: ``(R, out_channels)`` region features (``P``).
        """
        counts = self._check_num_rois(x, num_rois)
        x = self.stem(x)
        if self.search and self.sampled_genotypes is not None:
            return self._forward_sampled(x, counts)
        normal, reduce = self.arch_parameters() or (None, None)
        x = self.normal_cell(x, counts, normal)
        for cell in self.reduce_cells:
            x = cell(x, counts, reduce)
        self.last_adjacency = self._mean_graph(
            [op.last_adjacency for op in self._graph_ops])
        return x.mean(dim=(2, 3))

    def _forward_sampled(self, x: Tensor, counts: List[int]) -> Tensor:
        """Search mode with :attr:`sampled_genotypes`: run the discrete
        genotypes on the shared weights; the graphs are those of the
        Non-local operations that ran (the ALB's, else the ALBr's)."""
        cells = [self.normal_cell, *self.reduce_cells]
        for cell in cells:
            for op in cell.nonlocal_ops():
                op.last_adjacency = []
        x = self.normal_cell(
            x, counts, genotype=self.sampled_genotypes['normal'])
        for cell in self.reduce_cells:
            x = cell(x, counts, genotype=self.sampled_genotypes['reduce'])

        def used(cell_list):
            return [
                op.last_adjacency for cell in cell_list
                for op in cell.nonlocal_ops()
                if len(op.last_adjacency) == len(counts)
                and op.last_adjacency
            ]

        self.last_adjacency = self._mean_graph(
            used([self.normal_cell]) or used(self.reduce_cells))
        return x.mean(dim=(2, 3))

    def set_sampled_genotypes(self, genotypes: Optional[dict]) -> None:
        """Run ``genotypes`` on the shared search weights (or stop: None).

        ElixirNet Table 6 "random ALB": random search with weight sharing
        (Li and Talwalkar 2019) trains and scores sampled architectures on
        the shared weights of the mixed edges (alpha unused);
        :class:`~mmlesion.methods.elixirnet.nas.ALBSearchLoop` with ``strategy='random'`` sets
        them here.

        Args:
            genotypes (dict | None): ``dict(normal=..., reduce=...)``,
                checked against :attr:`op_names`; None returns to the
                softmax mixture of the differentiable search.

        Raises:
            ValueError: if the head is not in search mode, or the genotypes
                are invalid.
        """
        if genotypes is None:
            self.sampled_genotypes = None
            return
        if not self.search:
            raise ValueError('set_sampled_genotypes needs a search head '
                             '(search=True)')
        self.sampled_genotypes = self._normalize_genotypes(genotypes)

    @staticmethod
    def _mean_graph(graphs_per_op: List[List[Tensor]]) -> List[Tensor]:
        """Average, image by image, the graphs of several operations."""
        if not graphs_per_op:
            return []
        return [
            torch.stack(per_image).mean(
                dim=0) if len(per_image) > 1 else per_image[0]
            for per_image in zip(*graphs_per_op)
        ]

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> tuple:
        """Forward RoI features.

        Args:
            x (Tensor): ``(R, in_channels, S, S)`` RoI features of all images.
            num_rois (Sequence[int]): RoIs per image, summing to ``R``
                (required; :class:`ALBRoIHead` passes it).

        Returns:
            tuple[Tensor, Tensor]: ``cls_score (R, num_classes + 1)`` and
            ``bbox_pred (R, 4 * num_classes)`` (or ``(R, 4)`` if class
            agnostic); None for a disabled branch.
        """
        feats = self.forward_features(x, num_rois)
        cls_score = self.fc_cls(feats) if self.with_cls else None
        bbox_pred = self.fc_reg(feats) if self.with_reg else None
        return cls_score, bbox_pred

    def arch_parameters(self) -> List[nn.Parameter]:
        """The architecture parameters (search mode), empty otherwise."""
        if not self.search:
            return []
        return [self.arch_alpha_normal, self.arch_alpha_reduce]

    def genotypes(self) -> Genotypes:
        """Return ``dict(normal=genotype, reduce=genotype)``: the configured
        genotypes, or in search mode the ones derived from the current
        architecture parameters (DARTS rule, see :meth:`ALBCell.genotype`)."""
        if not self.search:
            return copy.deepcopy(self.genotype_cfg)
        # The derivation depends only on the DAG topology (B branches), the
        # same for ALB and ALBr, so the ALB cell derives both.
        return dict(
            normal=self.normal_cell.genotype(self.arch_alpha_normal),
            reduce=self.normal_cell.genotype(self.arch_alpha_reduce))

    @property
    def graph_ops(self) -> List[NonLocalGraph]:
        """The Non-local operations whose graphs form
        :attr:`last_adjacency`."""
        return list(self._graph_ops)
