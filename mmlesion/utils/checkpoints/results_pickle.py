# Copyright (c) mmlesion contributors. All rights reserved.
"""Read the prediction pickle of ``tools/test.py --out`` without running
it (``mmengine.load`` runs whatever the file names): an allow-list of the
globals that dump holds; anything else raises
:class:`UntrustedResultsError` naming the file and the global.
"""
import io
import pickle
from typing import Any, FrozenSet, List, Sequence, Tuple

import torch

#: (module, name) pairs the dump of DumpDetResults may name.
_ALLOWED = {
    ('collections', 'OrderedDict'),
    ('_codecs', 'encode'),
    ('torch._utils', '_rebuild_tensor_v2'),
    ('torch', 'Size'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
}


class UntrustedResultsError(pickle.UnpicklingError):
    """A results pickle naming a global outside the allow-list."""


def _storage_from_bytes(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), weights_only=True)


class _ResultsUnpickler(pickle.Unpickler):

    def __init__(self,
                 handle,
                 filename: str,
                 extra: FrozenSet[Tuple[str, str]] = frozenset(),
                 what: str = 'a prediction file of tools/test.py --out '
                 'holds only tensors, numpy arrays and plain containers'
                 ) -> None:
        super().__init__(handle)
        self.filename = filename
        self.extra = extra
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ('torch.storage', '_load_from_bytes'):
            return _storage_from_bytes
        if (module, name) in _ALLOWED or (module, name) in self.extra:
            return super().find_class(module, name)
        raise UntrustedResultsError(
            f'{self.filename}: refusing to unpickle {module}.{name}: '
            f'{self.what}')


def load_allow_listed_pickle(filename: str, classes: Sequence[type],
                             what: str) -> Any:
    """Unpickle ``filename`` allowing, besides tensors, numpy arrays and
    plain containers, only instances of ``classes`` (plain data classes:
    rebuilt by ``copyreg.__newobj__`` and their ``__dict__``, no code of
    theirs runs).

    Args:
        filename (str): the pickle.
        classes (Sequence[type]): the data classes it may hold.
        what (str): what the file should hold (for the error message).

    Raises:
        UntrustedResultsError: the file names another global.
        ValueError: the file is not a readable pickle.
    """
    extra = frozenset({('copyreg', '__newobj__')} |
                      {(c.__module__, c.__qualname__) for c in classes})
    return _unpickle(filename, 'pickle', extra=extra, what=what)


def _unpickle(filename: str, kind: str, **unpickler_args) -> Any:
    """Load with :class:`_ResultsUnpickler`; a file it cannot read is a
    ``ValueError`` naming it as a ``kind``."""
    try:
        with open(filename, 'rb') as handle:
            return _ResultsUnpickler(handle, filename,
                                     **unpickler_args).load()
    except UntrustedResultsError:
        raise
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError,
            AttributeError, TypeError) as err:
        raise ValueError(f'{filename}: not a readable {kind} ({err})') \
            from err


def load_prediction_pickle(filename: str) -> List[dict]:
    """The list of per-image result dicts of ``tools/test.py --out``.

    Args:
        filename (str): the ``.pkl`` file.

    Returns:
        list[dict]: one dict per test image (``img_path``,
        ``pred_instances`` ...), in the order of the test dataset.

    Raises:
        UntrustedResultsError: the file names a global outside the list.
        ValueError: the file is not such a list (empty, truncated, other).
    """
    results = _unpickle(filename,
                        'prediction pickle of tools/test.py --out')
    if not isinstance(results, list) or not all(
            isinstance(r, dict) and 'pred_instances' in r for r in results):
        raise ValueError(
            f'{filename}: expected the list of result dicts (each with '
            "'pred_instances') that tools/test.py --out writes, got "
            f'{type(results).__name__}')
    return results
