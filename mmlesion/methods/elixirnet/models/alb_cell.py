# Copyright (c) mmlesion contributors. All rights reserved.
"""The Auto-lesion Block cell (ALB / ALBr) of ElixirNet.

Paper sections "Auto-lesion Block", "Search Space for ALB" and
"Differentiable Search Strategy" (Eq. 3), Figure 3.

Genotype format (plain config, so a searched block is a config edit)::

    genotype = dict(
        ops=[('non_local', 0), ('dil_conv_3x3_d3', 0),        # branch 1
             ('dil_conv_3x3_d5', 0), ('sep_conv_3x3', 1),     # branch 2
             ('sep_conv_3x3', 0), ('skip_connect', 1),        # branch 3
             ('dil_conv_3x3_d3', 2), ('skip_connect', 3)],    # branch 4
        concat=[1, 2, 3, 4])

* ``ops`` has two ``(operation, input_index)`` entries per branch, branch
  by branch; a branch outputs the sum of its two operations.
* ``input_index`` 0 is the cell input (after the 1x1 preprocessing), ``j >=
  1`` the output of branch ``j``; branch ``b`` (1-based) may read ``0 .. b
  - 1``.
* ``concat`` lists the branches (``1 .. num_branches``) whose outputs are
  concatenated; all by default. Lists may stand for tuples (configs dumped
  to text).
"""
import copy
from functools import partial
from typing import List, Optional, Sequence, Tuple, TypedDict

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from .alb_ops import ALB_OP_NAMES, KNOWN_OP_NAMES, build_alb_op
from .mixed_op import MixedOp
from .nonlocal_graph import NonLocalGraph

class Genotype(TypedDict):
    """A cell's genotype (the format above)."""
    ops: List[Tuple[str, int]]
    concat: List[int]


class Genotypes(TypedDict):
    """The ALB head's two cells' genotypes: the ``genotypes`` of its
    config (``dict(normal=..., reduce=...)``)."""
    normal: Genotype
    reduce: Genotype

_RELU = dict(type='ReLU', inplace=False)
_ORDER = ('act', 'conv', 'norm')


def normalize_genotype(genotype: dict,
                       num_branches: int = 4,
                       op_names: Sequence[str] = ALB_OP_NAMES,
                       name: str = 'genotype') -> Genotype:
    """Validate a genotype and return it as ``dict(ops=[(str, int)], concat=
    [int])``.

    Args:
        genotype (dict): see the module docstring.
        num_branches (int): B. Defaults to 4.
        op_names (Sequence[str]): allowed operations.
        name (str): how to call the genotype in error messages (e.g.
            ``"genotypes['reduce']"``).

    Returns:
        dict: the normalised genotype (a new object).

    Raises:
        ValueError: naming the offending field and entry.
    """
    if not isinstance(genotype, dict) or 'ops' not in genotype:
        raise ValueError(f"{name} must be a dict with an 'ops' list, got "
                         f'{genotype!r}')
    ops = list(genotype['ops'])
    if len(ops) != 2 * num_branches:
        raise ValueError(
            f"{name}['ops'] must have 2 entries per branch "
            f'({2 * num_branches} for {num_branches} branches), got '
            f'{len(ops)}')
    norm_ops: List[Tuple[str, int]] = []
    for k, entry in enumerate(ops):
        branch = k // 2 + 1
        if (not isinstance(entry, (tuple, list)) or len(entry) != 2
                or not isinstance(entry[0], str) or isinstance(entry[1], bool)
                or not isinstance(entry[1], int)):
            raise ValueError(
                f"{name}['ops'][{k}] must be (operation_name, input_index), "
                f'got {entry!r}')
        op, index = entry
        if op not in op_names:
            raise ValueError(f"{name}['ops'][{k}]: unknown operation {op!r}; "
                             f'expected one of {tuple(op_names)}')
        if not 0 <= index < branch:
            raise ValueError(
                f"{name}['ops'][{k}] = {entry!r}: branch {branch} may only "
                f'read input indices 0..{branch - 1} (0 = cell input, j = '
                'output of branch j)')
        norm_ops.append((op, int(index)))
    concat = genotype.get('concat')
    concat = list(range(1, num_branches + 1)) if concat is None \
        else list(concat)
    if (not concat or len(set(concat)) != len(concat) or any(
            isinstance(c, bool) or not isinstance(c, int)
            or not 1 <= c <= num_branches for c in concat)):
        raise ValueError(
            f"{name}['concat'] must be distinct branch indices in "
            f'1..{num_branches}, got {genotype.get("concat")!r}')
    extra = set(genotype) - {'ops', 'concat'}
    if extra:
        raise ValueError(f'{name} has unknown keys {sorted(extra)}; expected '
                         "'ops' and 'concat'")
    return dict(ops=norm_ops, concat=concat)


