# Copyright (c) mmlesion contributors. All rights reserved.
"""The box-stacking benchmark tool on a tiny scan (no timing is asserted)."""
import numpy as np


def test_random_weight_like_boxes(analysis_tool):
    tool = analysis_tool('benchmark_box_stacking')
    zs, boxes, scores = tool.random_weight_like_boxes(
        num_slices=5, boxes_per_slice=7, image_size=64., seed=1)
    assert zs == list(range(5))
    assert [b.shape for b in boxes] == [(7, 4)] * 5
    assert all(b.dtype == np.float64 and s.shape == (7, ) for b, s in zip(
        boxes, scores))
    assert all(((b >= 0) & (b <= 64)).all() for b in boxes)
    assert all(((s > .05) & (s <= 1)).all() for s in scores)
    # the same seed, the same boxes
    again = tool.random_weight_like_boxes(
        num_slices=5, boxes_per_slice=7, image_size=64., seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(boxes, again[1]))


def test_run_benchmark_is_identical(analysis_tool):
    tool = analysis_tool('benchmark_box_stacking')
    res = tool.run_benchmark(num_slices=12, boxes_per_slice=10,
                             image_size=96., max_gap=1, repeat=2)
    assert res['identical'] is True
    assert res['num_boxes'] == 120
    assert 0 < res['num_findings'] < 120
    assert len(res['fast_runs_ms']) == len(res['ref_runs_ms']) == 2
    assert res['speedup'] > 0 and res['wall_speedup'] > 0


def test_main_reports_and_exits_zero(analysis_tool, capsys):
    tool = analysis_tool('benchmark_box_stacking')
    small = ['--num-slices', '8', '--boxes-per-slice', '6', '--repeat', '1']
    assert tool.main(small + ['--min-speedup', '0']) == 0
    out = capsys.readouterr().out
    assert '8 slices x 6 boxes = 48 boxes' in out
    assert 'identical findings: True' in out
    assert 'ms per scan' in out and 'speed ratio' in out
    # an unreachable speed-up makes the tool fail
    assert tool.main(small + ['--min-speedup', '1e12']) == 1


def test_the_join_against_one_pair_at_a_time(analysis_tool, capsys):
    tool = analysis_tool('benchmark_box_stacking')
    res = tool.run_benchmark(num_slices=12, boxes_per_slice=10,
                             image_size=96., repeat=1, join_gap=2)
    assert res['identical'] is True
    assert 0 < res['num_findings'] < 120
    assert tool.main(['--num-slices', '8', '--boxes-per-slice', '6',
                      '--repeat', '1', '--join-gap', '1',
                      '--min-speedup', '0']) == 0
    out = capsys.readouterr().out
    assert 'join_gap 1;' in out and 'identical findings: True' in out
    assert 'one pair at a time' in out
