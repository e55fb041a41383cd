# Copyright (c) mmlesion contributors. All rights reserved.
"""A checkpoint loaded without its checksum sidecar is named as unverified
(issue 50, item 15), once per file and process."""
import subprocess

import torch
from mmengine.runner.checkpoint import _load_checkpoint

from mmlesion.utils import load_local_checkpoint, write_checksum
from mmlesion.utils.checkpoints.checksum import sidecar_path


def _save(path) -> str:
    torch.save(dict(state_dict=dict(w=torch.ones(2)), meta=dict()),
               str(path))
    return str(path)


def _unverified(messages: list) -> list:
    return [m for m in messages if 'UNVERIFIED' in m]


def test_a_copy_without_sidecar_is_named_unverified(tmp_path, log_messages):
    """Loaded through mmengine's loader (``load_from``, ``--resume``,
    ``tools/test.py``, ``infer_volume`` all go through it): one warning
    naming the file, the missing sidecar and how to verify it; a second
    load of the same file says nothing more, nor do checkpoints with a
    sidecar."""
    import mmlesion  # noqa: F401  (registers the checkpoint loader)
    ckpt = _save(tmp_path / 'epoch_3.pth')
    _load_checkpoint(ckpt, map_location='cpu')
    (line, ) = _unverified(log_messages)
    assert line.startswith(f'{ckpt}: no checksum file epoch_3.pth.sha256 '
                           'beside it: the checkpoint loads UNVERIFIED')
    assert 'copy the .sha256 file written with it along' in line
    assert '`sha256sum epoch_3.pth > epoch_3.pth.sha256`' in line
    assert '\n' not in line
    load_local_checkpoint(ckpt, map_location='cpu')
    assert len(_unverified(log_messages)) == 1

    # With its sidecar (what the checkpoint hook writes) no warning; the
    # sidecar that ``sha256sum`` writes, as the warning advises, counts.
    verified = _save(tmp_path / 'epoch_1.pth')
    write_checksum(verified)
    load_local_checkpoint(verified, map_location='cpu')
    copy = _save(tmp_path / 'copy.pth')
    digest = subprocess.run(['sha256sum', 'copy.pth'], cwd=tmp_path,
                            stdout=subprocess.PIPE, text=True,
                            check=True).stdout
    with open(sidecar_path(copy), 'w') as f:
        f.write(digest)
    load_local_checkpoint(copy, map_location='cpu')
    assert len(_unverified(log_messages)) == 1
