# Copyright (c) mmlesion contributors. All rights reserved.
"""The whole merged config, checked before the Runner is built.

``Config.fromfile`` accepts any key anywhere, so a typo is ignored
silently. :func:`check_whole_config` checks the keys of every dict whose
``type`` names a registered class (its arguments) or that is read key by
key (:data:`MODEL_CFG_KEYS`, NMS configs, ``env_cfg``...), and refuses
strings where numbers or bools belong, naming each dotted path.
"""
import collections.abc
import functools
import importlib
import inspect
import logging
import numbers
import typing
from dataclasses import dataclass
from typing import (Any, Callable, Dict, FrozenSet, Iterator, List, Mapping,
                    NamedTuple, Optional, Set, Tuple)

from mmengine.config import Config
from mmengine.logging import print_log

from ..method_registry import (MethodPart, MethodRegistry, MethodView,
                               required)

from .cfg_options import ConfigOptionError
from .class_signature import ClassSignature, signature_of
from .known_keys import (BUILDER_KEYS, TRAINING_ONLY_KEYS, TYPO_CUTOFF,
                         closest, known_config_keys, plain_dict_keys,
                         registered, type_name)


class ConfigCheckError(ConfigOptionError):
    """Keys nothing reads or values of the wrong type in a config."""


class Problem(NamedTuple):
    """One finding of :func:`find_config_problems`."""
    path: str  #: dotted path of the key, e.g. ``model.test_cfg.rcnn.x``
    message: str  #: one line, starting with the path
    error: bool  #: False: a warning only


# untyped dicts read key by key
_DENSE_TRAIN = frozenset(
    {'assigner', 'sampler', 'allowed_border', 'pos_weight', 'debug'})
_DENSE_TEST = frozenset(
    {'nms_pre', 'min_bbox_size', 'score_thr', 'nms', 'max_per_img'})
_RCNN_TRAIN = frozenset(
    {'assigner', 'sampler', 'pos_weight', 'debug', 'mask_size'})
_RCNN_TEST = frozenset({'score_thr', 'nms', 'max_per_img', 'mask_thr_binary'})
#: the sections of a two-stage detector (and the keys read there)
TWO_STAGE_KEYS: Dict[str, FrozenSet[str]] = {
    'train_cfg': frozenset({'rpn', 'rpn_proposal', 'rcnn'}),
    'train_cfg.rpn': _DENSE_TRAIN,
    'train_cfg.rpn_proposal': _DENSE_TEST,
    'train_cfg.rcnn': _RCNN_TRAIN,
    'test_cfg': frozenset({'rpn', 'rcnn'}),
    'test_cfg.rpn': _DENSE_TEST,
    'test_cfg.rcnn': _RCNN_TEST,
}
#: the sections of a single-stage detector
SINGLE_STAGE_KEYS: Dict[str, FrozenSet[str]] = {
    'train_cfg': _DENSE_TRAIN,
    'test_cfg': _DENSE_TEST,
}



@dataclass(frozen=True)
class ConfigKeys(MethodPart):
    """What a method's detectors read of ``model.train_cfg`` /
    ``test_cfg`` (their untyped dicts), for the whole-config check.

    Args:
        name (str): the method's name.
        keys (Mapping[str, Mapping[str, FrozenSet[str]]]): detector
            ``type`` -> section (``'test_cfg'``, ``'test_cfg.rpn'``...)
            -> the keys read there.
    """
    keys: Mapping[str, Mapping[str, FrozenSet[str]]] = required()


#: method name -> its :class:`ConfigKeys` (registered from its home)
CONFIG_KEYS = MethodRegistry('config keys', ConfigKeys)

#: Detector ``type`` -> {section: the keys read there}: mmdet's detectors
#: and each registered method's (:class:`ConfigKeys`).
MODEL_CFG_KEYS: Mapping[str, Dict[str, FrozenSet[str]]] = MethodView(
    CONFIG_KEYS, 'keys', {
        'TwoStageDetector': TWO_STAGE_KEYS,
        'FasterRCNN': TWO_STAGE_KEYS,
        'MaskRCNN': TWO_STAGE_KEYS,
        'SingleStageDetector': SINGLE_STAGE_KEYS,
        'RetinaNet': SINGLE_STAGE_KEYS,
    })
