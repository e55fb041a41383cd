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
    """Checkpoints of ``work_dir``, newest first: the one
    ``last_checkpoint`` names, then ``epoch_N.pth`` / ``iter_N.pth`` by
    decreasing N.

    Args:
        work_dir (str): the training work dir.

    Returns:
        list[str]: paths (the first may not exist, if ``last_checkpoint``
        names a moved file).
    """
    names = os.listdir(work_dir) if osp.isdir(work_dir) else []
    found = sorted(((int(m.group(2)), osp.join(work_dir, m.string))
                    for m in map(_CKPT_RE.match, names) if m), reverse=True)
    last = recorded_last_checkpoint(work_dir)
    return ([last] if last else []) + [
        p for _, p in found
        if not last or osp.abspath(p) != osp.abspath(last)]


def recorded_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``work_dir/last_checkpoint`` names, taken in
    ``work_dir`` (:func:`local_record`: a moved work dir's absolute record
    never names the original folder's file).

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
    """Why ``path`` cannot be resumed from, or None if it can (it must
    load and hold ``state_dict`` and integer ``meta.epoch`` / ``iter``).

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
    """The newest checkpoint of ``work_dir`` that loads and can be resumed
    (mmengine's auto-resume crashes on a truncated ``last_checkpoint``);
    each broken one is skipped with a warning naming the reason.

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
                    ', '.join(broken), logger='current',
                    level=logging.WARNING)
            return path
        print_log(f'--resume: cannot resume from {path}: {reason}',
                  logger='current', level=logging.WARNING)
        broken.append(path)
    print_log(
        f'--resume: NO intact checkpoint in {work_dir} '
        f'({len(candidates)} candidate(s) checked); training starts FROM '
        'SCRATCH.', logger='current', level=logging.WARNING)
    return None
