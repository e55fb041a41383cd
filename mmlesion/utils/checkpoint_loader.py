# Copyright (c) mmlesion contributors. All rights reserved.
"""Load local mmengine checkpoints safely, and refuse the wrong ones.

torch 2.6 changed the default of ``torch.load`` to ``weights_only=True``.
mmengine 0.10.7 calls ``torch.load`` without the argument, so resuming a full
training checkpoint fails with ``Unsupported global``. This module replaces
mmengine's loader for local files (the ``''`` scheme of
:class:`mmengine.runner.CheckpointLoader`):

1. it loads with ``weights_only=True`` and an allow-list of the plain data
   types mmengine training checkpoints contain (:func:`mmengine_safe_globals`:
   ``HistoryBuffer``, numpy arrays, dtypes and scalars, the
   ``collections.Counter`` of ``MultiStepLR`` milestones). Checkpoints
   written with mmlesion imported load this way, without full unpickling:
   mmengine pickles every ``HistoryBuffer`` with its statistics functions
   (``getattr(HistoryBuffer, 'mean')``, a ``getattr`` global no safe loader
   may allow), so :func:`patch_history_buffer_pickling` leaves the four
   built-in ones (restored on load) out of the pickle;
2. only where the safe load fails on an **unknown global** (a checkpoint of
   plain mmengine, or with custom objects) does it unpickle the file fully
   (what mmengine did on torch < 2.6), logging a warning that names the
   file. ``MMLESION_STRICT_CHECKPOINTS=1`` refuses instead, and a global of
   a module torch blocks (``os.system``, ``subprocess``...) is always
   refused: full unpickling would run it;
3. any other failure (empty, truncated, corrupt file, or a file that is not
   a PyTorch checkpoint) raises :class:`CorruptCheckpointError` naming the
   file, its size and the reason, never a full-unpickling attempt nor an
   error deep inside torch; a file that unpickles to something other than a
   dict (e.g. a whole ``nn.Module``) is refused the same way.

:func:`check_state_dict_matches` compares a checkpoint with a model (missing
and unexpected keys, shape mismatches) and raises
:class:`CheckpointMismatchError` naming the file: mmengine only logs these
(``strict=False``), so a checkpoint of another model silently evaluates
randomly initialised heads. ``tools/train.py`` and ``tools/test.py`` apply it
to every checkpoint they load through
:class:`mmlesion.engine.hooks.CheckpointCheckHook`.

Only load checkpoints you trust: full unpickling can run arbitrary code.
"""
import collections
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

from .checkpoint_checksum import verify_checkpoint_checksum

#: Statistics methods every ``HistoryBuffer`` registers in ``__init__``.
_BUILTIN_STATISTICS = ('min', 'max', 'current', 'mean')
#: Phrases of torch's weights-only unpickler for a global it does not allow.
_UNKNOWN_GLOBAL = re.compile(r'Unsupported global|not an allowed global|'
                             r'unrecognized function|allowlisted|'
                             r'must be imported')


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (empty, truncated, not one)."""


class CheckpointMismatchError(ValueError):
    """A checkpoint whose weights do not fit the model being loaded."""


def mmengine_safe_globals() -> List[Any]:
    """Return the globals an mmengine checkpoint needs besides tensors.

    Returns:
        list: classes and functions for ``torch.serialization.safe_globals``.
    """
    multiarray = getattr(np, '_core', None) or np.core
    safe = [
        HistoryBuffer, multiarray.multiarray._reconstruct,
        multiarray.multiarray.scalar, np.ndarray, np.dtype,
        collections.Counter
    ]
    safe += [getattr(np.dtypes, name) for name in np.dtypes.__all__]
    return safe


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    """``HistoryBuffer.__getstate__`` without the built-in statistics.

    mmengine's version stores all of ``_statistics_methods`` so that custom
    ones registered with ``HistoryBuffer.register_statistics`` survive a
    resume. The built-in ones are registered again by every
    ``HistoryBuffer()``; only custom ones are kept here (those still need
    the full-unpickling fallback to load).
    """
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    custom = {
        name: method
        for name, method in self._statistics_methods.items()
        if not (name in _BUILTIN_STATISTICS
                and method is getattr(HistoryBuffer, name))
    }
    if custom:
        state['statistics_methods'] = custom
    return state


def patch_history_buffer_pickling() -> None:
    """Pickle ``HistoryBuffer`` without ``getattr`` globals (see module)."""
    HistoryBuffer.__getstate__ = _history_buffer_getstate


def _describe(filename: str) -> str:
    size = osp.getsize(filename)
    kind = 'zip archive' if zipfile.is_zipfile(filename) else 'not a zip'
    return f'{size} bytes, {kind}'


def load_local_checkpoint(filename: str,
                          map_location: Optional[str] = None) -> Any:
    """Load a local checkpoint file, safely where possible.

    Args:
        filename (str): path of the checkpoint file.
        map_location (str, optional): same as :func:`torch.load`.

    Returns:
        dict: the loaded checkpoint (a full mmengine checkpoint or a plain
        state dict).

    Raises:
        FileNotFoundError: if the file does not exist.
        CorruptCheckpointError: empty, truncated or corrupt file, a file
            that is not a PyTorch checkpoint, or one that holds no dict.
        pickle.UnpicklingError: if the file needs full unpickling and
            ``MMLESION_STRICT_CHECKPOINTS=1`` is set.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if osp.getsize(filename) == 0:
        raise CorruptCheckpointError(
            f'{filename}: empty file (0 bytes), not a checkpoint')
    verify_checkpoint_checksum(filename)  # sidecar <file>.sha256, if any
    try:
        with torch.serialization.safe_globals(mmengine_safe_globals()):
            checkpoint = torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        blocked = re.search(r'unsupported GLOBAL (\S+) whose module (\S+) '
                            r'is blocked', str(err))
        if blocked:  # e.g. os.system: never unpickle such a file
            raise pickle.UnpicklingError(
                f'{filename}: refers to {blocked.group(1)}, of a module torch '
                f'blocks ({blocked.group(2)}); refusing to unpickle it'
            ) from err
        if not _UNKNOWN_GLOBAL.search(str(err)):
            raise CorruptCheckpointError(
                f'{filename}: not a readable PyTorch checkpoint '
                f'({_describe(filename)}): {_short(err)}') from err
        checkpoint = _load_unsafe(filename, map_location, err)
    except MemoryError:
        raise
    except Exception as err:  # zip / storage / EOF errors of torch.load
        raise CorruptCheckpointError(
            f'{filename}: truncated, corrupt or not a PyTorch checkpoint '
            f'({_describe(filename)}): {type(err).__name__}: '
            f'{_short(err)}') from err
    if not isinstance(checkpoint, Mapping):
        raise CorruptCheckpointError(
            f'{filename}: holds a {type(checkpoint).__name__}, not a '
            'checkpoint dict (save model.state_dict() or an mmengine '
            'checkpoint, not the object itself)')
    return checkpoint


