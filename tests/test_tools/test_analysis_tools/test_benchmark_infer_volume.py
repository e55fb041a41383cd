# Copyright (c) mmlesion contributors. All rights reserved.
"""The volume-inference benchmark tool runs (no timing is asserted)."""
import importlib.util
import json

import torch

from mmlesion.datasets.demo.volumes import generate_demo_volumes
from mmlesion.testing import repo_root


def test_benchmark_runs_on_a_small_scan(tmp_path, capsys):
    path = repo_root() / 'tools' / 'analysis_tools' / \
        'benchmark_infer_volume.py'
    spec = importlib.util.spec_from_file_location('bench_infer', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    generate_demo_volumes(tmp_path / 'v', num_luna=1, num_kits=0,
                          num_lits=0, val_fraction=0., size_range=(64, 64),
                          num_slices_range=(16, 16))
    scan = next((tmp_path / 'v').rglob('*.mhd'))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = tool.main([
            '--config', str(repo_root() / 'configs' / 'demo' /
                            'faster_rcnn_r18_fpn_1x_demo_deeplesion.py'),
            '--scan', str(scan), '--batch-sizes', '1', '4', '--repeats',
            '1', '--json', str(tmp_path / 'b.json')
        ])
    finally:
        torch.set_num_threads(threads)
    assert set(result['batches']) == {1, 4}
    assert result['speedup'][1] == 1.
    assert result['batches'][4]['slices_per_second'] > 0
    assert 'slices/s' in capsys.readouterr().out
    assert json.loads((tmp_path / 'b.json').read_text())['num_slices'] == \
        result['num_slices']