#: Keys of those sections (and of NMS configs) that hold numbers
#: (possibly a sequence of them)...
NUMERIC_KEYS = frozenset({
    'score_thr', 'max_per_img', 'nms_pre', 'min_bbox_size',
    'mask_thr_binary', 'pos_weight', 'allowed_border', 'mask_size',
    'iou_thr', 'iou_threshold', 'merge_iou_thr', 'split_thr', 'max_num',
    'window_size', 'overlap', 'pad_value', 'window_batch_size',
    'rpn_only_iters', 'alternate_interval', 'mask_thr', 'connectivity',
    'min_area', 'offset', 'score_threshold', 'sigma', 'min_score'
})
#: ... or bools.
BOOL_KEYS = frozenset({'debug', 'class_agnostic', 'show_progress'})
#: Keys ``mmcv.ops.batched_nms`` pops before calling the NMS op.
_BATCHED_NMS_KEYS = frozenset({'type', 'class_agnostic', 'split_thr',
                               'max_num'})
#: Builders of untyped dicts: path -> the class mmengine builds there.
_IMPLICIT_TYPES: Dict[str, Callable[[Mapping], str]] = {
    'train_cfg': lambda node: ('EpochBasedTrainLoop' if node.get(
        'by_epoch', True) else 'IterBasedTrainLoop'),
    'val_cfg': lambda node: 'ValLoop',
    'test_cfg': lambda node: 'TestLoop',
    'optim_wrapper': lambda node: 'OptimWrapper',
    'log_processor': lambda node: 'LogProcessor',
}
#: Arguments the Runner passes itself (not the config's to set).
_IMPLICIT_DROPPED = frozenset({'runner', 'dataloader'})
#: Keys of the config system itself (``_delete_`` stays in a dict that
#: replaced nothing, e.g. a helper variable's).
_CONFIG_KEYS = frozenset({'_delete_'})


# values of the wrong type
_NUMBER_TYPES = (numbers.Number, type(None))
_SEQUENCES = (list, tuple, collections.abc.Sequence,
              collections.abc.MutableSequence)


def numeric_only(annotation: Any) -> bool:
    """Whether an annotation admits only numbers, bools, None, tensors and
    sequences of them (never a string). Unknown forms count as False."""
    if isinstance(annotation, type):
        import numpy as np
        import torch
        return issubclass(annotation,
                          _NUMBER_TYPES + (torch.Tensor, np.ndarray))
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    if origin is typing.Union or type(annotation).__name__ == 'UnionType':
        return all(numeric_only(a) for a in args) and any(
            a is not type(None) for a in args)
    if origin in _SEQUENCES:
        return bool(args) and all(numeric_only(a) for a in args)
    if origin is typing.Literal:
        return all(isinstance(a, (numbers.Number, bool)) for a in args)
    return False