@MODELS.register_module()
class ALBCell(BaseModule):
    """Auto-lesion Block (``reduction=False``) or ALBr (``reduction=True``).

    A DAG of ``num_branches`` (B) branches. The cell input is first mapped to
    ``D = out_channels // B`` channels by a ReLU-1x1 conv-BN (DARTS'
    preprocessing); each branch sums two operations applied to two earlier
    tensors; the ``concat`` branches' outputs are concatenated (``Y =
    concat(Y_1, ..., Y_B)``), then projected to ``out_channels`` by a
    ReLU-1x1 conv-BN when ``concat`` is a subset. ALB keeps resolution and
    channels; ALBr halves the resolution (the operations reading the cell
    input use stride 2) and doubles the channels.

    Search mode (``search=True``, Eq. 3) connects every branch to **all**
    earlier tensors with :class:`MixedOp` edges (``B (B + 1) / 2``, branch
    by branch, input by input) weighted by ``softmax(arch_alpha)``. Cells
    that share one architecture (DARTS' reduction cells) are built with
    ``own_arch_alpha=False`` and get ``arch_alpha`` in :meth:`forward`.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels, divisible by ``num_branches``.
        reduction (bool): ALBr (True) or ALB (False).
        genotype (dict, optional): discrete architecture (module docstring).
        search (bool): build the search (mixed) cell. Exactly one of
            ``genotype`` and ``search`` must be given.
        num_branches (int): B. Defaults to 4.
        op_names (Sequence[str]): candidate operations, a subset of
            :data:`~mmlesion.methods.elixirnet.models.alb_ops.KNOWN_OP_NAMES` (the
            paper's 9 by default; ``DARTS_OP_NAMES`` for Table 6).
        norm_cfg (dict, optional): norm config; defaults to BN in discrete
            mode and affine-free BN in search mode (DARTS).
        own_arch_alpha (bool): search mode only: create the ``arch_alpha``
            parameter here (True) or receive it in ``forward`` (False).
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 reduction: bool = False,
                 genotype: Optional[dict] = None,
                 search: bool = False,
                 num_branches: int = 4,
                 op_names: Sequence[str] = ALB_OP_NAMES,
                 norm_cfg: Optional[dict] = None,
                 own_arch_alpha: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if (genotype is None) == (not search):
            raise ValueError('ALBCell needs exactly one of genotype=... '
                             '(discrete cell) and search=True (mixed cell)')
        if num_branches < 1 or out_channels % num_branches:
            raise ValueError(
                f'out_channels ({out_channels}) must be divisible by '
                f'num_branches ({num_branches})')
        unknown = [op for op in op_names if op not in KNOWN_OP_NAMES]
        if unknown:
            raise ValueError(f'Unknown operations {unknown} in op_names; '
                             f'expected a subset of {KNOWN_OP_NAMES}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.reduction = reduction
        self.search = search
        self.num_branches = num_branches
        self.op_names = tuple(op_names)
        self.branch_channels = out_channels // num_branches
        if norm_cfg is None:
            norm_cfg = dict(type='BN', affine=False) if search \
                else dict(type='BN')
        self.norm_cfg = norm_cfg
        channels = self.branch_channels
        relu_conv_bn = partial(
            ConvModule, kernel_size=1, norm_cfg=norm_cfg, act_cfg=_RELU,
            order=_ORDER)
        self.preprocess = relu_conv_bn(in_channels, channels)

        if search:
            self.concat = list(range(1, num_branches + 1))
            self.edges = nn.ModuleList()
            for branch in range(num_branches):
                for index in range(branch + 1):
                    stride = 2 if reduction and index == 0 else 1
                    self.edges.append(
                        MixedOp(channels, stride, self.op_names, norm_cfg))
            self.own_arch_alpha = own_arch_alpha
            if own_arch_alpha:
                self.arch_alpha = nn.Parameter(
                    1e-3 * torch.randn(self.num_edges, len(self.op_names)))
            self._genotype = None
        else:
            self._genotype = normalize_genotype(genotype, num_branches,
                                                self.op_names)
            self.concat = self._genotype['concat']
            self.ops = nn.ModuleList()
            for op, index in self._genotype['ops']:
                stride = 2 if reduction and index == 0 else 1
                self.ops.append(build_alb_op(op, channels, stride, norm_cfg))

        concat_channels = len(self.concat) * channels
        self.project = relu_conv_bn(concat_channels, out_channels) \
            if concat_channels != out_channels else None

    @property
    def num_edges(self) -> int:
        """Number of mixed edges of a search cell, ``B (B + 1) / 2``."""
        return self.num_branches * (self.num_branches + 1) // 2

    def forward(self,
                x: Tensor,
                num_rois: Sequence[int],
                arch_alpha: Optional[Tensor] = None,
                genotype: Optional[dict] = None) -> Tensor:
        """Run the cell.

        Args:
            x (Tensor): ``(R, in_channels, H, W)`` RoI features of all
                images stacked in image order.
            num_rois (Sequence[int]): RoIs per image (for ``non_local``).
            arch_alpha (Tensor, optional): search mode: architecture
                parameters ``(num_edges, num_ops)`` to use instead of the
                cell's own.
            genotype (dict, optional): search mode only: run this discrete
                genotype on the shared weights of the mixed edges instead of
                the softmax mixture (random search with weight sharing, Li
                and Talwalkar 2019; ElixirNet Table 6 "random ALB"). Entry
                ``(op, j)`` of branch ``b`` runs operation ``op`` of the
                mixed edge from input ``j`` to branch ``b``; alpha is unused.

        Returns:
            Tensor: ``(R, out_channels, H', W')``; ``H' = H`` for ALB and
            ``ceil(H / 2)`` for ALBr.
        """
        states = [self.preprocess(x)]
        if genotype is not None:
            if not self.search:
                raise ValueError('genotype= is only used by search cells '
                                 '(a discrete cell has its own)')
            if arch_alpha is not None:
                raise ValueError('give arch_alpha or genotype, not both')
            genotype = normalize_genotype(genotype, self.num_branches,
                                          self.op_names)
            if genotype['concat'] != self.concat:
                raise ValueError('a genotype run on a search cell must '
                                 f'concatenate all branches {self.concat}, '
                                 f"got {genotype['concat']}")
            ops = genotype['ops']
            offset = 0
            for branch in range(self.num_branches):
                out = 0
                for op, index in ops[2 * branch:2 * branch + 2]:
                    mixed = self.edges[offset + index]
                    out = out + mixed.ops[self.op_names.index(op)](
                        states[index], num_rois)
                offset += branch + 1
                states.append(out)
        elif self.search:
            weights = self._arch_alpha(arch_alpha).softmax(dim=-1)
            offset = 0
            for _ in range(self.num_branches):
                out = sum(self.edges[offset + j](h, weights[offset +
                                                            j], num_rois)
                          for j, h in enumerate(states))
                offset += len(states)
                states.append(out)
        else:
            if arch_alpha is not None:
                raise ValueError('arch_alpha is only used by search cells')
            ops = self._genotype['ops']
            for branch in range(self.num_branches):
                k = 2 * branch
                out = (
                    self.ops[k](states[ops[k][1]], num_rois) +
                    self.ops[k + 1](states[ops[k + 1][1]], num_rois))
                states.append(out)
        out = torch.cat([states[i] for i in self.concat], dim=1)
        if self.project is not None:
            out = self.project(out)
        return out

    def _arch_alpha(self, arch_alpha: Optional[Tensor]) -> Tensor:
        if arch_alpha is None:
            if not getattr(self, 'own_arch_alpha', False):
                raise ValueError(
                    'This search cell was built with own_arch_alpha=False: '
                    'pass arch_alpha to forward()/genotype()')
            arch_alpha = self.arch_alpha
        expected = (self.num_edges, len(self.op_names))
        if tuple(arch_alpha.shape) != expected:
            raise ValueError(f'arch_alpha must have shape {expected}, got '
                             f'{tuple(arch_alpha.shape)}')
        return arch_alpha

    def genotype(self, arch_alpha: Optional[Tensor] = None) -> Genotype:
        """Return the discrete genotype of this cell.

        Discrete cell: its genotype. Search cell: derived from
        ``softmax(arch_alpha)`` by the DARTS rule (the paper's argmax): for
        each branch keep the 2 incoming edges whose strongest non-``none``
        operation weighs most, each with that operation. Branch 1 has a single
        incoming edge (the cell input), so it keeps the 2 strongest distinct
        non-``none`` operations on it (the same operation twice if only one
        exists). Ties go to the lower input index / earlier operation.

        Args:
            arch_alpha (Tensor, optional): see :meth:`forward`.

        Returns:
            dict: ``dict(ops=[(name, input_index), ...], concat=[1..B])``.
        """
        if not self.search:
            return copy.deepcopy(self._genotype)
        weights = self._arch_alpha(arch_alpha).detach().float().softmax(-1)
        weights = weights.cpu()
        candidates = [
            k for k, name in enumerate(self.op_names) if name != 'none'
        ]
        if not candidates:
            raise ValueError('Cannot derive a genotype: op_names holds only '
                             "'none'")
        ops: List[Tuple[str, int]] = []
        offset = 0
        for branch in range(self.num_branches):
            num_inputs = branch + 1
            edge_weights = weights[offset:offset + num_inputs][:, candidates]
            offset += num_inputs
            if num_inputs == 1:
                order = sorted(
                    range(len(candidates)),
                    key=lambda k: (-float(edge_weights[0, k]), k))
                best = (order * 2)[:2]
                ops.extend((self.op_names[candidates[k]], 0) for k in best)
                continue
            strength, best_op = edge_weights.max(dim=1)
            edges = sorted(
                range(num_inputs), key=lambda j: (-float(strength[j]), j))[:2]
            for j in sorted(edges):
                ops.append((self.op_names[candidates[int(best_op[j])]], j))
        return dict(ops=ops, concat=list(range(1, self.num_branches + 1)))

    def nonlocal_ops(self) -> List[NonLocalGraph]:
        """Return the :class:`NonLocalGraph` operations of the cell, in
        ``ops`` (discrete) or edge (search) order."""
        return [m for m in self.modules() if isinstance(m, NonLocalGraph)]
