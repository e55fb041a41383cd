# Copyright (c) mmlesion contributors. All rights reserved.
"""The mining tool's --proposals-cache: only its own cache is ever
replaced; a truncated cache, another run's cache and a killed run's
temporary are replaced or removed with one line; one run at a time."""
import importlib.util
import os

import numpy as np
import pytest
import torch

from mmlesion.methods.lens.mining import SeriesMining, SliceProposals
from mmlesion.methods.lens.mining.proposals_cache import (
    CACHE_MAGIC, ProposalsCache, cached_series_proposals)
from mmlesion.testing import repo_root
from mmlesion.utils.writing.atomic import TMP_PREFIX
from mmlesion.utils.writing.work_dir_lock import WorkDirBusyError


def _series():
    p = SliceProposals(3, np.array([[1., 2., 5., 6.]], np.float32),
                       np.array([0.9], np.float32),
                       np.ones((1, 2), np.float32), np.zeros((1, 4)))
    return [SeriesMining('s', 'p', {3: np.zeros((0, 4), np.float32)},
                         proposals=[p], single_type_proposals=[
                             SliceProposals(3, np.zeros((0, 4)),
                                            np.zeros(0))],
                         annotation_embeddings=np.zeros((0, 2)),
                         annotation_sites=None)]


def _run(path, fingerprint='f1'):
    """Collect through the cache; how many times collect ran."""
    calls = []
    cache = ProposalsCache(str(path)).claim()
    try:
        series = cached_series_proposals(
            cache, fingerprint, lambda: calls.append(1) or _series())
    finally:
        cache.release()
    assert series[0].proposals[0].boxes.tolist() == [[1., 2., 5., 6.]]
    return len(calls)


def _foreign(tmp_path):
    """Files that are no cache of the tool: a user's torch file, a LENS
    checkpoint (mmengine layout), a text file, an empty file."""
    torch.save(dict(weight=torch.arange(4.)), tmp_path / 'own.pth')
    torch.save(dict(meta=dict(epoch=12), state_dict=dict(
        w=torch.ones(2))), tmp_path / 'epoch_12.pth')
    (tmp_path / 'notes.txt').write_text('mmlesion.lens_proposals_cache/2')
    (tmp_path / 'empty.pt').write_bytes(b'')
    return [tmp_path / n for n in ('own.pth', 'epoch_12.pth', 'notes.txt',
                                   'empty.pt')]


def test_foreign_file_is_refused_and_kept(tmp_path):
    for path in _foreign(tmp_path):
        before = path.read_bytes()
        with pytest.raises(ValueError, match=f'{path} exists and is not a '
                           'proposals cache'):
            _run(path)
        assert path.read_bytes() == before
    assert not list(tmp_path.glob('.*.lock'))  # nothing created beside


def test_cache_round_trip_and_other_run(tmp_path, log_messages):
    path = tmp_path / 'c.pt'
    assert _run(path) == 1
    assert path.read_bytes().startswith(CACHE_MAGIC)
    assert _run(path) == 0 and not log_messages
    assert _run(path, 'f2') == 1  # another model: predicted and replaced
    assert len(log_messages) == 1 and 'another model' in log_messages[0]
    assert _run(path, 'f2') == 0


def test_truncated_cache_and_left_temporary_replaced(tmp_path,
                                                     log_messages):
    path = tmp_path / 'c.pt'
    _run(path)
    data = path.read_bytes()
    stale = tmp_path / f'{TMP_PREFIX}0123456789ab-c.pt'
    stale.write_bytes(data[:100])  # a run killed while writing
    for cut in (len(data) // 2, len(CACHE_MAGIC), 5):
        path.write_bytes(data[:cut])
        log_messages.clear()
        assert _run(path) == 1
        assert path.read_bytes() == data
        if cut == len(data) // 2:  # the temporary: removed, one line
            assert not stale.exists()
            assert log_messages.pop(0).startswith(f'removed {stale}, ')
        assert len(log_messages) == 1
        assert log_messages[0].startswith(f'--proposals-cache {path}: '
                                          'unreadable (truncated or corrupt')


def test_one_run_per_cache(tmp_path):
    path = str(tmp_path / 'c.pt')
    held = ProposalsCache(path).claim()  # flock: another open is another run
    with pytest.raises(WorkDirBusyError,
                       match=f'{path}: in use by another mining run '
                       rf'\(PID {os.getpid()} '):
        ProposalsCache(path).claim()
    held.release()
    assert _run(path) == 1


def test_tool_refuses_a_checkpoint_as_cache(tmp_path, capsys):
    """The slip between the two .pth arguments: the checkpoint named as the
    cache is refused before the model is loaded, its bytes unchanged."""
    ckpt = _foreign(tmp_path)[1]
    before = ckpt.read_bytes()
    spec = importlib.util.spec_from_file_location(
        'lens_mine', repo_root() / 'tools' / 'lens_mine_annotations.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = repo_root() / 'configs' / 'lens' / 'demo' / (
        'lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_'
        'deeplesion-demo-2sets.py')
    assert tool.main([str(cfg), str(ckpt), '--out', str(
        tmp_path / 'm.json'), '--proposals-cache', str(ckpt),
        '--dist-thr', '0.15']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and f'{ckpt} exists and is not' in err
    assert ckpt.read_bytes() == before
    assert not (tmp_path / 'm.json').exists()
