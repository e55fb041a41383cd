# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN benchmark on its cheapest case (no timing
is asserted)."""
import argparse
import importlib.util

from mmlesion.testing import repo_root


def test_fprn_magnify_case_runs():
    path = repo_root() / 'tools/analysis_tools/benchmark_aggregated3d.py'
    spec = importlib.util.spec_from_file_location('bench_agg3d', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = argparse.Namespace(device='cpu', rois=2, repeats=1, crop=128,
                              scan=[128, 128, 128])
    out = tool.run_case('fprn_magnify', args)
    assert out['time_s'] > 0 and 'peak_mb' in out
    assert set(tool.CASES) >= {'train_full', 'scan_full', 'fprn_finer'}
