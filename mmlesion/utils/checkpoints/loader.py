# Copyright (c) mmlesion contributors. All rights reserved.
"""Load local mmengine checkpoints safely, and refuse the wrong ones.

:func:`load_local_checkpoint` is mmengine's loader for local files: it
unpickles with ``weights_only=True`` and an allow-list
(:func:`mmengine_safe_globals`), refuses any other global with
:class:`UntrustedCheckpointError` before anything in it runs unless
checkpoints are trusted (``--trust-checkpoint``), and raises
:class:`CorruptCheckpointError` naming the file for any other failure
(docs/security.md). :func:`check_state_dict_matches` raises where mmengine
only logs keys that do not fit.
"""
import _compat_pickle
import collections
import contextlib
import os
import os.path as osp
import pickle
import pickletools
import re
import zipfile
from typing import (Any, Callable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import (CheckpointLoader, _load_checkpoint,
                                        _load_checkpoint_to_model,
                                        load_state_dict)

from .checksum import (CorruptCheckpointError,
                       verify_checkpoint_checksum,
                       warn_unverified_checkpoint)
from .mismatch import (CheckpointMismatchError, class_mismatch,
                       key_differences)
from ..env_switch import env_switch_on

#: Set to ``1`` to unpickle every checkpoint fully (``--trust-checkpoint``).
TRUST_ENV = 'MMLESION_TRUST_CHECKPOINTS'

#: Statistics methods every ``HistoryBuffer`` registers in ``__init__``.
_BUILTIN_STATISTICS = ('min', 'max', 'current', 'mean')
#: mmengine's own ``HistoryBuffer.__getstate__`` (before the patch below).
MMENGINE_HISTORY_BUFFER_GETSTATE = HistoryBuffer.__getstate__
#: Phrases of torch's weights-only unpickler for a global it does not allow.
_UNKNOWN_GLOBAL = re.compile(r'Unsupported global|not an allowed global|'
                             r'unrecognized function|allowlisted|'
                             r'must be imported|is blocked|'
                             r'is not allowed in a checkpoint')


_REFUSAL = ('refusing to unpickle it (that could run code from the file). '
            'If you made this file or trust its source, pass '
            f'--trust-checkpoint (or set {TRUST_ENV}=1)')


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint naming a global outside the allow-list (not loaded)."""


class NonFiniteWeightsError(CorruptCheckpointError):
    """A checkpoint whose weights hold NaN or Inf (a diverged training)."""


def history_buffer_statistic(obj: Any, name: str) -> Callable:
    """``getattr`` restricted to ``HistoryBuffer``'s built-in statistics
    (allowing ``builtins.getattr`` itself would reach anything).

    Args:
        obj (Any): must be the ``HistoryBuffer`` class.
        name (str): one of ``min``, ``max``, ``current``, ``mean``.

    Returns:
        Callable: ``getattr(HistoryBuffer, name)``.

    Raises:
        pickle.UnpicklingError: any other object or name.
    """
    if obj is not HistoryBuffer or name not in _BUILTIN_STATISTICS:
        raise pickle.UnpicklingError(
            f'getattr({getattr(obj, "__name__", type(obj).__name__)}, '
            f'{name!r}) is not allowed in a checkpoint (only '
            f'HistoryBuffer.{"/".join(_BUILTIN_STATISTICS)})')
    return getattr(HistoryBuffer, name)


def mmengine_safe_globals() -> List[Any]:
    """Return the globals an mmengine checkpoint needs besides tensors
    (``Counter``: ``MultiStepLR`` milestones).

    Returns:
        list: entries for ``torch.serialization.safe_globals``.
    """
    multiarray = getattr(np, '_core', None) or np.core
    safe = [
        HistoryBuffer, multiarray.multiarray._reconstruct,
        multiarray.multiarray.scalar, np.ndarray, np.dtype,
        collections.Counter,
        (history_buffer_statistic, 'builtins.getattr'),
        (history_buffer_statistic, '__builtin__.getattr'),
    ]
    safe += [getattr(np.dtypes, name) for name in np.dtypes.__all__]
    return safe


def checkpoints_trusted() -> bool:
    """Whether ``MMLESION_TRUST_CHECKPOINTS=1`` (``--trust-checkpoint``)."""
    return env_switch_on(TRUST_ENV)


@contextlib.contextmanager
def trusting_checkpoints(trust: bool = True) -> Iterator[None]:
    """Trust every checkpoint inside the block, as ``--trust-checkpoint``.

    Args:
        trust (bool): whether to trust checkpoints inside the block.
    """
    if not trust:
        yield
        return
    before = os.environ.get(TRUST_ENV)
    os.environ[TRUST_ENV] = '1'
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = before


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    """``HistoryBuffer.__getstate__`` without the built-in statistics.

    Every ``HistoryBuffer()`` registers those again; only custom ones are
    kept (a checkpoint with those needs ``--trust-checkpoint``).
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
    """Pickle ``HistoryBuffer`` without ``getattr`` globals, for the whole
    process (called once by ``import mmlesion``)."""
    HistoryBuffer.__getstate__ = _history_buffer_getstate


def _describe(filename: str) -> str:
    size = osp.getsize(filename)
    kind = 'zip archive' if zipfile.is_zipfile(filename) else 'not a zip'
    return f'{size} bytes, {kind}'


def load_local_checkpoint(filename: str,
                          map_location: Optional[str] = None) -> Any:
    """Load a local checkpoint file safely (see the module).

    A file without a checksum sidecar (``<file>.sha256``) loads with a
    warning that it is unverified, once per file and process.

    Args:
        filename (str): path of the checkpoint file.
        map_location (str, optional): same as :func:`torch.load`.

    Returns:
        dict: a full mmengine checkpoint or a plain state dict.

    Raises:
        FileNotFoundError: if the file does not exist.
        ChecksumMismatchError: the bytes differ from the sidecar's SHA-256.
        CorruptCheckpointError: empty, truncated or corrupt file, a file
            that is not a PyTorch checkpoint, or one that holds no dict.
        UntrustedCheckpointError: the file names a global outside the
            allow-list and checkpoints are not trusted.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if osp.getsize(filename) == 0:
        raise CorruptCheckpointError(
            f'{filename}: empty file (0 bytes), not a checkpoint')
    verified = verify_checkpoint_checksum(filename)  # <file>.sha256
    checkpoint = _unpickle(filename, map_location)
    if not isinstance(checkpoint, Mapping):
        raise CorruptCheckpointError(
            f'{filename}: holds a {type(checkpoint).__name__}, not a '
            'checkpoint dict (save model.state_dict() or an mmengine '
            'checkpoint, not the object itself)')
    check_checkpoint_fields(checkpoint, filename)
    if verified is None:  # no sidecar: loaded, with a warning saying so
        warn_unverified_checkpoint(filename)
    return checkpoint


#: Fields of an mmengine checkpoint that must be dicts where present
#: (``None`` too: some writers leave them empty).
_DICT_FIELDS = ('meta', 'optimizer', 'message_hub')


def check_checkpoint_fields(checkpoint: Mapping, filename: str) -> None:
    """Refuse a checkpoint whose fields mmengine reads unchecked are of
    the wrong type (tensors under those names: a plain state dict).

    Args:
        checkpoint (Mapping): the loaded checkpoint.
        filename (str): named in the error.

    Raises:
        CorruptCheckpointError: naming the file and the field.
    """
    def refuse(field: str, value: Any, expected: str) -> None:
        raise CorruptCheckpointError(
            f"{filename}: field '{field}' is a {type(value).__name__}, not "
            f'{expected}; the file is not a checkpoint mmengine can load '
            '(damaged, or written by another program)')

    if 'state_dict' in checkpoint:
        state = checkpoint['state_dict']
        if not isinstance(state, Mapping):
            refuse('state_dict', state,
                   'a dict of parameter names to tensors')
        odd = [(k, v) for k, v in state.items()
               if not isinstance(v, torch.Tensor)
               and not str(k).endswith('_extra_state')]
        if odd:
            names = ', '.join(f'{k} ({type(v).__name__})'
                              for k, v in odd[:3])
            raise CorruptCheckpointError(
                f"{filename}: field 'state_dict' holds {len(odd)} value(s) "
                f'that are not tensors: {names}'
                + (' ...' if len(odd) > 3 else ''))
    for field in _DICT_FIELDS:
        value = checkpoint.get(field)
        if value is not None and not isinstance(
                value, (Mapping, torch.Tensor)):
            refuse(field, value, 'a dict')
    meta = checkpoint.get('meta')
    if isinstance(meta, Mapping):
        dataset_meta = meta.get('dataset_meta')
        if dataset_meta is not None and not isinstance(dataset_meta,
                                                       Mapping):
            refuse('meta.dataset_meta', dataset_meta,
                   "a dict (e.g. {'classes': (...)})")
        classes = (dataset_meta or {}).get('classes')
        if classes is not None and not isinstance(classes, (list, tuple)):
            refuse('meta.dataset_meta.classes', classes,
                   'a list of class names')
    schedulers = checkpoint.get('param_schedulers')
    if schedulers is not None and not isinstance(
            schedulers, (list, tuple, Mapping, torch.Tensor)):
        refuse('param_schedulers', schedulers, 'a list')


def check_finite_weights(checkpoint: Mapping, filename: str,
                         max_names: int = 5) -> None:
    """Refuse weights holding NaN or Inf (a diverged training: a scan would
    report 0 findings and succeed), naming the file and parameters.

    Args:
        checkpoint (Mapping): the loaded checkpoint (``state_dict`` or a
            plain state dict).
        filename (str): named in the error.
        max_names (int): parameters named in the message.

    Raises:
        NonFiniteWeightsError: naming the first parameters, their NaN and
            Inf counts and how many tensors are affected.
    """
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping):
        return
    bad, checked = [], 0
    for name, value in state.items():
        if not (isinstance(value, torch.Tensor)
                and (value.is_floating_point() or value.is_complex())):
            continue
        checked += 1
        finite = torch.isfinite(value)
        if bool(finite.all()):
            continue
        nan = int(torch.isnan(value).sum())
        bad.append((name, nan, int((~finite).sum()) - nan, value.numel()))
    if bad:
        listed = '; '.join(f'{n}: {nan} NaN, {inf} Inf of {total}'
                           for n, nan, inf, total in bad[:max_names])
        raise NonFiniteWeightsError(
            f'{filename}: {len(bad)} of {checked} weight tensors hold NaN '
            f'or Inf ({listed}'
            + (f'; and {len(bad) - max_names} more' if len(bad) > max_names
               else '')
            + '); a model with these weights finds nothing. The training '
            'that wrote it diverged: use an earlier checkpoint')


def _unpickle(filename: str, map_location: Optional[str]) -> Any:
    """``torch.load`` with the allow-list; the full load only if trusted."""
    try:
        with torch.serialization.safe_globals(mmengine_safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        opcode = 'Unsupported operand 149' in str(err)  # protocol 4's FRAME
        if opcode and not checkpoints_trusted():
            raise UntrustedCheckpointError(
                f'{filename}: its pickle uses an instruction the safe loader '
                f'does not read ({_short(err)}); torch.save at its default '
                'protocol never writes one, so this file was made otherwise; '
                + _REFUSAL) from err
        if not opcode and not _UNKNOWN_GLOBAL.search(str(err)):
            raise CorruptCheckpointError(
                f'{filename}: not a readable PyTorch checkpoint '
                f'({_describe(filename)}): {_short(err)}') from err
        if not checkpoints_trusted():
            raise UntrustedCheckpointError(
                f'{filename}: refers to {_unknown_global(filename, err)}, '
                'outside the allow-list of plain checkpoint data; '
                + _REFUSAL) from err
        return _load_trusted(filename, map_location, err)
    except MemoryError:
        raise
    except Exception as err:  # zip / storage / EOF errors of torch.load
        newer = str(err).find(_NEWER_TORCH)
        if newer >= 0:  # torch's whole message: the versions and the fix
            raise CorruptCheckpointError(
                f'{filename}: written by a newer PyTorch than this one '
                f'({torch.__version__}): {str(err)[newer:].strip()}'
            ) from err
        raise CorruptCheckpointError(
            f'{filename}: truncated, corrupt or not a PyTorch checkpoint '
            f'({_describe(filename)}): {type(err).__name__}: '
            f'{_short(err)}') from err


#: How torch.load begins to say the file's format is newer than its own.
_NEWER_TORCH = 'Attempted to read a PyTorch file with version'


def _unknown_global(filename: str, err: pickle.UnpicklingError) -> str:
    """Name the globals outside the allow-list, read from the pickle.

    The opcodes are only listed (:func:`pickletools.genops` runs nothing);
    where that fails (not a zip checkpoint), torch's message is quoted.
    """
    from torch._weights_only_unpickler import (_get_allowed_globals,
                                               _get_user_allowed_globals)
    with torch.serialization.safe_globals(mmengine_safe_globals()):
        allowed = set(_get_allowed_globals()) | set(
            _get_user_allowed_globals())
    try:
        with zipfile.ZipFile(filename) as zf:
            data = zf.read(next(n for n in zf.namelist()
                                if n.endswith('/data.pkl')))
        ops = list(pickletools.genops(data))
    except Exception:  # legacy format, damaged opcodes
        ops = []
    names = []
    for i, (op, arg, _) in enumerate(ops):
        if op.name == 'GLOBAL':
            module, name = arg.split(' ', 1)
        elif op.name == 'STACK_GLOBAL' and i >= 2:
            module, name = ops[i - 2][1], ops[i - 1][1]
        else:
            continue
        # protocol 2 names (what pickle's find_class maps, e.g.
        # __builtin__ -> builtins, commands -> subprocess)
        module, name = _compat_pickle.NAME_MAPPING.get(
            (module, name),
            (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
        full = f'{module}.{name}'
        if full not in allowed and full not in names:
            names.append(full)
    if names:
        return 'the global' + ('s ' if len(names) > 1 else ' ') + \
            ', '.join(names)
    found = re.search(r'GLOBAL (\S+)', str(err))
    return (f'the global {found.group(1)}' if found else
            f'an object outside the allow-list ({_short(err, 120)})')


def _short(err: BaseException, limit: int = 300) -> str:
    """First sentence of an error (torch adds paragraphs of advice)."""
    text = str(err).split('WeightsUnpickler error:')[-1].strip()
    text = text.splitlines()[0] if text else type(err).__name__
    end = text.find('. ', 40)
    text = text[:end + 1] if end > 0 else text
    return text if len(text) <= limit else text[:limit] + '...'


def _load_trusted(filename: str, map_location: Optional[str],
                  err: pickle.UnpicklingError) -> Any:
    """Full unpickling, only with ``--trust-checkpoint`` (see the module)."""
    print_log(
        f'{filename}: refers to {_unknown_global(filename, err)}; '
        'unpickling it fully because checkpoints are trusted '
        f'({TRUST_ENV}=1 / '
        '--trust-checkpoint): this runs any code the file names.',
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
    """Load ``checkpoint`` into ``model`` strictly (as
    ``Runner.load_checkpoint`` after ``revise_keys``); raise naming the
    file. The weights that fit are copied into ``model``.

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
            ``'fprn_head.'``); those parameters keep the model's values.

    Raises:
        CheckpointMismatchError: the checkpoint does not fit the model;
            its ``summary`` says so in one line, with the classes of a
            checkpoint trained on others
            (:func:`~mmlesion.utils.checkpoints.mismatch.class_mismatch`).
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
        classes = class_mismatch(model, checkpoint, state)
        headline = (
            f'{filename}: the checkpoint does not fit the model '
            f'{type(model).__name__} '
            + (f'({classes})' if classes else
               '(a checkpoint of another model or config?)')
            + '; refusing to run with randomly initialised weights')
        differences = key_differences(model, state)
        raise CheckpointMismatchError(
            f'{headline}. ' + '\n'.join(lines),
            headline + (f'. Keys: {differences}' if differences else '')
        ) from err


