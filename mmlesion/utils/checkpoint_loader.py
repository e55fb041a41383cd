# Copyright (c) mmlesion contributors. All rights reserved.
"""Load local mmengine checkpoints under torch >= 2.6.

torch 2.6 changed the default of ``torch.load`` to ``weights_only=True``.
mmengine 0.10.7 calls ``torch.load`` without the argument, so resuming a full
training checkpoint (which pickles mmengine's ``HistoryBuffer``, numpy arrays
and scalars, and bound methods through ``getattr``) fails with
``Unsupported global``. This module replaces mmengine's loader for local
files (the ``''`` scheme of :class:`mmengine.runner.CheckpointLoader`):

1. it first loads with ``weights_only=True`` and an allow-list of the plain
   data types mmengine checkpoints contain (``HistoryBuffer``, numpy arrays,
   dtypes and scalars): plain state dicts and most checkpoints load safely;
2. only if that fails does it unpickle the file fully (what mmengine did on
   torch < 2.6), logging a warning that names the file. Set the environment
   variable ``MMLESION_STRICT_CHECKPOINTS=1`` to refuse instead.

Only load checkpoints you trust: full unpickling can run arbitrary code.
"""
import os
import os.path as osp
import pickle
from typing import Any, List, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader


def mmengine_safe_globals() -> List[Any]:
    """Return the globals an mmengine checkpoint needs besides tensors."""
    multiarray = getattr(np, '_core', None) or np.core
    safe = [
        HistoryBuffer, multiarray.multiarray._reconstruct,
        multiarray.multiarray.scalar, np.ndarray, np.dtype
    ]
    safe += [getattr(np.dtypes, name) for name in np.dtypes.__all__]
    return safe


def load_local_checkpoint(filename: str,
                          map_location: Optional[str] = None) -> Any:
    """Load a local checkpoint file, safely where possible.

    Args:
        filename (str): path of the checkpoint file.
        map_location (str, optional): same as :func:`torch.load`.

    Returns:
        dict: the loaded checkpoint.

    Raises:
        FileNotFoundError: if the file does not exist.
        pickle.UnpicklingError: if the safe load fails and
            ``MMLESION_STRICT_CHECKPOINTS=1`` is set.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        with torch.serialization.safe_globals(mmengine_safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if os.environ.get('MMLESION_STRICT_CHECKPOINTS') == '1':
            raise pickle.UnpicklingError(
                f'{filename}: refusing to unpickle a checkpoint that '
                'weights_only loading cannot read '
                f'(MMLESION_STRICT_CHECKPOINTS=1): {err}') from err
        reason = str(err).split('WeightsUnpickler error:')[-1].strip()
        print_log(
            f'{filename}: not a plain-weights checkpoint ({reason[:120]}); '
            'loading it fully as mmengine does on torch < 2.6. Only load '
            'checkpoints you trust.',
            logger='current',
            level=30)
        return torch.load(
            filename, map_location=map_location, weights_only=False)


def register_checkpoint_loader() -> None:
    """Make :func:`load_local_checkpoint` mmengine's loader for local paths."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
