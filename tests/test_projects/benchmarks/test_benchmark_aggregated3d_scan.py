# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN whole-scan benchmark runs on a tiny scan
(no timing is asserted)."""
import importlib.util
import json

import pytest
import torch

from mmlesion.testing import repo_root


def _tool():
    path = repo_root() / 'projects/benchmarks/benchmark_aggregated3d_scan.py'
    spec = importlib.util.spec_from_file_location('bench_agg3d_scan', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_a_tiny_scan_runs(tmp_path, capsys):
    tool = _tool()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = tool.main([
            '--config', str(repo_root() / tool.DEFAULT_CONFIG),
            '--scan-size', '24', '40', '--repeats', '2', '--warmup', '1',
            '--floor', '--json', str(tmp_path / 'r.json')
        ])
    finally:
        torch.set_num_threads(threads)
    assert result['windows'] == 1 and result['scan_zyx'] == [24, 40, 40]
    for part in tool.PARTS + ('resample_sitk', 'predict_volume'):
        assert result['parts'][part]['median'] >= 0, part
    # the network parts were timed (the wrappers saw the calls)
    assert result['parts']['backbone']['median'] > 0
    assert result['parts']['fprn']['median'] > 0
    assert 'fprn' not in result['rpn_parts']
    assert result['full_over_rpn'] > 0
    assert result['non_network_over_read'] > 0
    floor = result['floor']
    assert len(floor['per_round']) == 2
    assert floor['seconds'] == pytest.approx(sum(floor['per_round']) / 2)
    for part in ('resample_kernel', 'components', 'window_copies'):
        assert floor['parts'][part]['median'] > 0, part
    assert floor['over_read'] == pytest.approx(
        floor['seconds'] / result['read_seconds'])
    out = capsys.readouterr().out
    assert 'the floor leaves' in out
    assert 'fp16: not measured on a CPU' in out
    assert 'full / RPN alone' in out and 'budget 2x' in out
    assert json.loads((tmp_path / 'r.json').read_text())['windows'] == 1


def test_help_and_one_repeat_refused(capsys):
    tool = _tool()
    with pytest.raises(SystemExit):
        tool.main(['--help'])
    assert '--scan-size' in capsys.readouterr().out
    with pytest.raises(ValueError, match='a ratio needs'):
        tool.main(['--repeats', '1'])
