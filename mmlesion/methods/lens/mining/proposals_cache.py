# Copyright (c) mmlesion contributors. All rights reserved.
"""The mining tool's ``--proposals-cache``: a LENS model's proposals
(:func:`~.proposals.collect_series_proposals`) kept in a file, so that
mining the same model with other strategies predicts once.

A cache is recognised by its first bytes, :data:`CACHE_MAGIC`, followed by
``torch.save``'s archive of a dict read with ``weights_only=True``. Any
other file (a user's own torch file, a LENS checkpoint named there by a
slip, an empty file) is never replaced: the run is refused, naming it. A
cache of this tool that cannot be read (truncated) or is of another model,
config or slice set is replaced, saying so in one line, as is every
temporary a killed run left beside it. One run uses a cache at a time (an
``flock`` on a hidden lock file beside it).
"""
import logging
import os.path as osp
from dataclasses import asdict
from typing import Callable, List, Optional

import numpy as np
import torch
from mmengine.logging import print_log

from mmlesion.utils.writing.atomic import (atomic_write,
                                           remove_stale_temporaries_of)
from mmlesion.utils.writing.work_dir_lock import WorkDirLock
from .strategies import SeriesMining, SliceProposals

#: First bytes of every proposals cache (then ``torch.save``'s archive).
CACHE_MAGIC = b'mmlesion.lens_proposals_cache/1\n'
#: Fields of :class:`~.strategies.SeriesMining` the cache keeps.
_KEPT = ('series', 'patient', 'annotations', 'proposals',
         'single_type_proposals', 'annotation_embeddings', 'annotation_sites')


def _tensors(value):
    """numpy arrays (and scalars, dict keys too) as torch / Python values,
    which ``torch.load(weights_only=True)`` reads."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {_tensors(k): _tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tensors(v) for v in value]
    return value


def _arrays(value):
    """The inverse of :func:`_tensors`."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrays(v) for v in value]
    return value


class _CacheLock(WorkDirLock):
    """The hidden lock file ``.<name>.lock`` beside the cache ``path``."""

    def __init__(self, path: str) -> None:
        super().__init__(osp.dirname(osp.abspath(path)), '--proposals-cache')
        self.path = osp.join(self.work_dir, f'.{osp.basename(path)}.lock')
        self.cache = path

    def busy_message(self, holder: str) -> str:
        return (f'--proposals-cache {self.cache}: in use by another mining '
                f'run ({holder}). Wait for it to end (it then holds the '
                'proposals) or name another file')


class ProposalsCache:
    """A ``--proposals-cache`` file (see the module).

    Args:
        path (str): the cache file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = _CacheLock(path)
        self._unreadable: Optional[str] = None

    def claim(self) -> 'ProposalsCache':
        """Lock the cache, remove the temporaries killed runs left and
        refuse a file that is not a proposals cache (before any work).

        Returns:
            ProposalsCache: self.

        Raises:
            ValueError: ``path`` is a folder or another file (naming it).
            WorkDirBusyError: another run uses this cache.
        """
        if osp.isdir(self.path):
            raise ValueError(f'--proposals-cache {self.path} is a folder; '
                             'name a file')
        head = b''
        if osp.isfile(self.path):
            with open(self.path, 'rb') as f:
                head = f.read(len(CACHE_MAGIC))
        if osp.exists(self.path) and not (head and
                                          CACHE_MAGIC.startswith(head)):
            raise ValueError(
                f'--proposals-cache {self.path} exists and is not a proposals '
                "cache of this tool (its first bytes are not "
                f"{CACHE_MAGIC.decode().strip()!r}); it is left as it is: "
                'name another file, or delete it if it is an older cache')
        self._lock.acquire()
        for stale in remove_stale_temporaries_of(self.path):
            print_log(f'removed {stale}, a proposals cache temporary left by '
                      'a run that was killed', 'current', logging.WARNING)
        return self

    def read(self, fingerprint: str) -> Optional[List[SeriesMining]]:
        """The cached proposals of the run ``fingerprint``
        (:func:`~.proposals.proposals_fingerprint`), or None (no cache, an
        unreadable one or another run's, said in one line)."""
        if not osp.isfile(self.path):
            return None
        try:
            with open(self.path, 'rb') as f:
                f.seek(len(CACHE_MAGIC))
                saved = torch.load(f, map_location='cpu', weights_only=True)
            ours = saved.get('fingerprint') == fingerprint
            series = [SeriesMining(**dict(
                s, proposals=[SliceProposals(**p) for p in s['proposals']],
                single_type_proposals=[SliceProposals(**p) for p in s[
                    'single_type_proposals']])) for s in _arrays(
                        saved['series'])] if ours else None
        except Exception as err:  # truncated or corrupt: any reader error
            why = f'{type(err).__name__} {str(err).split(". ")[0]}'
            print_log(f'--proposals-cache {self.path}: unreadable (truncated '
                      f'or corrupt: {why}); predicting again and replacing '
                      'it', 'current', logging.WARNING)
            return None
        if series is None:
            print_log(f'--proposals-cache {self.path} holds the proposals of '
                      'another model, config, expert or slice set: '
                      'predicting again and replacing it', 'current',
                      logging.WARNING)
        return series

    def write(self, fingerprint: str, series: List[SeriesMining]) -> None:
        """Write the proposals of the run ``fingerprint`` (atomically)."""
        saved = dict(fingerprint=fingerprint, series=[_tensors(
            {k: v for k, v in asdict(s).items() if k in _KEPT})
            for s in series])
        with atomic_write(self.path, 'wb') as f:
            f.write(CACHE_MAGIC)
            torch.save(saved, f)

    def release(self) -> None:
        """Let other runs use the cache (the process's end does too)."""
        self._lock.release()


def cached_series_proposals(cache: Optional[ProposalsCache],
                            fingerprint: str,
                            collect: Callable[[], List[SeriesMining]]
                            ) -> List[SeriesMining]:
    """The proposals of an earlier run with the same
    :func:`~.proposals.proposals_fingerprint` read from ``cache``, else
    ``collect()``, written there.

    Args:
        cache (ProposalsCache, optional): a claimed cache (None: always
            collect).
        fingerprint (str): the fingerprint of this run.
        collect (Callable): runs :func:`~.proposals.
            collect_series_proposals`.

    Returns:
        list[SeriesMining]: the proposals, not mined yet.
    """
    series = cache.read(fingerprint) if cache else None
    if series is None:
        series = collect()
        if cache:
            cache.write(fingerprint, series)
    return series
