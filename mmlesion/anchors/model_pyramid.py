# Copyright (c) mmlesion contributors. All rights reserved.
"""The pyramid levels a detector config really gives its anchor head.

mmdet's :class:`~mmdet.models.task_modules.AnchorGenerator` places the
anchors of level ``i`` on a grid of step ``strides[i]`` and nothing checks
that this is the stride of that feature map (anchors for P3-P7 on heads that
run on P2-P6 train without an error). So the levels are measured: the
config's model is built on PyTorch's ``meta`` device (shapes only) and run
on an empty input; each level's stride is the input size over its size.
"""
import copy
import math
from typing import List, Tuple

import torch
from mmengine.config import Config

from .de_anchor_optimizer import AnchorConfig

#: Heads that own an anchor generator, in the order they are looked for.
ANCHOR_HEADS: Tuple[str, ...] = ('bbox_head', 'rpn_head')


def anchor_head_key(cfg: Config) -> str:
    """``'bbox_head'`` or ``'rpn_head'``: the head whose anchors are tuned.

    Raises:
        ValueError: if the model has no head with an ``anchor_generator``.
    """
    model = cfg.get('model', {}) or {}
    for head in ANCHOR_HEADS:
        if (model.get(head) or {}).get('anchor_generator'):
            return head
    raise ValueError(
        'The config has no model.bbox_head.anchor_generator nor '
        'model.rpn_head.anchor_generator: nothing to optimise')


def level_name(stride: int) -> str:
    """``'P3'`` for stride 8 (``'stride 12'`` if not a power of 2)."""
    level = math.log2(stride)
    return f'P{int(level)}' if level.is_integer() else f'stride {stride}'


def pyramid_name(strides) -> str:
    """``'P3-P7'`` for strides 8..128."""
    return f'{level_name(strides[0])}-{level_name(strides[-1])}'


def head_feature_strides(cfg: Config,
                         input_size: int = 512) -> List[int]:
    """Strides of the feature maps the anchor head of ``cfg`` predicts on.

    Args:
        cfg (Config): a detector config (``custom_imports`` and
            ``default_scope`` are honoured).
        input_size (int): side of the square test input; a multiple of the
            coarsest stride gives exact strides. Defaults to 512.

    Returns:
        list[int]: one stride per level, finest first.
    """
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import MODELS
    head = anchor_head_key(cfg)
    model_cfg = copy.deepcopy(cfg.model)
    in_channels = 3
    backbone = model_cfg.get('backbone', {})
    if backbone.get('in_channels'):
        in_channels = int(backbone['in_channels'])
    # a slice-group backbone (9 slices): 3 channels per group
    in_channels *= int(backbone.get('num_slice_groups', 1))
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
        model.eval()
        x = torch.empty(1, in_channels, input_size, input_size)
        if head == 'rpn_head':
            outs = model.rpn_head(model.extract_feat(x))
        else:
            outs = model._forward(x)
    cls_scores = outs[0]
    strides = []
    for score in cls_scores:
        h, w = score.shape[-2:]
        strides.append(int(round(input_size / max(h, w))))
    return strides


def check_anchor_pyramid(cfg: Config,
                         anchors: AnchorConfig,
                         config_name: str = 'the config',
                         input_size: int = 512) -> List[int]:
    """Refuse anchors whose strides are not those of the model's levels.

    Args:
        cfg (Config): the target detector config.
        anchors (AnchorConfig): its anchor generator (as read from it).
        config_name (str): how to name the config in the error.
        input_size (int): test input side (see
            :func:`head_feature_strides`).

    Returns:
        list[int]: the measured strides (equal to ``anchors.strides``).

    Raises:
        ValueError: naming both stride lists and their pyramid levels when
            the number of levels or a stride differs.
    """
    measured = head_feature_strides(cfg, input_size)
    declared = [int(s) for s in anchors.strides]
    if measured != declared:
        head = anchor_head_key(cfg)
        raise ValueError(
            f'{config_name}: model.{head}.anchor_generator.strides = '
            f'{declared} ({pyramid_name(declared)}, {len(declared)} levels) '
            f'but the model gives its {head} {len(measured)} levels with '
            f'strides {measured} ({pyramid_name(measured)}); with these '
            'anchors the anchor centres would lie on the wrong grid (beyond '
            'the image for too large strides). Make anchor_generator.strides '
            'match the levels (neck start_level / num_outs) first.')
    return measured
