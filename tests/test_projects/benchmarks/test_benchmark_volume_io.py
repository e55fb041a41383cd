# Copyright (c) mmlesion contributors. All rights reserved.
"""projects/benchmarks/benchmark_volume_io.py runs and checks equality."""
import importlib.util
from pathlib import Path

TOOL = (
    Path(__file__).resolve().parents[3] / 'projects' / 'benchmarks' / 'benchmark_volume_io.py')


def test_benchmark_runs(capsys):
    spec = importlib.util.spec_from_file_location('bench_vol', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(['--slices', '6', '--repeat', '1']) == 0
    out = capsys.readouterr().out
    assert 'volume (6, 512, 512)' in out and 'identical: True' in out