def load_model_checkpoint(model: torch.nn.Module,
                          filename: str,
                          map_location: Optional[str] = 'cpu',
                          allow_partial: bool = False,
                          check_finite: bool = True,
                          preloaded: Optional[Mapping] = None) -> dict:
    """Load weights into a model the way every mmlesion tool does: the
    checkpoint must fit the model exactly unless ``allow_partial``.

    Args:
        model (nn.Module): the model to fill (unwrapped).
        filename (str): checkpoint path or URL.
        map_location (str, optional): same as :func:`torch.load`.
        allow_partial (bool): accept a checkpoint that fits only partly.
        check_finite (bool): refuse weights holding NaN or Inf.
        preloaded (Mapping, optional): ``filename`` as
            :func:`load_local_checkpoint` already read it (not read again;
            the checks below still run).

    Returns:
        dict: the loaded checkpoint (its ``meta`` holds e.g.
        ``dataset_meta``).

    Raises:
        CheckpointMismatchError: the checkpoint does not fit the model.
        NonFiniteWeightsError: NaN or Inf weights.
    """
    checkpoint = preloaded if preloaded is not None else _load_checkpoint(
        filename, map_location=map_location)
    if not isinstance(checkpoint, Mapping):
        raise CorruptCheckpointError(
            f'{filename}: holds a {type(checkpoint).__name__}, not a '
            'checkpoint dict')
    check_checkpoint_fields(checkpoint, str(filename))  # URLs too
    if check_finite:
        check_finite_weights(checkpoint, str(filename))
    if allow_partial:
        _load_checkpoint_to_model(model, checkpoint, strict=False)
    else:
        check_state_dict_matches(model, checkpoint, str(filename))
    return checkpoint


def register_checkpoint_loader() -> None:
    """Make :func:`load_local_checkpoint` mmengine's loader for local
    paths, for the whole process (called once by ``import mmlesion``)."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
