# Copyright (c) mmlesion contributors. All rights reserved.
"""mmlesion's registry tree: one child of each mmdet registry.

mmlesion's components register into mmdet's own registries (a config needs
only ``custom_imports = dict(imports=['mmlesion'])``, and a method's home
for that method's components). These children exist
for mmengine's scope machinery: a config inheriting
``'mmlesion::demo/....py'`` gets ``_scope_='mmlesion'`` on its dicts, and
mmengine then builds them through the registry of scope ``mmlesion`` (it
imports ``mmlesion.registry`` and searches the tree below mmengine's root).
Each child looks names up in itself, then in mmdet's registry and
mmengine's: every mmdet, mmengine and mmlesion component is found, as with
``default_scope = 'mmdet'``. See :mod:`mmlesion.utils.configs.lookup`.
"""
from mmdet import registry as mmdet_registry
from mmengine.registry import Registry

_SCOPE = 'mmlesion'


def _child(parent: Registry, *locations: str) -> Registry:
    return Registry(
        parent.name,
        parent=parent,
        scope=_SCOPE,
        locations=list(locations) or ['mmlesion'])


RUNNERS = _child(mmdet_registry.RUNNERS, 'mmlesion.engine')
RUNNER_CONSTRUCTORS = _child(mmdet_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmdet_registry.LOOPS, 'mmlesion.engine')
HOOKS = _child(mmdet_registry.HOOKS, 'mmlesion.engine')
DATASETS = _child(mmdet_registry.DATASETS, 'mmlesion.datasets')
DATA_SAMPLERS = _child(mmdet_registry.DATA_SAMPLERS, 'mmlesion.datasets')
TRANSFORMS = _child(mmdet_registry.TRANSFORMS, 'mmlesion.datasets')
MODELS = _child(mmdet_registry.MODELS, 'mmlesion.models')
MODEL_WRAPPERS = _child(mmdet_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmdet_registry.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(mmdet_registry.OPTIMIZERS, 'mmlesion.engine')
OPTIM_WRAPPERS = _child(mmdet_registry.OPTIM_WRAPPERS, 'mmlesion.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child(
    mmdet_registry.OPTIM_WRAPPER_CONSTRUCTORS, 'mmlesion.engine')
PARAM_SCHEDULERS = _child(mmdet_registry.PARAM_SCHEDULERS, 'mmlesion.engine')
METRICS = _child(mmdet_registry.METRICS, 'mmlesion.evaluation')
EVALUATOR = _child(mmdet_registry.EVALUATOR, 'mmlesion.evaluation')
TASK_UTILS = _child(mmdet_registry.TASK_UTILS, 'mmlesion.models')
VISUALIZERS = _child(mmdet_registry.VISUALIZERS, 'mmlesion.visualization')
VISBACKENDS = _child(mmdet_registry.VISBACKENDS, 'mmlesion.visualization')
LOG_PROCESSORS = _child(mmdet_registry.LOG_PROCESSORS, 'mmlesion.engine')
