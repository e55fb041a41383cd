# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/run_demo.py``: its help, its end-of-run summary, its folder.

The run test trains one epoch of the demo config on the tiny generated set
(``tiny_demo_root`` in ``tests/conftest.py``, 4 training slices) in a
subprocess: about 15 s on 2 cores.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmlesion.testing import repo_root
from tests.helpers.tool_modules import load_tool

# `python tools/...` runs fork a process that imported mmdet once
# (conftest, tools_forked).
pytestmark = pytest.mark.usefixtures('tools_forked')

RUN_DEMO = 'tools/run_demo.py'


def _env() -> dict:
    env = dict(os.environ)
    env['PYTHONPATH'] = str(repo_root()) + os.pathsep + env.get(
        'PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '1')
    env['COLUMNS'] = '80'
    return env


def _run(args: list, timeout: int = 600) -> str:
    proc = subprocess.run([sys.executable, RUN_DEMO] + args,
                          cwd=repo_root(),
                          env=_env(),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def _option_blocks(help_text: str) -> dict:
    """``{'--seed': 'its help, lines joined'}`` of the options section."""
    body = help_text.split('\noptions:\n', 1)[1].split('\nexamples:', 1)[0]
    blocks, current = {}, None
    for line in body.splitlines():
        match = re.match(r'  (-\S+)', line)
        if match:
            current = match.group(1).split(',')[0]
            blocks[current] = line
        elif current:
            blocks[current] += ' ' + line.strip()
    return blocks


def test_help_is_clean():
    text = _run(['--help'])
    blocks = _option_blocks(text)
    assert set(blocks) >= {'-h', '--config', '--data-root', '--work-dir',
                           '--epochs', '--seed', '--cfg-options'}
    for option, block in blocks.items():
        # each default shown once, never "(default: x) (default: x)"
        assert block.count('default') <= 1, block
    for option in ('--config', '--data-root', '--work-dir', '--epochs',
                   '--seed'):
        assert 'default' in blocks[option], blocks[option]
    assert '(default: 0)' in blocks['--seed']
    # the paths whole (not cut at a hyphen), relative to the repository
    assert 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py' in text
    assert '<work-dir>/<timestamp>/' in text
    # no "defaults below" (they are above), no absolute checkout path
    assert 'below' not in text
    assert str(repo_root()) not in text


def test_headline_leaves_out_the_breakdowns():
    demo = load_tool('run_demo.py')
    metrics = {f'froc/sens@{r}': .1 * i
               for i, r in enumerate(('0.5', '1', '2', '4', '8', '16'))}
    metrics['froc/mean@0.5-4'] = .15
    metrics['froc/bbox_mAP'] = .2
    metrics['froc/bbox_mAP_50'] = .4
    for kind in ('type_bone', 'type_liver', 'size_lt10mm'):
        for r in ('0.5', '1', '2', '4', '8', '16'):
            metrics[f'froc/sens@{r}_{kind}'] = float('nan')
    lines = demo.headline(metrics)
    text = '\n'.join(lines)
    assert len(lines) <= 5
    assert 'type' not in text and 'size' not in text and 'nan' not in text
    assert re.search(r'FPs/image\s+0\.5\s+1\s+2\s+4\s+8\s+16\s+mean 0\.5-4',
                     text)
    assert re.search(r'sensitivity\s+0\.000\s+0\.100\s+0\.200\s+0\.300\s+'
                     r'0\.400\s+0\.500\s+0\.150', text)
    assert 'mAP 0.200' in text and 'mAP@0.5 0.400' in text
    # COCO left out when the metric has none
    assert 'COCO' not in '\n'.join(demo.headline(
        {k: v for k, v in metrics.items() if 'mAP' not in k}))


def test_the_per_scan_lines_say_what_a_scan_is_or_why_there_is_none():
    demo = load_tool('run_demo.py')
    assert demo.scan_point_lines(None) == []
    lines = demo.scan_point_lines(dict(
        fp_rates=[1., 4.], sensitivities=[.25, .5], num_scans=39,
        num_lesions=89, scan_extent_mm=24.3))
    assert 'sensitivity 0.500 at 4 false findings per scan on 39 val ' \
        'chunks' in lines[0]
    assert '89 lesions in 3D; a "scan" here is the 24 mm along z' in lines[1]
    (line, ) = demo.scan_point_lines(dict(error='error: no scan',
                                          log='/run/scan_val/x.log'))
    assert 'NOT recorded' in line and 'error: no scan' in line
    assert '/run/scan_val/x.log' in line


def _summary(out: str) -> list:
    lines = out.splitlines()
    start = max(i for i, line in enumerate(lines)
                if line.startswith('mmlesion demo:'))
    end = max(i for i, line in enumerate(lines) if set(line) == {'='})
    assert end > start + 2
    return lines[start:end + 1]


def test_tiny_run_one_folder_and_a_short_summary(tiny_demo_root, tmp_path):
    work_dir = tmp_path / 'work'
    out = _run([
        '--epochs', '1', '--data-root',
        str(tiny_demo_root), '--work-dir',
        str(work_dir), '--cfg-options', 'train_dataloader.dataset.indices=4',
        'train_dataloader.batch_size=2', 'default_hooks.logger.interval=1'
    ])
    # one run, one folder, the files directly in it
    (run_dir, ) = list(work_dir.iterdir())
    assert re.fullmatch(r'\d{8}_\d{6}', run_dir.name)
    nested = [p for p in run_dir.iterdir()
              if p.is_dir() and re.fullmatch(r'\d{8}_\d{6}', p.name)]
    assert nested == []
    for name in ('froc_val.json', 'froc_curve.png', 'froc_detections.json',
                 f'{run_dir.name}.log', 'last_checkpoint', 'epoch_1.pth'):
        assert (run_dir / name).is_file(), name
    pictures = sorted((run_dir / 'vis_val').glob('*.png'))
    assert len(pictures) == 4  # every val key slice

    summary = _summary(out)
    text = '\n'.join(summary)
    assert len(summary) <= 30, text
    assert '_type_' not in text and '_size_' not in text
    assert 'mean 0.5-4' in text and 'mAP' in text
    # every path it names exists, and it names every file of the run
    paths = [Path(p.rstrip(os.sep))
             for p in re.findall(re.escape(str(work_dir)) + r'\S*', text)]
    assert paths and all(p.exists() for p in paths), paths
    names = {p.name for p in paths}
    for name in ('froc_val.json', 'froc_curve.png', 'froc_detections.json',
                 f'{run_dir.name}.log', 'epoch_1.pth', 'vis_val', 'scan_val'):
        assert name in names, text
    # a per-scan operating point for whole scans, in the checkpoints of the
    # final epoch, its unit said: the val chunks as scans
    from mmlesion.evaluation.functional.operating_points import (
        SCAN_OPERATING_POINTS_KEY, OperatingPoints)
    for ckpt in run_dir.glob('*epoch_1.pth'):
        point = OperatingPoints.from_dict(torch.load(
            ckpt, weights_only=False)['meta'][SCAN_OPERATING_POINTS_KEY])
        assert point.fp_unit == 'scan' and 'score_thr' in point.lesion_steps
        assert '4 scans of' in point.split, point.split
    assert re.search(r'Per-scan operating point .* at 4 false findings per '
                     r'scan on 4 val chunks\n.*"scan" here is the \d+ mm',
                     text), text
    scan_val = json.loads((run_dir / 'scan_val' / 'scan_lesions.json'
                           ).read_text())
    assert scan_val['num_scans'] == 4 and scan_val['num_lesions'] >= 4
    assert all(p == run_dir or p.parent == run_dir for p in paths), text
    # the breakdowns stay in the JSON
    saved = json.loads((run_dir / 'froc_val.json').read_text())
    assert any('_type_' in k for k in saved['metrics'])
    assert saved['run_dir'] == str(run_dir)
    assert [what for what, _ in saved['files']].count('FROC numbers') == 1
    assert all(Path(p).exists() for _, p in saved['files'])
    # the threads the run used, not only the variable (unset: null); this
    # process's count may have changed since (mmengine's env setup, the
    # tools' choice on a busy machine), so only its kind is checked
    assert isinstance(saved['torch_threads'], int)
    assert saved['torch_threads'] >= 1
    assert saved['omp_num_threads'] == os.environ.get('OMP_NUM_THREADS')
    assert 'omp_wait_policy' in saved and saved['threads_chosen_by']
    # and the summary names them with the seed (the default, 0)
    assert saved['seed'] == 0
    assert (f'Made with seed 0 and {saved["torch_threads"]} torch '
            'thread') in text
