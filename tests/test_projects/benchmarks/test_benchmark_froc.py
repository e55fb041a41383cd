# Copyright (c) mmlesion contributors. All rights reserved.
"""The FROC benchmark tool on a tiny case (no timing is asserted)."""
import importlib.util
from pathlib import Path

import numpy as np

TOOL = (Path(__file__).resolve().parents[3] / 'projects' / 'benchmarks' / 'benchmark_froc.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_froc', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_benchmark_small_case_is_identical():
    tool = load_tool()
    res = tool.run_benchmark(
        num_images=40, dets_per_image=8, seed=5, overlap='iobb', repeat=2)
    assert res['identical'] is True
    assert res['num_detections'] == 320
    assert len(res['fast_times']) == 2
    assert res['speedup'] > 0
    assert np.all((res['sens'] >= 0) & (res['sens'] <= 1))


def test_main_reports_and_exits_zero(capsys):
    tool = load_tool()
    rc = tool.main([
        '--num-images', '30', '--dets-per-image', '5', '--repeat', '1',
        '--min-speedup', '0'
    ])
    out = capsys.readouterr().out
    assert rc == 0
    assert 'identical output: True' in out
    assert 'speed ratio' in out
    # an unreachable speed-up makes the tool fail
    assert tool.main([
        '--num-images', '10', '--dets-per-image', '3', '--repeat', '1',
        '--min-speedup', '1e12'
    ]) == 1
