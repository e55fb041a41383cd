# Copyright (c) mmlesion contributors. All rights reserved.
"""Files that appear only when complete, output sets that appear together.

A job killed at any moment never leaves a half-written file under a final
name: each file is written to a temporary name in its folder, ``fsync``-ed,
``os.replace``-d onto its final name and the folder ``fsync``-ed; the
temporary file is removed on any error. A write the file system refuses
raises :class:`~mmlesion.utils.writing.refusals.WriteRefusedError`.
"""
import contextlib
import errno
import json
import os
import os.path as osp
import re
import shutil
import tempfile
import uuid
from typing import IO, Any, Callable, Iterator, List, Optional, Union

from .refusals import WriteRefusedError, refused_write

#: Prefix of temporary files and staging folders (hidden, and recognisable
#: by :func:`remove_stale_temporaries`).
TMP_PREFIX = '.mmlesion-tmp-'


def fsync_dir(path: str) -> None:
    """``fsync`` a folder so that a rename inside it survives a power cut
    (silently skipped where a folder cannot be opened, as on Windows)."""
    try:
        fd = os.open(path or '.', os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: str, path: str) -> None:
    os.replace(tmp, path)
    fsync_dir(osp.dirname(osp.abspath(path)))


@contextlib.contextmanager
def _staged(path: str, size: Optional[int] = None) -> Iterator[str]:
    """A temporary name beside ``path``, committed as ``path`` when the
    block succeeds and removed when it fails (a refused write names
    ``size``, else the bytes the temporary file held, as needed)."""
    folder, name = osp.split(osp.abspath(path))
    tmp = osp.join(folder, f'{TMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}')
    try:
        os.makedirs(folder, exist_ok=True)
        yield tmp
        _commit(tmp, path)
    except BaseException as err:
        written = None
        with contextlib.suppress(OSError):
            written = osp.getsize(tmp)
        with contextlib.suppress(OSError):
            os.remove(tmp)
        refused = refused_write(
            err, path, size if size is not None else written,
            needed_at_least=size is None)
        if refused is None or refused is err:
            raise
        raise refused from err


