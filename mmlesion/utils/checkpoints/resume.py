# Copyright (c) mmlesion contributors. All rights reserved.
"""Find the checkpoint ``--resume`` continues from, skipping broken ones."""
import logging
import os
import os.path as osp
import re
from typing import List, Optional

from mmengine.logging import print_log

from ..writing.refusals import path_inside

from .loader import (UntrustedCheckpointError,
                     load_local_checkpoint)

_CKPT_RE = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def resume_candidates(work_dir: str) -> List[str]:
    """Checkpoints of ``work_dir``, newest first.

    The file named in ``work_dir/last_checkpoint`` (what mmengine's
    ``CheckpointHook`` writes after each save) comes first, then every
    ``epoch_N.pth`` / ``iter_N.pth`` by decreasing N.

    Args:
        work_dir (str): the training work dir.

    Returns:
        list[str]: paths (the first may not exist, if ``last_checkpoint``
        names a moved file).
    """
    found = []
    if osp.isdir(work_dir):
        for name in os.listdir(work_dir):
            match = _CKPT_RE.match(name)
            if match:
                found.append((int(match.group(2)), osp.join(work_dir, name)))
    paths = [p for _, p in sorted(found, reverse=True)]
    last = recorded_last_checkpoint(work_dir)
    if last:
        paths = [last] + [
            p for p in paths
            if osp.abspath(p) != osp.abspath(last)
        ]
    return paths


def recorded_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``work_dir/last_checkpoint`` names, taken in
    ``work_dir`` (:func:`local_record`).

    mmengine writes the checkpoint's absolute path there, so the copy of a
    work dir (moved, or copied elsewhere and resumed) would name the
    original folder's file: the rule is that a record names a file of its
    own folder only. A recorded path inside ``work_dir`` is kept; one
    outside it becomes the file of the same name in ``work_dir`` where
    there is one, else it is ignored (with a warning). A run never reports,
    resumes from or changes a file outside its work dir this way.

    Args:
        work_dir (str): the training work dir.

    Returns:
        str | None: the checkpoint, or None (no record, or none here).
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8', errors='replace') as f:
        return local_record(f.read().strip(), work_dir, pointer)


def local_record(recorded: Optional[str], folder: str,
                 where: str) -> Optional[str]:
    """A file a run recorded (``last_checkpoint``, the best checkpoint),
    resolved in the run's folder: a moved work dir's record names the file
    of the same name here; one whose file is not here is ignored with a
    warning.

    Args:
        recorded (str, optional): the recorded path (absolute, as mmengine
            writes it); None or empty: no record.
        folder (str): the folder of the run (its work dir).
        where (str): where the record was found, named in the warning.

    Returns:
        str | None: the file in ``folder``, or None.
    """
    if not recorded:
        return None
    if path_inside(recorded, folder):
        return recorded
    local = osp.join(folder, osp.basename(recorded))
    if osp.isfile(local):
        return local
    print_log(
        f'{where} records {recorded}, outside this work dir {folder}, and '
        f'{folder} has no {osp.basename(recorded)}: record ignored (a run '
        'changes only files of its own work dir)',
        logger='current', level=logging.WARNING)
    return None


def check_resumable(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None if it can.

    The checkpoint is loaded on the CPU (:func:`load_local_checkpoint`)
    and must hold ``state_dict`` and a ``meta`` dict with integer ``epoch``
    and ``iter`` (what mmengine's ``Runner.resume`` reads).

    Args:
        path (str): the checkpoint.

    Returns:
        str | None: the reason, e.g. ``"'meta' has no 'epoch'"``.

    Raises:
        UntrustedCheckpointError: an intact checkpoint that needs
            ``--trust-checkpoint`` (never skipped silently).
    """
    if not osp.isfile(path):
        return 'file not found'
    try:
        ckpt = load_local_checkpoint(path, map_location='cpu')
    except UntrustedCheckpointError:
        raise
    except Exception as err:  # any unreadable file
        return f'{type(err).__name__}: {err}'
    meta = ckpt.get('meta')
    if 'state_dict' not in ckpt or not isinstance(meta, dict):
        return ("not a training checkpoint (no 'state_dict' and 'meta' "
                'with epoch / iter)')
    for key in ('epoch', 'iter'):
        if key not in meta:
            return f"not a training checkpoint ('meta' has no {key!r})"
        if isinstance(meta[key], bool) or not isinstance(meta[key], int):
            return (f"field 'meta.{key}' is {meta[key]!r} "
                    f'({type(meta[key]).__name__}), not an integer')
    return None


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest checkpoint of ``work_dir`` that loads and can be resumed.

    mmengine's auto-resume takes ``last_checkpoint`` blindly and crashes on
    a truncated one although an older checkpoint is intact. Here each
    candidate of :func:`resume_candidates` must pass
    :func:`check_resumable`; a broken one is skipped with a warning naming
    the reason, and so is the fall-back to an older one.

    Args:
        work_dir (str): the training work dir.

    Returns:
        str | None: the checkpoint to resume from, or None (with a warning)
        when the work dir has no intact checkpoint.
    """
    candidates = resume_candidates(work_dir)
    broken = []
    for path in candidates:
        reason = check_resumable(path)
        if reason is None:
            if broken:
                print_log(
                    f'--resume: falling back to {path}, the newest intact '
                    f'checkpoint in {work_dir}; skipped (see above): ' +
                    ', '.join(p for p, _ in broken),
                    logger='current',
                    level=logging.WARNING)
            return path
        print_log(
            f'--resume: cannot resume from {path}: {reason}',
            logger='current',
            level=logging.WARNING)
        broken.append((path, reason))
    print_log(
        f'--resume: NO intact checkpoint in {work_dir} '
        f'({len(candidates)} candidate(s) checked); training starts FROM '
        'SCRATCH.',
        logger='current',
        level=logging.WARNING)
    return None
