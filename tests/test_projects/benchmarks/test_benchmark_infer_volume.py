# Copyright (c) mmlesion contributors. All rights reserved.
"""The volume-inference benchmark tool runs (no timing is asserted)."""
import importlib.util
import json

import pytest
import torch

from projects.study_demo.synthetic.volumes import generate_demo_volumes
from mmlesion.testing import repo_root

DEMO_CFG = str(repo_root() / 'configs' / 'demo' /
               'faster-rcnn_r18_fpn_36e_deeplesion-demo.py')


def _tool_and_scan(tmp_path):
    path = repo_root() / 'projects' / 'benchmarks' / 'benchmark_infer_volume.py'
    spec = importlib.util.spec_from_file_location('bench_infer', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    generate_demo_volumes(tmp_path / 'v', num_luna=1, num_kits=0,
                          num_lits=0, val_fraction=0., size_range=(64, 64),
                          num_slices_range=(16, 16))
    return tool, next((tmp_path / 'v').rglob('*.mhd'))


def test_benchmark_runs_on_a_small_scan(tmp_path, capsys):
    tool, scan = _tool_and_scan(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = tool.main([
            '--config', DEMO_CFG, '--scan', str(scan), '--batch-sizes', '1',
            '4', '--workers', '0', '1', '--repeats', '1', '--json',
            str(tmp_path / 'b.json')
        ])
    finally:
        torch.set_num_threads(threads)
    assert set(result['batches']) == {1, 4}
    assert result['speedup'][1] == 1.
    assert result['batches'][4]['slices_per_second'] > 0
    assert set(result['by_workers']) == {0, 1}
    assert result['by_workers'][1]['batches'][4]['slices_per_second'] > 0
    assert result['by_workers'][0]['batches'] == result['batches']
    out = capsys.readouterr().out
    assert 'slices/s with 1 workers' in out and 'end to end' in out
    assert json.loads((tmp_path / 'b.json').read_text())['num_slices'] == \
        result['num_slices']


def test_pipeline_only_and_bad_workers(tmp_path, capsys):
    tool, scan = _tool_and_scan(tmp_path)
    result = tool.main(['--config', DEMO_CFG, '--scan', str(scan),
                        '--workers', '0', '2', '--worker-type', 'process',
                        '--pipeline-only', '--repeats', '1'])
    assert set(result['pipeline_slices_per_second']) == {0, 2}
    assert result['worker_type'] == 'process'
    assert 'process workers' in capsys.readouterr().out
    # the stand-in detector: the loop and the workers without a model
    result = tool.main(['--config', DEMO_CFG, '--scan', str(scan),
                        '--workers', '0', '1', '--batch-sizes', '4',
                        '--stand-in-ms', '1', '--repeats', '1'])
    assert result['stand_in_ms'] == 1. and set(result['by_workers']) == {0, 1}
    assert 'stand-in detector waiting 1.0 ms' in capsys.readouterr().out
    with pytest.raises(ValueError, match='workers must be an integer >= 0'):
        tool.main(['--config', DEMO_CFG, '--scan', str(scan), '--workers',
                   '-1', '--pipeline-only'])


def test_whole_runs_of_both_paths_and_the_read_ratio(tmp_path, capsys):
    tool, scan = _tool_and_scan(tmp_path)
    result = tool.main(['--config', DEMO_CFG, '--scan', str(scan),
                        '--workers', '0', '1', '--batch-sizes', '4',
                        '--stand-in-ms', '0', '--stand-in-boxes', '5',
                        '--repeats', '2'])
    assert set(result['whole_runs']) == {
        f'{p}/{w}' for p in ('today', 'torch-resample', 'new')
        for w in (0, 1)}
    today, new = result['whole_runs']['today/1'], result['whole_runs'][
        'new/1']
    assert (today['resample'], today['batched_windowing']) == ('sitk', False)
    assert (new['resample'], new['batched_windowing']) == ('torch', True)
    assert len(new['seconds']) == 2 and new['ratio_to_read'] > 0
    assert len(result['read_seconds']) == 2
    out = capsys.readouterr().out
    assert 'the read time' in out and 'goal <= 3x' in out
    # the stand-in's boxes are stacked: 5 per slice, all kept
    assert f"stacking {5 * result['num_slices']} boxes" in out
