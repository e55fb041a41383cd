# Copyright (c) mmlesion contributors. All rights reserved.
"""The CPU training-step benchmark's comparison of RoI extractors at a
tiny size: both extractors' steps timed, their losses compared, the ratio
on the last line (no timing is asserted)."""
import re
import sys


def test_compare_roi_extractors(analysis_tool, monkeypatch, capsys):
    tool = analysis_tool('benchmark_cpu_train_step')
    monkeypatch.setattr(sys, 'argv', [
        'benchmark_cpu_train_step.py', '--sides', '64', '--steps', '1',
        '--head-channels', '16', '--rcnn-rois', '16',
        '--compare-roi-extractors'])
    tool.main()
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r'64 x 64 px: CPU s per step SingleRoIExtractor '
                        r'[0-9.]+, RowsRoIExtractor [0-9.]+ \([0-9.]+x\)',
                        lines[-2]), lines
    assert re.fullmatch(r"[0-9.]+x mmdet's SingleRoIExtractor \(least over "
                        r'1 sides\), same losses: True', lines[-1]), lines
