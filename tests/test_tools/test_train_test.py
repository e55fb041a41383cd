# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/train.py, tools/test.py and tools/dist_train.sh on the demo config.

Each test runs the real scripts in subprocesses on a tiny generated demo
set (see ``tiny_demo_root`` in ``tests/conftest.py``).
"""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmlesion.testing import repo_root

# `python tools/...` runs fork a process that imported mmdet once
# (conftest, tools_forked).
pytestmark = pytest.mark.usefixtures('tools_forked')

CONFIG = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def _data_options(root: Path, num_train: int = 4) -> list:
    data_root = str(root) + os.sep
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'train_dataloader.dataset.indices={num_train}',
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1',
    ]


def _env() -> dict:
    env = dict(os.environ)
    env['PYTHONPATH'] = str(repo_root()) + os.pathsep + env.get(
        'PYTHONPATH', '')
    env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + env['PATH']
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def _run(args: list, cwd: Path, timeout: int = 600) -> str:
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def _load(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)


def test_train_interrupted_then_resumed(tiny_demo_root, tmp_path):
    """An epoch-1 checkpoint resumes exactly and keeps the schedule.

    Reference: 3 epochs in one go (a validation after each). Interrupted
    run: the epoch-1 checkpoint of the reference, copied into a fresh work
    dir (as if the job had been killed after epoch 1), resumed with
    ``--resume``. Both must end at the same epoch, iteration and learning
    rate (the MultiStepLR milestone at epoch 2 must fire in the resumed run
    too) and with bitwise the same weights (RandomStateHook; the
    validations of the reference draw random numbers the resumed run never
    sees). Without the hook the weights differ (max |diff| 0.035 measured
    on this set, see the README "Faults and recovery").
    """
    root = repo_root()
    train = [sys.executable, 'tools/train.py', CONFIG]
    opts = _data_options(tiny_demo_root) + [
        'train_cfg.max_epochs=3', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=3',
        'default_hooks.checkpoint.save_best=None', 'randomness.seed=0',
        'param_scheduler.0.end=2', 'param_scheduler.1.milestones=[2]'
    ]
    ref_dir = tmp_path / 'reference'
    _run(train + ['--work-dir', str(ref_dir), '--cfg-options'] + opts, root)
    ref_last = _load(ref_dir / 'epoch_3.pth')

    resumed_dir = tmp_path / 'resumed'
    resumed_dir.mkdir()
    ckpt = resumed_dir / 'epoch_1.pth'
    ckpt.write_bytes((ref_dir / 'epoch_1.pth').read_bytes())
    out = _run(train + [
        '--work-dir', str(resumed_dir), '--resume', str(ckpt),
        '--cfg-options'
    ] + opts, root)
    assert 'resumed epoch: 1' in out
    # the threads, and why, as a fresh run records them: console and log
    threads = [ln for ln in out.splitlines() if 'threads: torch computes '
               'with' in ln]
    assert len(threads) == 1, out[-3000:]
    logs = list(resumed_dir.glob('*/*.log'))
    assert len(logs) == 1 and threads[0].split(' - ')[-1] in \
        logs[0].read_text()
    assert 'Epoch(train) [1]' not in out  # epoch 1 is not trained again
    assert 'Epoch(train) [2]' in out
    last = _load(resumed_dir / 'epoch_3.pth')
    assert last['meta']['epoch'] == ref_last['meta']['epoch'] == 3
    assert last['meta']['iter'] == ref_last['meta']['iter'] == 3 * 2
    lr = last['optimizer']['param_groups'][0]['lr']
    ref_lr = ref_last['optimizer']['param_groups'][0]['lr']
    assert lr == pytest.approx(ref_lr)
    assert lr == pytest.approx(1e-3 * 0.1)  # after the epoch-2 milestone
    # Momentum buffers were restored, not restarted.
    assert last['optimizer']['state'], 'optimizer state lost on resume'
    for key, value in ref_last['state_dict'].items():
        assert torch.equal(last['state_dict'][key], value), key


def test_test_tool_froc_and_show_dir(tiny_demo_root, tmp_path):
    """tools/test.py evaluates FROC and draws key slices with --show-dir."""
    root = repo_root()
    work = tmp_path / 'train'
    opts = _data_options(tiny_demo_root) + [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=5',
        'default_hooks.checkpoint.save_best=None'
    ]
    _run([sys.executable, 'tools/train.py', CONFIG, '--work-dir',
          str(work), '--cfg-options'] + opts, root)
    test_dir = tmp_path / 'test'
    out = _run([
        sys.executable, 'tools/test.py', CONFIG,
        str(work / 'epoch_1.pth'), '--work-dir',
        str(test_dir), '--show-dir', 'vis', '--cfg-options'
    ] + opts, root)
    assert 'froc/sens@4' in out
    # the split tested comes first (stdout, before the Runner's log)
    assert out.splitlines()[0] == (
        f'Testing test split: {tiny_demo_root}{os.sep}DL_info.csv ({CONFIG})')
    drawn = list(test_dir.glob('*/vis/*.png'))
    assert len(drawn) == 2  # the 2 test key slices
    assert list(test_dir.glob('*/froc_curve.png'))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(
    not torch.distributed.is_gloo_available(), reason='gloo not available')
def test_dist_train_two_processes_gloo(tiny_demo_root, tmp_path):
    """tools/dist_train.sh launches 2 CPU processes (gloo) for 2 iterations."""
    root = repo_root()
    work = tmp_path / 'dist'
    env_port = str(_free_port())
    opts = _data_options(tiny_demo_root, num_train=4) + [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=5',
        'default_hooks.checkpoint.save_best=None'
    ]
    cmd = ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir',
           str(work), '--cfg-options'] + opts
    env = _env()
    env['PORT'] = env_port
    proc = subprocess.run(
        cmd,
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert 'Distributed launcher: pytorch' in proc.stdout or \
        'World Size: 2' in proc.stdout or 'world_size: 2' in proc.stdout
    ckpt = _load(work / 'epoch_1.pth')
    # 4 images, 2 processes x batch 2: one iteration per epoch.
    assert ckpt['meta']['iter'] == 1