def _strings_in(value: Any, path: str) -> Iterator[Tuple[str, str]]:
    """(path, string) of ``value`` and of the items of its lists."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _strings_in(item, f'{path}.{i}')


def _expected(annotation: Any, default: Any) -> str:
    """How to name what a parameter expects, for a message."""
    if annotation is bool or (annotation is None and
                              isinstance(default, bool)):
        return 'True or False'
    if annotation in (int, float):
        return f'a number ({annotation.__name__})'
    if annotation is None:
        return f'a number (like the default {default!r})'
    text = str(annotation).replace('typing.', '').replace('NoneType', 'None')
    for prefix in ('torch.', 'numpy.'):
        text = text.replace(prefix, '')
    return f'numbers ({text})'


def _wrong_type(path: str, value: Any, annotation: Any, default: Any,
                owner: str) -> List[Problem]:
    """Strings where numbers (or bools) belong."""
    if annotation is not None:
        found = list(_strings_in(value, path)) if numeric_only(
            annotation) else []
    elif isinstance(default, (numbers.Number, bool)):
        found = [(path, value)] if isinstance(value, str) else []
    else:
        return []
    return [
        Problem(where, f'{where}={text!r}: {owner} expects '
                f'{_expected(annotation, default)}, got a string', True)
        for where, text in found
    ]


# the walk
class _Spec(NamedTuple):
    """What a dict of the config may hold."""
    owner: str  #: named in messages: a class or what reads the dict
    known: FrozenSet[str]  #: keys read
    open_ended: bool  #: other keys are passed on unseen
    signature: Optional[ClassSignature]  #: for annotations and defaults
    numeric: FrozenSet[str] = frozenset()  #: keys that must hold numbers


def _extra_builder_keys(key: str, obj: Any) -> Set[str]:
    """Keys that the code building a component consumes itself."""
    from mmengine.model.weight_init import BaseInit
    from mmengine.optim.scheduler.param_scheduler import _ParamScheduler
    extra = set()
    if key == 'override':  # init_cfg override: the layer's name
        extra.add('name')
    if inspect.isclass(obj) and issubclass(obj, BaseInit):
        extra.add('override')  # mmengine's initialize() reads it
    if key.endswith('norm_cfg'):  # mmcv build_norm_layer
        extra.add('requires_grad')
    if key == 'dcn':  # mmdet ResNet's Bottleneck
        extra.add('fallback_on_stride')
    if inspect.isclass(obj) and issubclass(obj, _ParamScheduler):
        extra.add('convert_to_iter_based')
    return extra


def _class_spec(obj: Any, owner: str, key: str,
                dropped: FrozenSet[str] = frozenset()) -> _Spec:
    signature = signature_of(obj)
    known = (signature.names - dropped) | BUILDER_KEYS | _CONFIG_KEYS | \
        _extra_builder_keys(key, obj)
    return _Spec(owner, frozenset(known), signature.open_ended, signature)


@functools.lru_cache(maxsize=None)
def _nms_keys(op: str) -> Optional[FrozenSet[str]]:
    """Keys of an NMS config for ``mmcv.ops.batched_nms`` (None: unknown
    op)."""
    nms_ops = importlib.import_module('mmcv.ops.nms')
    func = getattr(nms_ops, op, None)
    if not callable(func):
        return None
    names = list(inspect.signature(func).parameters)[2:]  # boxes, scores
    return _BATCHED_NMS_KEYS | frozenset(names)


def _roi_layer(name: Any) -> Optional[Any]:
    """The op an mmdet RoI extractor's ``roi_layer`` names (it is looked up
    in ``mmcv.ops``, not in a registry)."""
    import mmcv.ops
    found = getattr(mmcv.ops, name, None) if isinstance(name, str) else None
    return found if inspect.isclass(found) else None


class _Models(NamedTuple):
    """Detectors met so far in the walk (their dicts' paths)."""
    #: path of a section -> (detector type, keys read there)
    sections: Dict[str, Tuple[str, FrozenSet[str]]]
    #: path of a detector -> its type (every mmdet ``BaseDetector``)
    detectors: Dict[str, str]

    def section(self, path: str) -> Optional[_Spec]:
        """The spec of a detector's ``train_cfg`` / ``test_cfg`` section at
        ``path`` (keys only where :data:`MODEL_CFG_KEYS` knows them)."""
        if path in self.sections:
            owner, known = self.sections[path]
            return _Spec(owner, known, False, None,
                         (NUMERIC_KEYS | BOOL_KEYS) & known)
        for model, name in self.detectors.items():
            if path.startswith((f'{model}.train_cfg', f'{model}.test_cfg')):
                return _Spec(name, frozenset(), True, None,
                             NUMERIC_KEYS | BOOL_KEYS)
        return None

    def add(self, path: str, name: str, obj: Any) -> None:
        """Note the dict at ``path`` if it builds a detector."""
        from mmdet.models.detectors import BaseDetector
        if inspect.isclass(obj) and issubclass(obj, BaseDetector):
            self.detectors[path] = name
            for section, known in MODEL_CFG_KEYS.get(name, {}).items():
                self.sections[f'{path}.{section}'] = (name, known)


def _nms_spec(node: Mapping, path: str, models: _Models) -> Optional[_Spec]:
    """The spec of a detector's NMS config (``nms=dict(type='nms', ...)``
    under a section: ``mmcv.ops.batched_nms`` reads it)."""
    parent = models.section(path.rpartition('.')[0])
    op = node.get('type', 'nms')
    known = _nms_keys(op) if parent and isinstance(op, str) else None
    if known is None:
        return None
    return _Spec(f'mmcv.ops.{op}', known, parent.open_ended, None,
                 (NUMERIC_KEYS | BOOL_KEYS) & known)


def _untyped_spec(node: Mapping, path: str, key: str,
                  models: _Models) -> Optional[_Spec]:
    """The spec of a dict without ``type`` (None: nothing known)."""
    spec = models.section(path)
    if spec is not None:
        return spec
    if path in _IMPLICIT_TYPES:
        obj = registered(_IMPLICIT_TYPES[path](node))
        if obj is not None:
            spec = _class_spec(obj, obj.__name__, key, _IMPLICIT_DROPPED)
            return spec._replace(known=spec.known | {'by_epoch'})
    known = plain_dict_keys(path)
    return None if known is None else _Spec(path, frozenset(known), False,
                                            None)


def _dict_spec(node: Mapping, path: str, key: str,
               models: _Models) -> Optional[_Spec]:
    """What the dict ``node`` at ``path`` may hold (None: not known);
    notes the detectors in ``models``."""
    if path == 'optim_wrapper' and 'constructor' in node:
        return None  # a constructor of its own reads it (ALB search: two)
    if key == 'nms':
        spec = _nms_spec(node, path, models)
        if spec is not None:
            return spec
    if 'type' not in node:
        return _untyped_spec(node, path, key, models)
    obj = _roi_layer(node['type']) if key == 'roi_layer' else registered(
        node['type'])
    if obj is None:
        return None
    name = type_name(node)
    models.add(path, name.rpartition('.')[2], obj)
    return _class_spec(obj, name, key)


#: Known keys are listed in a message up to this many.
_LISTED_KEYS = 10


def _unknown_key(path: str, key: str, spec: _Spec) -> Optional[Problem]:
    """The problem with ``key``, absent from ``spec.known``, if any."""
    where = f'{path}.{key}'
    if spec.open_ended:  # only a near-typo, and a warning
        close = closest(key, spec.known, cutoff=TYPO_CUTOFF)
        return None if close is None else Problem(
            where, f'{where}: {spec.owner} passes it on unchecked; did you '
            f'mean {path}.{close}?', False)
    close = closest(key, spec.known)
    if spec.signature is not None:
        what = f'{spec.owner} takes no argument {key!r}'
    else:
        what = f'{spec.owner} does not read {key!r} here'
        if len(spec.known) <= _LISTED_KEYS:
            what += f' (it reads {", ".join(sorted(spec.known))})'
    hint = f'; did you mean {path}.{close}?' if close else ''
    return Problem(where, f'{where}: {what}{hint}', True)


def _value_problems(node: Mapping, path: str, spec: _Spec) -> List[Problem]:
    problems = []
    for key, value in node.items():
        key = str(key)
        where = f'{path}.{key}'
        if spec.signature is not None and key in spec.signature.params:
            param = spec.signature.params[key]
            if key not in spec.signature.hints and \
                    param.annotation is not param.empty:
                continue  # an annotation that does not resolve
            default = (None if param.default is param.empty else
                       param.default)
            problems += _wrong_type(where, value,
                                    spec.signature.hints.get(key), default,
                                    spec.owner)
        elif key in spec.numeric:
            expected = 'True or False' if key in BOOL_KEYS else 'a number'
            problems += [
                Problem(at, f'{at}={text!r}: {spec.owner} reads {expected} '
                        'here, got a string', True)
                for at, text in _strings_in(value, where)
            ]
    return problems


def _walk(node: Any, path: str, key: str,
          models: _Models) -> Iterator[Problem]:
    if isinstance(node, Mapping):
        spec = _dict_spec(node, path, key, models)
        if spec is not None:
            for key_name in node:
                if key_name not in spec.known and key_name not in _CONFIG_KEYS:
                    problem = _unknown_key(path, str(key_name), spec)
                    if problem is not None:
                        yield problem
            yield from _value_problems(node, path, spec)
        for child_key, value in node.items():
            yield from _walk(value, f'{path}.{child_key}', str(child_key),
                             models)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f'{path}.{i}', key, models)


