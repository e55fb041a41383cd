# Copyright (c) mmlesion contributors. All rights reserved.
"""A write the file system refused (full, over quota, read-only, no
permission), said in one line: the file, the bytes needed and free, and
what to do (a full disk's ``OSError`` names no file). Only stdlib imports.
"""
import errno
import os
import os.path as osp
import shutil
import sys
from dataclasses import dataclass
from typing import Dict, Optional

#: The ``errno`` values of a write the file system refused, and their names.
WRITE_ERRNOS: Dict[int, str] = {
    errno.ENOSPC: 'ENOSPC',
    errno.EDQUOT: 'EDQUOT',
    errno.EROFS: 'EROFS',
    errno.EACCES: 'EACCES',
}
#: What frees the way for each refusal.
_FIXES: Dict[int, str] = {
    errno.ENOSPC: 'free some space on that file system',
    errno.EDQUOT: 'free some of your quota there (`quota -s` shows it)',
    errno.EROFS: 'remount it read-write or write to another file system',
    errno.EACCES: 'make the folder writable for you (chmod / chown) or '
    'write to another one',
}


def format_bytes(num: Optional[int]) -> str:
    """``num`` bytes in words: ``512 bytes``, ``3.1 MiB``, ``1.20 GiB``."""
    if num is None:
        return 'unknown'
    for unit, scale, digits in (('GiB', 2**30, 2), ('MiB', 2**20, 1),
                                ('KiB', 2**10, 1)):
        if num >= scale:
            return f'{num / scale:.{digits}f} {unit}'
    return f'{num} bytes'


def existing_folder(path: str) -> str:
    """``path`` if it is a folder, else its nearest existing parent."""
    folder = osp.abspath(path)
    while not osp.isdir(folder):
        parent = osp.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def free_bytes(path: str) -> Optional[int]:
    """Bytes free for this user on the file system of ``path`` (or of its
    nearest existing parent), or None where that cannot be read."""
    try:
        return shutil.disk_usage(existing_folder(path)).free
    except OSError:
        return None


@dataclass
class WriteFailure:
    """A write the file system refused.

    Args:
        path (str): the file (its final name) or folder being written.
        errno (int): one of :data:`WRITE_ERRNOS`.
        needed (int, optional): bytes of what was being written; None
            when unknown.
        needed_at_least (bool): ``needed`` is a lower bound (the bytes
            written when the write failed), not the whole size.
        free (int, optional): bytes free on the file system of ``folder``.
        folder (str): the existing folder ``free`` was read from.
        atomic (bool): written by an atomic writer, so that nothing
            written before is lost and no file is half-written.
        needed_for (str): what ``needed`` is made of (an estimate made
            before writing: ``'3 checkpoints of ...'``).
    """
    path: str
    errno: int
    needed: Optional[int] = None
    needed_at_least: bool = False
    free: Optional[int] = None
    folder: str = ''
    atomic: bool = True
    needed_for: str = ''

    def message(self, resume: Optional[str] = None) -> str:
        """One line: the path, why, the bytes needed and free, what to do.

        Args:
            resume (str, optional): how to go on once the cause is fixed
                (e.g. ``run the same command with --resume``); default
                ``run it again``.

        Returns:
            str: the message.
        """
        name = WRITE_ERRNOS.get(self.errno, str(self.errno))
        needed = format_bytes(self.needed)
        if self.needed is None or (self.needed_at_least and not self.needed):
            needed = 'size unknown'  # a lower bound of 0 says nothing
        elif self.needed_at_least:
            needed = f'at least {needed} needed'
        else:
            needed = f'{needed} needed'
        if self.needed_for:
            needed += f' ({self.needed_for})'
        here = self.folder in (osp.abspath(self.path),
                               osp.dirname(osp.abspath(self.path)))
        free = (f'{format_bytes(self.free)} free '
                + ('there' if here else f'in {self.folder}'))
        if self.errno == errno.EDQUOT:
            free += ' (your quota may allow less)'
        kept = (' Nothing written before is lost (each file appears only '
                'when complete).' if self.atomic else '')
        fix = _FIXES.get(self.errno, 'fix the cause')
        return (f'cannot write {self.path}: {os.strerror(self.errno)} '
                f'({name}); {needed}, {free}.{kept} To go on: {fix}, then '
                f'{resume or "run it again"}')


class WriteRefusedError(OSError):
    """An ``OSError`` (same ``errno``) whose message is
    :meth:`WriteFailure.message`.

    Args:
        failure (WriteFailure): the refused write.
    """

    def __init__(self, failure: WriteFailure) -> None:
        super().__init__(failure.errno, os.strerror(failure.errno),
                         failure.path)
        self.failure = failure

    def __str__(self) -> str:
        return self.failure.message()

    def __reduce__(self):
        return self.__class__, (self.failure, )


def path_inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (by name)."""
    path, folder = osp.abspath(path), osp.abspath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def refused_write(err: BaseException,
                  path: str,
                  needed: Optional[int] = None,
                  needed_at_least: bool = False,
                  atomic: bool = True) -> Optional[WriteRefusedError]:
    """``err`` as a :class:`WriteRefusedError` of writing ``path``, or None
    when it is no refused write (``EACCES`` of another file: a read).

    Args:
        err (BaseException): the error raised while writing.
        path (str): the file (final name) or folder being written.
        needed (int, optional): bytes of what was being written.
        needed_at_least (bool): ``needed`` is a lower bound.
        atomic (bool): see :class:`WriteFailure`.

    Returns:
        WriteRefusedError | None: ``err`` itself when it is one already.
    """
    if isinstance(err, WriteRefusedError):
        return err
    if not isinstance(err, OSError) or err.errno not in WRITE_ERRNOS:
        return None
    named = str(err.filename)
    if err.errno == errno.EACCES and err.filename is not None and not (
            path_inside(path, named)
            or path_inside(named, osp.dirname(osp.abspath(path)))):
        return None
    folder = existing_folder(path)
    return WriteRefusedError(WriteFailure(
        path=str(path), errno=err.errno, needed=needed,
        needed_at_least=needed_at_least, free=free_bytes(folder),
        folder=folder, atomic=atomic))


def output_write_refusal(err: BaseException,
                         output_dir: str) -> Optional[WriteRefusedError]:
    """For a tool: ``err`` as a :class:`WriteRefusedError`, or None when it
    is not a refused write of its outputs (``EACCES`` outside
    ``output_dir`` may be an input that cannot be read).

    Args:
        err (BaseException): what ended the tool.
        output_dir (str): the folder the tool writes (``--work-dir``,
            ``--out-dir``).

    Returns:
        WriteRefusedError | None: the refusal.
    """
    filename = getattr(err, 'filename', None)
    if getattr(err, 'errno', None) == errno.EACCES and not isinstance(
            err, WriteRefusedError) and (filename is None or not path_inside(
                str(filename), output_dir)):
        return None
    return refused_write(err, str(filename or output_dir), atomic=False)


def exit_on_refused_write(err: BaseException, output_dir: str,
                          resume: Optional[str] = None) -> None:
    """For a tool: exit (status 1, no traceback) with the one line of
    :func:`output_write_refusal` when ``err`` is a refused write of its
    outputs; return for any other error (the caller re-raises it).

    Args:
        err (BaseException): what ended the tool.
        output_dir (str): the folder the tool writes (``--work-dir``).
        resume (str, optional): how to go on (see
            :meth:`WriteFailure.message`).
    """
    refused = output_write_refusal(err, output_dir)
    if refused is not None:
        sys.exit(f'error: {refused.failure.message(resume)}')
