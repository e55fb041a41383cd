# Copyright (c) mmlesion contributors. All rights reserved.
"""mmengine file backend whose files appear only when complete (mmengine's
:class:`LocalBackend` leaves a truncated checkpoint when killed mid-write).
"""
import os.path as osp
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from .checksum import remove_checksum, write_checksum
from ..writing.atomic import atomic_write_bytes, atomic_write_text


@register_backend('atomic_local', force=True)
class AtomicLocalBackend(LocalBackend):
    """:class:`mmengine.fileio.LocalBackend` with atomic writes and
    checksummed checkpoints: a ``.pth`` file's old sidecar is removed
    before its bytes are written, the new one written after.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath``; it appears only when complete."""
        filepath = str(filepath)
        is_ckpt = filepath.endswith('.pth')
        if is_ckpt:
            remove_checksum(filepath)
        atomic_write_bytes(filepath, obj)
        if is_ckpt:
            write_checksum(filepath, obj)

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
