# Copyright (c) mmlesion contributors. All rights reserved.
"""mmengine file backend whose files appear only when complete (mmengine's
:class:`LocalBackend` leaves a truncated checkpoint when killed mid-write).
"""
import contextlib
import dataclasses
import os.path as osp
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from mmengine.fileio import LocalBackend, get_file_backend, register_backend

from .checksum import HashingWriter, remove_checksum, write_checksum
from ..writing.atomic import atomic_write, atomic_write_text
from ..writing.refusals import WriteRefusedError


@register_backend('atomic_local', force=True)
class AtomicLocalBackend(LocalBackend):
    """:class:`mmengine.fileio.LocalBackend` with atomic writes and
    checksummed checkpoints: a ``.pth`` file's old sidecar is removed
    before its bytes are written, the new one written after (its SHA-256
    taken as the bytes are written).
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath``; it appears only when complete."""
        self._write(str(filepath), lambda f: f.write(obj), len(obj))

    def save(self, obj: Any, filepath: Union[str, Path]) -> None:
        """``torch.save`` ``obj`` to ``filepath`` as :meth:`put` writes
        bytes, streamed into the file: no copy of the archive in memory.

        Raises:
            WriteRefusedError: naming the archive's whole size (counted
                again when the file system refuses it part way).
        """
        import torch
        try:
            self._write(str(filepath), lambda f: torch.save(obj, f))
        except WriteRefusedError as err:
            if not err.failure.needed_at_least:
                raise
            size = _Size()
            torch.save(obj, size)
            raise WriteRefusedError(dataclasses.replace(
                err.failure, needed=size.bytes,
                needed_at_least=False)) from err.__cause__

    @staticmethod
    def _write(filepath: str, fill: Callable[[Any], object],
               size: Optional[int] = None) -> None:
        is_ckpt = filepath.endswith('.pth')
        if is_ckpt:
            remove_checksum(filepath)
        with atomic_write(filepath, 'wb', size=size) as f:
            writer = HashingWriter(f) if is_ckpt else f
            fill(writer)
        if is_ckpt:
            write_checksum(filepath, writer.sha256.hexdigest())

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath``; it appears only when complete."""
        atomic_write_text(str(filepath), obj, encoding=encoding)

    def remove(self, filepath: Union[str, Path]) -> None:
        """Remove a file and its checksum sidecar."""
        super().remove(filepath)
        if osp.splitext(str(filepath))[1] == '.pth':
            remove_checksum(str(filepath))


class _Size:
    """A file that only counts the bytes written to it."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data) -> int:
        """Count ``data``; the bytes written."""
        size = memoryview(data).nbytes
        self.bytes += size
        return size

    def flush(self) -> None:
        """Nothing to flush."""


def _save_checkpoint(checkpoint: dict,
                     filename: str,
                     file_client_args: Optional[dict] = None,
                     backend_args: Optional[dict] = None) -> None:
    """mmengine's ``save_checkpoint``, but an ``atomic_local`` target is
    written by :meth:`AtomicLocalBackend.save`."""
    from mmengine.runner.checkpoint import save_checkpoint
    backend = None
    if file_client_args is None and not filename.startswith('pavi://'):
        backend = get_file_backend(filename, backend_args=backend_args)
    if isinstance(backend, AtomicLocalBackend):
        backend.save(checkpoint, filename)
    else:
        save_checkpoint(checkpoint, filename, file_client_args,
                        backend_args)


@contextlib.contextmanager
def streamed_saves() -> Iterator[None]:
    """Within the block, ``Runner.save_checkpoint`` streams an
    ``atomic_local`` checkpoint into its file, the same bytes: mmengine
    0.10.7 builds the whole archive in memory, then hands it to ``put``
    (a copy of the archive in memory and a quarter more CPU per save)."""
    import mmengine.runner.runner as runner
    original = runner.save_checkpoint
    if original is _save_checkpoint:  # nested
        yield
        return
    runner.save_checkpoint = _save_checkpoint
    try:
        yield
    finally:
        runner.save_checkpoint = original
