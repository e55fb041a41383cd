# Copyright (c) mmlesion contributors. All rights reserved.
"""The ``atomic_local`` backend streams a checkpoint into its file: the
bytes ``torch.save`` gives, hashed as written, never a whole copy in
memory handed to ``put``."""
import hashlib
import io

import mmengine.runner.checkpoint as mmengine_checkpoint
import mmengine.runner.runner as mmengine_runner
import pytest
import torch

from mmlesion.utils.checkpoints.backend import (AtomicLocalBackend,
                                                streamed_saves)
from mmlesion.utils.checkpoints.checksum import (sidecar_path,
                                                 verify_checkpoint_checksum)


def _checkpoint() -> dict:
    torch.manual_seed(0)
    return dict(meta=dict(epoch=1), state_dict=dict(
        weight=torch.randn(64, 32), bias=torch.zeros(64)))


def _bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_save_writes_the_bytes_of_torch_save_with_their_sha256(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    AtomicLocalBackend().save(_checkpoint(), path)
    data = path.read_bytes()
    assert data == _bytes(_checkpoint())
    assert verify_checkpoint_checksum(str(path)) == \
        hashlib.sha256(data).hexdigest()


def test_runner_saves_stream_inside_the_block_only(tmp_path, monkeypatch):
    """In the block mmengine's save goes to ``save`` (``put``, which takes
    the whole archive's bytes, is not called); after it, mmengine's own
    function is back; other backends are mmengine's as before."""
    def put(self, obj, filepath):
        raise AssertionError('the archive was built in memory')

    monkeypatch.setattr(AtomicLocalBackend, 'put', put)
    atomic = dict(backend='atomic_local')
    with streamed_saves():
        with streamed_saves():  # nested: the hook's best-file save
            mmengine_runner.save_checkpoint(
                _checkpoint(), str(tmp_path / 'epoch_1.pth'),
                backend_args=atomic)
        mmengine_runner.save_checkpoint(
            _checkpoint(), str(tmp_path / 'plain.pth'))
    assert mmengine_runner.save_checkpoint is \
        mmengine_checkpoint.save_checkpoint
    assert verify_checkpoint_checksum(str(tmp_path / 'epoch_1.pth'))
    assert (tmp_path / 'plain.pth').read_bytes() == _bytes(_checkpoint())
    assert not (tmp_path / sidecar_path('plain.pth')).exists()
    with pytest.raises(AssertionError, match='built in memory'):
        mmengine_runner.save_checkpoint(
            _checkpoint(), str(tmp_path / 'epoch_2.pth'),
            backend_args=atomic)