@contextlib.contextmanager
def atomic_write(path: str,
                 mode: str = 'w',
                 encoding: Optional[str] = 'utf-8',
                 newline: Optional[str] = None,
                 size: Optional[int] = None) -> Iterator[IO]:
    """Open ``path`` for writing; it appears only when the block succeeds.

    Args:
        path (str): the final file name (its folder is created).
        mode (str): ``'w'`` (text) or ``'wb'`` (bytes).
        encoding (str, optional): text encoding; ignored for ``'wb'``.
        newline (str, optional): as :func:`open`.
        size (int, optional): the bytes to be written, if known: named
            when the file system refuses the write.

    Yields:
        file: the open temporary file.

    Raises:
        WriteRefusedError: the file system is full, over quota, read-only
            or not writable (the temporary file is removed).
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_write: mode must be w or wb, got {mode!r}')
    kwargs = {} if mode == 'wb' else dict(encoding=encoding, newline=newline)
    with _staged(path, size=size) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, 'wb', size=len(data)) as f:
        f.write(data)


def atomic_write_text(path: str, text: str, encoding: str = 'utf-8') -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, 'w', encoding=encoding,
                      size=len(text.encode(encoding))) as f:
        f.write(text)


def atomic_save_with(path: str, save: Callable[[str], object]) -> None:
    """Let ``save(tmp_path)`` write a file, then commit it as ``path``.

    The temporary name ends with the whole file name, so writers that pick
    the format from the extension see it; a writer returning False
    (``cv2.imwrite``) raises ``OSError``.

    Args:
        path (str): the final file name (its folder is created).
        save (Callable[[str], object]): writes the file at the given path.
    """
    with _staged(path) as tmp:
        if save(tmp) is False:
            raise OSError(f'{path}: the writer reported a failure')
        if not osp.isfile(tmp):
            raise OSError(f'{path}: the writer wrote no file')
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())


class OutputDirError(OSError):
    """An output folder that cannot take the outputs (read-only, full)."""


def check_writable_dir(path: str,
                       min_free_bytes: int = 16 << 20,
                       what: str = 'output folder') -> None:
    """Refuse a folder that cannot take the outputs, before the work starts
    (read-only mount, no permission, a probe file refused, too little
    free space).

    Args:
        path (str): the output folder.
        min_free_bytes (int): free space needed. Defaults to 16 MiB.
        what (str): how the folder is named in errors (e.g. ``--out-dir``).

    Raises:
        OutputDirError: not writable (read-only file system or folder),
            less free space than ``min_free_bytes``, or the path is a file.
    """
    existing = osp.abspath(path)
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise OutputDirError(
            f'{what} {path}: {existing} is a file, not a folder')
    st = os.statvfs(existing) if hasattr(os, 'statvfs') else None
    free = None if st is None else st.f_bavail * st.f_frsize
    if st is not None and st.f_flag & getattr(os, 'ST_RDONLY', 0):
        code = errno.EROFS
    elif not os.access(existing, os.W_OK | os.X_OK):
        code = errno.EACCES
    else:
        code = _probe_write(existing)
    if code is None and free is not None and free < min_free_bytes:
        code = errno.ENOSPC
    if code is not None:
        why = _WHY_NOT_WRITABLE.get(code, f'{os.strerror(code)}; choose '
                                    'another folder before the work starts')
        raise OutputDirError(f'{what} {path}: cannot write to {existing}: '
                             + why.format(free=(free or 0) / 2**20,
                                          need=min_free_bytes / 2**20))


def _probe_write(folder: str) -> Optional[int]:
    """The ``errno`` of writing a probe file into ``folder``, or None."""
    probe = osp.join(folder, f'{TMP_PREFIX}probe-{uuid.uuid4().hex[:8]}')
    try:
        with open(probe, 'wb') as f:
            f.write(b'\0' * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        return err.errno
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)
    return None


#: Why a folder takes no outputs (:func:`check_writable_dir`), by errno.
_WHY_NOT_WRITABLE = {
    errno.EROFS: f'{os.strerror(errno.EROFS)} (mounted read-only); remount '
    'it read-write or choose a folder on another file system before the '
    'work starts',
    errno.EACCES: 'read-only for this user (not writable: its '
    'permissions); make it writable (chmod u+w) or choose another folder '
    'before the work starts',
    errno.ENOSPC: 'only {free:.1f} MiB free on its file system, {need:.1f} '
    'MiB needed; free some space or choose another folder',
}


@contextlib.contextmanager
def _named(path: str) -> Iterator[None]:
    """Give an ``OSError`` of the block that names no file ``path``
    (``fsync`` and ``write`` name none)."""
    try:
        yield
    except OSError as err:
        if err.filename is None:
            err.filename = path
        raise


class AtomicOutputSet:
    """Write a run's output files so that they appear together or not at all.

    Files are written into a hidden staging folder beside ``out_dir``
    (same file system); :meth:`commit` fsyncs and renames each onto its
    final name in ``out_dir``, fsyncs the folders and removes the staging
    folder. Files of ``out_dir`` the run does not write are never touched,
    except the ``stale`` ones :meth:`commit` is given.

    A run killed before :meth:`commit` leaves ``out_dir`` as it was (its
    staging folder is cleaned by the next run). Between the first and the
    last rename a kill can still leave a mix, so a set names a completion
    marker, the file ``last`` (a manifest such as ``findings.json``):
    :meth:`commit` removes the earlier set's marker first, then the
    earlier set's ``stale`` files, renames the new files in and the new
    marker last. A folder holding the marker therefore holds one whole
    set; a kill in between leaves no marker (an incomplete set, which a
    reader must not take as finished), never the old marker beside new
    files.

    A write refused inside the ``with`` block leaves ``out_dir`` as it was
    and raises :class:`~mmlesion.utils.writing.refusals.WriteRefusedError`
    naming the output's final path.

    Args:
        out_dir (str): the final output folder.
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = osp.abspath(out_dir)
        parent = osp.dirname(self.out_dir)
        prefix = f'set-{osp.basename(self.out_dir)}-'
        try:
            os.makedirs(parent, exist_ok=True)
            # Staging folders of earlier killed runs into the same out_dir.
            remove_stale_temporaries(parent, prefix)
            self.staging = tempfile.mkdtemp(
                prefix=TMP_PREFIX + prefix, dir=parent)
        except OSError as err:
            refused = refused_write(err, self.out_dir)
            if refused is None:
                raise
            raise refused from err
        self.committed = False

    def path(self, relpath: str) -> str:
        """Staging path where the output ``relpath`` is written.

        Args:
            relpath (str): path relative to ``out_dir`` (sub-folders are
                created).

        Returns:
            str: the path to write to now.
        """
        if osp.isabs(relpath) or '..' in relpath.replace('\\', '/').split(
                '/'):
            raise ValueError(f'output {relpath!r} must stay inside '
                             f'{self.out_dir}')
        dst = osp.join(self.staging, relpath)
        os.makedirs(osp.dirname(dst), exist_ok=True)
        return dst

    def open(self,
             relpath: str,
             mode: str = 'w',
             encoding: Optional[str] = 'utf-8',
             newline: Optional[str] = None) -> IO:
        """Open the staged output ``relpath`` (as :func:`open`)."""
        kwargs = {} if 'b' in mode else dict(
            encoding=encoding, newline=newline)
        return open(self.path(relpath), mode, **kwargs)

    def staged_files(self) -> List[str]:
        """Paths (relative to ``out_dir``) of the files staged so far."""
        return sorted(
            osp.relpath(osp.join(root, name), self.staging)
            for root, _, names in os.walk(self.staging) for name in names)

    def commit(self, last: Optional[str] = None,
               stale: Union[List[str], None] = None) -> List[str]:
        """Move the staged files into ``out_dir`` together.

        Args:
            last (str, optional): the set's completion marker (a
                manifest such as ``findings.json``): the earlier one is
                removed first, the new one renamed last, so that its
                presence means the whole set is in place.
            stale (list[str], optional): files of ``out_dir`` (relative
                paths) from an earlier run to remove (before the marker
                is renamed in), unless the new set writes them again.

        Returns:
            list[str]: final paths of the committed files.
        """
        files = self.staged_files()
        for rel in files:
            src = osp.join(self.staging, rel)
            with _named(src), open(src, 'rb+') as f:
                os.fsync(f.fileno())
        marker = last if last in files else None
        order = [r for r in files if r != marker]
        os.makedirs(self.out_dir, exist_ok=True)
        if marker is not None:  # the earlier set is incomplete from now
            with contextlib.suppress(FileNotFoundError), _named(
                    osp.join(self.out_dir, marker)):
                os.remove(osp.join(self.out_dir, marker))
            fsync_dir(osp.dirname(osp.join(self.out_dir, marker)))
        for rel in stale or []:
            if rel not in files:
                with contextlib.suppress(OSError):
                    os.remove(osp.join(self.out_dir, rel))
        for folder in sorted({self._move_in(rel) for rel in order}):
            fsync_dir(folder)
        if marker is not None:  # the set is whole from here
            fsync_dir(self._move_in(marker))
            order.append(marker)
        self.discard()
        self.committed = True
        return [osp.join(self.out_dir, r) for r in order]

    def _move_in(self, rel: str) -> str:
        """Rename the staged ``rel`` onto its final name; its folder."""
        dst = osp.join(self.out_dir, rel)
        os.makedirs(osp.dirname(dst), exist_ok=True)
        with _named(dst):
            os.replace(osp.join(self.staging, rel), dst)
        return osp.dirname(dst)

    def discard(self) -> None:
        """Remove the staging folder (and anything staged in it)."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> 'AtomicOutputSet':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        refused = (self._refused(exc) if isinstance(exc, OSError) else None)
        if exc_type is not None or not self.committed:
            self.discard()
        if refused is not None and refused is not exc:
            raise refused from exc

    def _final_path(self, path: Optional[str]) -> str:
        """The final name of a staged ``path`` (``out_dir`` for None or
        the staging folder itself; other paths as they are)."""
        if not path:
            return self.out_dir
        path = osp.abspath(str(path))
        if path == self.staging:
            return self.out_dir
        if path.startswith(self.staging + os.sep):
            return osp.join(self.out_dir, osp.relpath(path, self.staging))
        return path

    def _staged_bytes(self) -> int:
        total = 0
        for rel in self.staged_files():
            with contextlib.suppress(OSError):
                total += osp.getsize(osp.join(self.staging, rel))
        return total

    def _refused(self, err: OSError) -> Optional[WriteRefusedError]:
        """``err`` as a refused write of this set (see the class), or
        None."""
        known = isinstance(err, WriteRefusedError)
        refused = err if known else refused_write(
            err, str(err.filename or self.staging))
        if refused is None:
            return None
        failure = refused.failure
        final = self._final_path(failure.path)
        if known and final == failure.path and failure.needed is not None \
                and not failure.needed_at_least:
            return err  # one file's exact size, named by its final path
        return refused_write(
            OSError(failure.errno, os.strerror(failure.errno)), final,
            max(self._staged_bytes(), failure.needed or 0),
            needed_at_least=True)


def remove_stale_temporaries(folder: str, prefix: str = '') -> List[str]:
    """Remove temporaries left in ``folder`` by killed writers.

    Only names starting with :data:`TMP_PREFIX` + ``prefix`` are touched;
    call it only where no other writer works at the same time.

    Args:
        folder (str): the folder to clean.
        prefix (str): narrows the names (e.g. one output set's staging
            folders). Defaults to all temporaries.

    Returns:
        list[str]: the removed paths.
    """
    removed = []
    if not osp.isdir(folder):
        return removed
    for name in os.listdir(folder):
        if not name.startswith(TMP_PREFIX + prefix):
            continue
        path = osp.join(folder, name)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)
        removed.append(path)
    return removed


def remove_stale_temporaries_of(*paths: str) -> List[str]:
    """Remove the temporary files killed writers left for these outputs
    (only those named after each final file); call it only where no other
    run writes these outputs.

    Args:
        *paths (str): final file names (missing folders are skipped).

    Returns:
        list[str]: the removed paths.
    """
    removed = []
    for path in paths:
        folder, name = osp.split(osp.abspath(path))
        pattern = re.compile(re.escape(TMP_PREFIX) + '[0-9a-f]{12}-'
                             + re.escape(name) + '$')
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for stale in filter(pattern.match, names):
            with contextlib.suppress(OSError):
                os.remove(osp.join(folder, stale))
                removed.append(osp.join(folder, stale))
    return removed


def atomic_write_json(path: str, obj: Any, **kwargs) -> None:
    """:func:`atomic_write_text` of ``json.dumps(obj, **kwargs)`` plus a
    newline; an object that cannot be serialised leaves no file.

    Args:
        path (str): output JSON file; its folder is created if missing.
        obj: a JSON-serialisable object.
        **kwargs: passed to :func:`json.dumps` (e.g. ``indent=2``).
    """
    text = json.dumps(obj, **kwargs) + '\n'
    atomic_write_text(path, text)
