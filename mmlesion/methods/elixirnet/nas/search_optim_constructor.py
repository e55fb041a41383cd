# Copyright (c) mmlesion contributors. All rights reserved.
"""Two optimizers for the differentiable ALB search: weights and alpha.

ElixirNet, "Auto-Lesion Block Search": the network weights w use momentum
SGD (lr 0.02, cosine-annealed to zero, momentum 0.9, weight decay 3e-4), the
architecture weights alpha use Adam (lr 3e-4, betas (0.5, 0.999) as in DARTS,
weight decay 1e-3).
"""
import copy
from typing import Callable, Dict, List, Optional

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import (DefaultOptimWrapperConstructor, OptimWrapper,
                            OptimWrapperDict)

from mmdet.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                            OPTIMIZERS)

DEFAULT_ARCH_KEY = 'arch_alpha'


def split_arch_params(
    model: nn.Module,
    arch_key: str = DEFAULT_ARCH_KEY
) -> 'tuple[Dict[str, nn.Parameter], Dict[str, nn.Parameter]]':
    """Split the trainable parameters into network weights and alpha.

    Args:
        model (nn.Module): the detector (a model wrapper is unwrapped).
        arch_key (str): a parameter whose name contains it is an
            architecture parameter.

    Returns:
        tuple[dict, dict]: ``(weights, arch)``, name -> trainable parameter.
    """
    if is_model_wrapper(model):
        model = model.module
    weights: Dict[str, nn.Parameter] = {}
    arch: Dict[str, nn.Parameter] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (arch if arch_key in name else weights)[name] = param
    return weights, arch


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ALBSearchOptimWrapperConstructor:
    """Build an :class:`OptimWrapperDict` with a weight and an arch wrapper.

    Parameters whose name contains ``arch_key`` go to the ``arch`` wrapper,
    every other trainable one to the ``weight`` wrapper (frozen ones to
    neither). Each part is an ordinary optimizer wrapper config, with its
    own ``paramwise_cfg`` if any; param schedulers are given per part,
    ``param_scheduler = dict(weight=[...], arch=[...])``.

    Example:
        >>> optim_wrapper = dict(
        ...     constructor='ALBSearchOptimWrapperConstructor',
        ...     weight=dict(type='OptimWrapper', optimizer=dict(
        ...         type='SGD', lr=0.02, momentum=0.9, weight_decay=3e-4)),
        ...     arch=dict(type='OptimWrapper', optimizer=dict(
        ...         type='Adam', lr=3e-4, betas=(0.5, 0.999),
        ...         weight_decay=1e-3)))

    Args:
        optim_wrapper_cfg (dict): ``weight`` and ``arch`` optimizer wrapper
            configs, and optionally ``arch_key`` (default ``'arch_alpha'``).
        paramwise_cfg (dict, optional): must be None; put a
            ``paramwise_cfg`` inside ``weight`` or ``arch`` instead.
    """

    parts = ('weight', 'arch')

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        if not isinstance(optim_wrapper_cfg, dict):
            raise TypeError('optim_wrapper_cfg should be a dict, '
                            f'but got {type(optim_wrapper_cfg)}')
        if paramwise_cfg:
            raise ValueError(
                'ALBSearchOptimWrapperConstructor: give paramwise_cfg inside '
                '`optim_wrapper.weight` or `optim_wrapper.arch`, not at the '
                'top level.')
        cfg = copy.deepcopy(dict(optim_wrapper_cfg))
        self.arch_key = cfg.pop('arch_key', DEFAULT_ARCH_KEY)
        missing = [p for p in self.parts if p not in cfg]
        unknown = [k for k in cfg if k not in self.parts]
        if missing or unknown:
            raise ValueError(
                'ALBSearchOptimWrapperConstructor expects optim_wrapper keys '
                f'{self.parts} (plus constructor/arch_key); missing '
                f'{missing}, unknown {unknown}')
        for part in self.parts:
            if 'optimizer' not in cfg[part]:
                raise ValueError(f'optim_wrapper.{part} has no `optimizer`')
        self.part_cfgs = cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        """Build the wrappers for ``model``.

        Raises:
            ValueError: if the model has no trainable parameter named with
                ``arch_key`` (a head built with ``search=True``) or no
                trainable network weight.
        """
        if is_model_wrapper(model):
            model = model.module
        weights, arch = split_arch_params(model, self.arch_key)
        if not arch:
            raise ValueError(
                f'No trainable parameter whose name contains '
                f'{self.arch_key!r}: build the ALB bbox head with '
                'search=True for the architecture search.')
        if not weights:
            raise ValueError('No trainable network weight besides the '
                             'architecture parameters.')
        selected = dict(weight={id(p) for p in weights.values()},
                        arch={id(p) for p in arch.values()})
        return OptimWrapperDict(**{
            part: self._build_part(model, self.part_cfgs[part],
                                   selected[part].__contains__)
            for part in self.parts
        })

    @staticmethod
    def _build_part(model: nn.Module, cfg: dict,
                    keep: Callable[[int], bool]) -> OptimWrapper:
        """Build one wrapper over the parameters ``keep(id(param))`` selects.

        With a ``paramwise_cfg`` the default constructor computes the param
        groups over the whole model (so name-based custom keys match full
        parameter names); the groups are then filtered to this part.
        """
        cfg = copy.deepcopy(cfg)
        paramwise_cfg = cfg.pop('paramwise_cfg', None)
        groups: List[dict] = []
        if paramwise_cfg:
            constructor = DefaultOptimWrapperConstructor(cfg, paramwise_cfg)
            constructor.add_params(groups, model)
            groups = [g for g in groups if keep(id(g['params'][0]))]
        else:  # parameters() yields a shared parameter once
            groups = [dict(params=[p for p in model.parameters()
                                   if keep(id(p))])]
        cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = cfg.pop('optimizer')
        optimizer_cfg['params'] = groups
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(cfg,
                                    default_args=dict(optimizer=optimizer))
