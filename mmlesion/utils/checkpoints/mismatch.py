# Copyright (c) mmlesion contributors. All rights reserved.
"""What differs between a checkpoint and the model it does not fit, in
one line (:attr:`CheckpointMismatchError.summary`), the commonest case
being a detector trained on other classes (:func:`class_mismatch`).
"""
from typing import Mapping, Optional, Sequence, Tuple

import torch

#: Class names quoted in a message; more are counted.
_NAMES_SHOWN = 5
#: Keys named per kind in a summary; more are counted.
_KEYS_SHOWN = 3


class CheckpointMismatchError(ValueError):
    """A checkpoint whose weights do not fit the model being loaded.

    Args:
        message (str): the whole message (the summary, then mmengine's
            lists of keys).
        summary (str, optional): the message in one line. Defaults to its
            first line.
    """

    def __init__(self, message: str, summary: Optional[str] = None) -> None:
        super().__init__(message)
        self.summary = summary or message.splitlines()[0]


def _names(classes: Sequence) -> str:
    shown = ', '.join(repr(str(c)) for c in list(classes)[:_NAMES_SHOWN])
    more = len(classes) - _NAMES_SHOWN
    return shown + (f', ... {more} more' if more > 0 else '')


def _count(n: int, classes: Optional[Sequence] = None) -> str:
    text = f"{n} class{'' if n == 1 else 'es'}"
    return text + (f' ({_names(classes)})' if classes else '')


def checkpoint_classes(checkpoint: Mapping) -> Optional[Sequence]:
    """The class names a checkpoint's meta records, or None.

    Args:
        checkpoint (Mapping): a loaded checkpoint.

    Returns:
        Sequence | None: ``meta['dataset_meta']['classes']`` (any case of
        the key), else ``meta['CLASSES']`` (mmdet < 3), else None.
    """
    meta = checkpoint.get('meta')
    if not isinstance(meta, Mapping):
        return None
    dataset_meta = meta.get('dataset_meta')
    if isinstance(dataset_meta, Mapping):
        for key, value in dataset_meta.items():
            if str(key).lower() == 'classes' and isinstance(
                    value, (list, tuple)):
                return tuple(value)
    classes = meta.get('CLASSES')
    return tuple(classes) if isinstance(classes, (list, tuple)) else None


def _classifiers(model: torch.nn.Module):
    """``(head, num_classes, weight key)`` of each classifier: a child
    with ``cls`` in its name and a ``weight`` of a module with an integer
    ``num_classes`` (mmdet's ``fc_cls``, ``conv_cls``, ``retina_cls``,
    ...)."""
    for prefix, head in model.named_modules():
        num = getattr(head, 'num_classes', None)
        if not isinstance(num, int) or isinstance(num, bool):
            continue
        for name, child in head.named_children():
            weight = getattr(child, 'weight', None)
            if 'cls' in name and isinstance(weight, torch.Tensor):
                key = f'{prefix}.{name}.weight' if prefix else \
                    f'{name}.weight'
                yield head, num, key


def _classes_of_outputs(head: torch.nn.Module, num_classes: int,
                        model_out: int, ckpt_out: int) -> Optional[int]:
    """The number of classes a classifier of ``ckpt_out`` outputs is for,
    where the model's has ``model_out`` for ``num_classes``: per prior
    ``cls_out_channels`` outputs (mmdet's anchor heads: the classes, plus
    one for the background with a softmax), else the classes plus the
    model's extra outputs (an RoI head's background)."""
    per = getattr(head, 'cls_out_channels', None)
    if isinstance(per, int) and per > 0 and model_out % per == 0:
        priors = model_out // per
        if ckpt_out % priors:
            return None
        found = ckpt_out // priors - (per - num_classes)
    else:
        found = ckpt_out - (model_out - num_classes)
    return found if found >= 1 else None


def class_mismatch(model: torch.nn.Module, checkpoint: Mapping,
                   state: Mapping) -> Optional[str]:
    """Say which classes the checkpoint and the model are for, where they
    differ.

    Args:
        model (nn.Module): the model (its heads' ``num_classes``; the
            names from its ``dataset_meta``, where it has them).
        checkpoint (Mapping): the loaded checkpoint (its meta).
        state (Mapping): its state dict, keys as the model names them.

    Returns:
        str | None: e.g. ``"the checkpoint is for 80 classes ('person',
        ...) by its meta, the config for 1 class ('lesion'); ..."``; None
        when neither the meta nor a classifier shows other classes.
    """
    found = None
    params = model.state_dict()
    for head, num, key in _classifiers(model):
        theirs, ours = state.get(key), params.get(key)
        if isinstance(theirs, torch.Tensor) and ours is not None and (
                theirs.dim() >= 1 and theirs.shape[0] != ours.shape[0]):
            found = (num, key, _classes_of_outputs(
                head, num, ours.shape[0], theirs.shape[0]),
                     tuple(theirs.shape), tuple(ours.shape))
            break
    heads = [num for _, num, _ in _classifiers(model)]
    if found is None and not heads:
        return None
    num = found[0] if found else heads[0]
    named = checkpoint_classes(checkpoint)
    if found is None and (named is None or len(named) == num):
        return None
    if named is not None:
        theirs_text = f'{_count(len(named), named)} by its meta'
    elif found[2] is not None:
        theirs_text = f'{_count(found[2])} by its classifier'
    else:
        theirs_text = 'other classes by its classifier'
    names = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    text = (f'the checkpoint is for {theirs_text}, the config for '
            f'{_count(num, names if names and len(names) == num else None)}')
    if found is not None:
        text += (f'; {found[1]}: {list(found[3])} in the checkpoint, '
                 f'{list(found[4])} in the model')
    return text


def _keys(kind: str, keys: Sequence[str]) -> str:
    shown = ', '.join(keys[:_KEYS_SHOWN])
    more = len(keys) - _KEYS_SHOWN
    return f'{len(keys)} {kind} ({shown}' + (
        f', ... {more} more)' if more > 0 else ')')


def key_differences(model: torch.nn.Module, state: Mapping) -> str:
    """The keys that differ, counted, a few named: e.g. ``"2 of another
    shape (roi_head.bbox_head.fc_cls.weight, ...)"``.

    Args:
        model (nn.Module): the model.
        state (Mapping): the checkpoint's state dict, keys as the model
            names them.

    Returns:
        str: ``'; '``-joined parts (of another shape, missing,
        unexpected); empty if the keys and shapes agree.
    """
    ours = model.state_dict()
    shape = [k for k, v in ours.items() if isinstance(
        state.get(k), torch.Tensor) and tuple(state[k].shape) != tuple(
            v.shape)]
    missing = [k for k in ours if k not in state
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state if k not in ours]
    parts: Tuple[str, ...] = tuple(
        _keys(kind, keys) for kind, keys in (
            ('of another shape', shape), ('missing', missing),
            ('unexpected', unexpected)) if keys)
    return '; '.join(parts)
