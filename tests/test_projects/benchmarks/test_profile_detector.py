# Copyright (c) mmlesion contributors. All rights reserved.
"""The detector profile runs on a tiny model on the CPU (no timing is
asserted)."""
import pytest

from mmlesion.testing import repo_root
from tests.helpers.tool_modules import load_tool


def _tool():
    return load_tool('projects/benchmarks/profile_detector.py')


def test_profile_demo_detector(capsys):
    tool = _tool()
    result = tool.main([
        '--config',
        str(repo_root() / 'configs/demo/faster-rcnn_r18_fpn_36e_'
            'deeplesion-demo.py'), '--batch-size', '2', '--size', '64',
        '--image-size', '60', '--warmup', '1', '--repeats', '1', '--rows',
        '5'
    ])
    out = capsys.readouterr().out
    assert set(result['batches']) == {'cudnn_benchmark=False'}
    assert result['batches']['cudnn_benchmark=False'] > 0
    assert result['backbone_neck'] > 0
    assert 'slices/s' in out and 'CPU total' in out
    assert 'aten::' in out  # the profiler table lists operations


def test_bad_settings_are_refused():
    tool = _tool()
    with pytest.raises(ValueError, match='--batch-size'):
        tool.main(['--batch-size', '0'])
