# Copyright (c) mmlesion contributors. All rights reserved.
"""SHA-256 sidecars of checkpoints (``epoch_3.pth.sha256``, ``sha256sum
-c`` format): written atomically after the checkpoint is in place (and
removed before it is rewritten, so a kill leaves no sidecar, never a wrong
one), checked on every load; without one, the zip CRCs are checked and a
warning says the file loads unverified.
"""
import contextlib
import hashlib
import logging
import os
import os.path as osp
import zipfile
from typing import Optional, Set, Tuple

from ..writing.atomic import atomic_write_text

SIDECAR_SUFFIX = '.sha256'


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (empty, truncated, not one)."""


class ChecksumMismatchError(CorruptCheckpointError):
    """A checkpoint's bytes differ from its recorded SHA-256, or from the
    CRC-32 its zip archive records for a member."""


def sidecar_path(path: str) -> str:
    """The sidecar of checkpoint ``path`` (``path + '.sha256'``)."""
    return str(path) + SIDECAR_SUFFIX


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks of ``chunk`` bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def write_checksum(path: str, data: Optional[bytes] = None) -> str:
    """Write the sidecar of ``path`` atomically.

    Args:
        path (str): the checkpoint (already in place).
        data (bytes, optional): its bytes, if at hand (saves reading it).

    Returns:
        str: the hex digest.
    """
    hexdigest = (hashlib.sha256(data).hexdigest()
                 if data is not None else sha256_file(path))
    atomic_write_text(
        sidecar_path(path), f'{hexdigest}  {osp.basename(path)}\n')
    return hexdigest


def remove_checksum(path: str) -> None:
    """Remove the sidecar of ``path`` if there is one."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(sidecar_path(path))


def read_checksum(path: str) -> Optional[str]:
    """The recorded hex digest of ``path``, or None without a sidecar.

    Raises:
        ChecksumMismatchError: the sidecar is not a SHA-256 line.
    """
    side = sidecar_path(path)
    if not osp.isfile(side):
        return None
    with open(side, encoding='utf-8', errors='replace') as f:
        text = f.read().strip()
    hexdigest = text.split()[0].lower() if text else ''
    if len(hexdigest) != 64 or any(c not in '0123456789abcdef'
                                   for c in hexdigest):
        raise ChecksumMismatchError(
            f'{side}: not a SHA-256 sidecar (expected "<64 hex digits>  '
            f'{osp.basename(path)}"); remove it to load {path} unchecked')
    return hexdigest


def verify_zip_crcs(path: str) -> None:
    """Check the CRC-32 a zip checkpoint (torch's format) records for each
    member; a file that is no zip archive is left to the loader.

    Raises:
        ChecksumMismatchError: naming the file and the first bad member.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            member = archive.testzip()
        if member is not None:
            raise ChecksumMismatchError(
                f'{path}: corrupt checkpoint, member {member} of its zip '
                'archive fails its CRC check: its bytes were changed after '
                'saving (disk error, partial copy); use an older checkpoint '
                'or copy it again')


def verify_checkpoint_checksum(path: str) -> Optional[str]:
    """Check ``path`` against its sidecar, else its zip CRCs.

    Args:
        path (str): a checkpoint file.

    Returns:
        str | None: the verified digest, or None when there is no sidecar.

    Raises:
        ChecksumMismatchError: the file's SHA-256 differs from the sidecar,
            or (no sidecar) a zip member's bytes from its CRC.
    """
    expected = read_checksum(path)
    if expected is None:
        verify_zip_crcs(path)
        return None
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatchError(
            f'{path}: corrupt checkpoint, its SHA-256 {actual[:16]}... '
            f'differs from the one recorded when it was written '
            f'({sidecar_path(path)}: {expected[:16]}...). The file was '
            'changed after saving (disk error, partial copy); use an older '
            'checkpoint or copy it again')
    return actual


#: Checkpoints warned about by :func:`warn_unverified_checkpoint` (real
#: path, size, modification time): one warning per file version.
_WARNED_UNVERIFIED: Set[Tuple[str, int, int]] = set()


def unverified_message(path: str) -> str:
    """The warning for checkpoint ``path`` that has no sidecar."""
    name = osp.basename(path)
    return (f'{path}: no checksum file {osp.basename(sidecar_path(path))} '
            'beside it: the checkpoint loads UNVERIFIED (only the CRCs of '
            'its zip archive are checked: another file under its name '
            'would go unnoticed). To verify it, copy the '
            f'{SIDECAR_SUFFIX} file written with it along; or, if you trust '
            f'this copy, record it: `sha256sum {name} > {name}'
            f'{SIDECAR_SUFFIX}` in its folder')


def warn_unverified_checkpoint(path: str) -> bool:
    """Log (warning) that checkpoint ``path`` loads without a checksum,
    once per file version and process.

    Args:
        path (str): a checkpoint without a sidecar.

    Returns:
        bool: whether the warning was logged now.
    """
    from mmengine.logging import print_log
    try:
        stat = os.stat(path)
    except OSError:
        return False
    key = (osp.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key in _WARNED_UNVERIFIED:
        return False
    _WARNED_UNVERIFIED.add(key)
    print_log(unverified_message(path), logger='current',
              level=logging.WARNING)
    return True