def find_config_problems(cfg: Config,
                         testing: bool = False) -> List[Problem]:
    """Keys nothing reads and strings where numbers belong, in ``cfg``
    (top-level helper variables are checked where they are used).

    Args:
        cfg (Config | dict): the merged config.
        testing (bool): check only what a test reads: the sections of
            :data:`.known_keys.TRAINING_ONLY_KEYS` are skipped.

    Returns:
        list[Problem]: in config order.
    """
    root = cfg._cfg_dict if isinstance(cfg, Config) else cfg
    read = known_config_keys() - (TRAINING_ONLY_KEYS if testing else set())
    models = _Models({}, {})
    problems: List[Problem] = []
    for key, value in root.items():
        if key in read:
            problems += _walk(value, str(key), str(key), models)
    return problems


def check_whole_config(cfg: Config, source: str = 'config',
                       testing: bool = False) -> List[str]:
    """Refuse a config with keys nothing reads or numbers as strings.

    Args:
        cfg (Config): the merged config.
        source (str): the config's path, named in the messages.
        testing (bool): check only what a test reads (``tools/test.py``:
            no training section).

    Returns:
        list[str]: warnings (also logged): keys close to an argument of a
        component that passes unknown keys on unchecked.

    Raises:
        ConfigCheckError: listing every error, one per line.
    """
    problems = find_config_problems(cfg, testing)
    errors = [p.message for p in problems if p.error]
    warnings = [p.message for p in problems if not p.error]
    for warning in warnings:
        print_log(f'{source}: {warning}', logger='current',
                  level=logging.WARNING)
    if errors:
        raise ConfigCheckError(
            f'{source}: {len(errors)} problem(s) in the config (keys that '
            'nothing reads, values of the wrong type):\n' +
            '\n'.join(f'  {line}' for line in errors))
    return warnings
