# Copyright (c) mmlesion contributors. All rights reserved.
"""The LUNA16 benchmark tool on a small case (no timing is asserted)."""
import importlib.util
from pathlib import Path

TOOL = (Path(__file__).resolve().parents[3] / 'projects' / 'benchmarks' / 'benchmark_luna16.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_luna16', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_small_case_agrees_and_reports(capsys):
    tool = load_tool()
    rc = tool.main([
        '--num-scans', '40', '--marks-per-scan', '30', '--num-bootstrap',
        '50', '--ref-resamples', '5', '--min-speedup', '0'
    ])
    out = capsys.readouterr().out
    assert 'identical curve, rates and CPM: True' in out
    assert 'speed ratio' in out and 'extrapolated to 50' in out
    assert rc == 0