def _short(err: BaseException, limit: int = 300) -> str:
    """First sentence of an error (torch adds paragraphs of advice)."""
    text = str(err).split('WeightsUnpickler error:')[-1].strip()
    text = text.splitlines()[0] if text else type(err).__name__
    end = text.find('. ', 40)
    text = text[:end + 1] if end > 0 else text
    return text if len(text) <= limit else text[:limit] + '...'


def _load_unsafe(filename: str, map_location: Optional[str],
                 err: pickle.UnpicklingError) -> Any:
    """Full unpickling after an unknown-global error (see the module)."""
    if os.environ.get('MMLESION_STRICT_CHECKPOINTS') == '1':
        raise pickle.UnpicklingError(
            f'{filename}: refusing to unpickle a checkpoint that '
            'weights_only loading cannot read '
            f'(MMLESION_STRICT_CHECKPOINTS=1): {err}') from err
    print_log(
        f'{filename}: not a plain-weights checkpoint ({_short(err, 120)}); '
        'loading it fully as mmengine does on torch < 2.6. Only load '
        'checkpoints you trust.',
        logger='current',
        level=30)
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    except Exception as full_err:
        raise CorruptCheckpointError(
            f'{filename}: cannot be unpickled ({_describe(filename)}): '
            f'{type(full_err).__name__}: {_short(full_err)}') from full_err


def check_state_dict_matches(
        model: torch.nn.Module,
        checkpoint: Mapping,
        filename: str,
        revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), ),
        max_chars: int = 3000,
        allowed_missing: Sequence[str] = ()) -> None:
    """Load ``checkpoint`` into ``model`` strictly; raise naming the file.

    This is mmengine's own loading (:func:`mmengine.runner.load_state_dict`
    after ``revise_keys``, as ``Runner.load_checkpoint`` does, so modules'
    ``_load_from_state_dict`` key remapping, e.g. ``RTMBBoxHead``'s, and the
    tolerance for missing BatchNorm ``num_batches_tracked`` apply) with
    ``strict=True``: missing keys, unexpected keys and shape mismatches
    raise instead of being logged. The weights that fit are copied into
    ``model`` as a side effect (the runner's own load then copies the same
    values again).

    Args:
        model (nn.Module): the model the weights are for (unwrapped).
        checkpoint (Mapping): the loaded checkpoint (with ``state_dict`` or
            a plain state dict).
        filename (str): named in the error.
        revise_keys (Sequence[tuple]): ``(pattern, replacement)`` applied to
            the checkpoint's keys (mmengine's default strips ``module.``).
        max_chars (int): longer lists of keys are cut in the message.
        allowed_missing (Sequence[str]): key prefixes the checkpoint may
            lack (a stage checkpoint of a smaller model, e.g.
            ``'fprn_head.'`` for the RPN stage of the 3D Aggregated Faster
            R-CNN); those parameters keep the model's own values. Every
            other mismatch still raises.

    Raises:
        CheckpointMismatchError: the checkpoint does not fit the model.
    """
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError(
            f"{filename}: 'state_dict' is a {type(state).__name__}, not a "
            'mapping of parameter names to tensors')
    metadata = getattr(state, '_metadata', None)
    for pattern, repl in revise_keys:
        state = collections.OrderedDict(
            (re.sub(pattern, repl, k), v) for k, v in state.items())
    allowed_missing = tuple(allowed_missing)
    if allowed_missing:
        for key, value in model.state_dict().items():
            if key not in state and key.startswith(allowed_missing):
                state[key] = value
    if metadata is not None:
        state._metadata = metadata
    try:
        load_state_dict(model, state, strict=True)
    except RuntimeError as err:
        lines = [
            line if len(line) <= max_chars else line[:max_chars] + ' ...'
            for line in str(err).splitlines() if line.strip()
        ]
        raise CheckpointMismatchError(
            f'{filename}: the checkpoint does not fit the model '
            f'{type(model).__name__} (a checkpoint of another model or '
            'config?); refusing to run with randomly initialised weights. '
            + '\n'.join(lines)) from err


def register_checkpoint_loader() -> None:
    """Make :func:`load_local_checkpoint` mmengine's loader for local paths.

    Also makes new checkpoints loadable safely
    (:func:`patch_history_buffer_pickling`).
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
    patch_history_buffer_pickling()
