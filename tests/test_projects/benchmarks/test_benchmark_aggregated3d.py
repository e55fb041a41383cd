# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN benchmark on its cheapest case (no timing
is asserted)."""
import argparse
import importlib.util

import pytest

from mmlesion.testing import repo_root


def test_fprn_magnify_case_runs():
    path = repo_root() / 'projects/benchmarks/benchmark_aggregated3d.py'
    spec = importlib.util.spec_from_file_location('bench_agg3d', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = argparse.Namespace(device='cpu', rois=2, repeats=2, warmup=1,
                              crop=128, scan=[128, 128, 128])
    out = tool.run_case('fprn_magnify', args)
    assert out['time_s'] > 0 and 'peak_mb' in out
    assert len(out['times_s']) == 2
    assert set(tool.CASES) >= {'train_full', 'scan_full', 'fprn_finer'}


def test_one_repeat_or_no_warmup_is_refused(capsys):
    path = repo_root() / 'projects/benchmarks/benchmark_aggregated3d.py'
    spec = importlib.util.spec_from_file_location('bench_agg3d', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for argv, reason in ((['--repeats', '1'], 'a ratio needs'),
                         (['--warmup', '0'], 'warms up')):
        with pytest.raises(SystemExit):
            tool.main(argv + ['--cases', 'fprn_magnify'])
        assert reason in capsys.readouterr().err
