# Copyright (c) mmlesion contributors. All rights reserved.
"""The many-scans benchmark runs (no timing is asserted)."""
import json

import pytest
import torch

from tests.helpers.tool_modules import load_tool


def _tool():
    return load_tool('projects/benchmarks/benchmark_infer_scans.py')


def test_benchmark_compares_both_batches_on_small_scans(tmp_path, capsys):
    torch.set_num_threads(1)
    result = _tool().main([
        '--num-scans', '2', '--scan-size', '48', '12', '--stand-in-ms', '1',
        '--stand-in-boxes', '2', '--repeats', '2', '--schedules',
        'threads', 'matplotlib', 'before_evening', '--change-rounds', '1',
        '--json',
        str(tmp_path / 'b.json')])
    assert result['same_findings'] is True
    # the same renderer: the same pixels; matplotlib's: the same findings,
    # pictures that mostly agree (the content: test_key_slice_raster.py)
    assert result['schedules']['threads']['same_pictures'] is True
    # the code of 2026-11-26's afternoon (the evening's three changes
    # undone, the overview by matplotlib): the same findings, pictures
    # that mostly agree (the overview's content: test_overview_raster.py)
    evening = result['schedules']['before_evening']
    assert evening['same_findings'] is True
    assert evening['same_pictures'] is None
    assert .5 < evening['picture_agreement'] < 1.
    matplotlib = result['schedules']['matplotlib']
    assert matplotlib['same_findings'] is True
    assert matplotlib['same_pictures'] is None
    assert .5 < matplotlib['picture_agreement'] < 1.
    assert result['same_pictures'] is True
    changes = result['changes']
    assert all(c['same_findings'] for c in changes.values())
    for name in ('key slices drawn as pixels (KeySliceRaster)',
                 'overview drawn as pixels'):
        assert changes[name]['same_pictures'] is None, name
        assert .5 < changes[name]['picture_agreement'] < 1., name
    assert changes['records without asdict']['same_pictures'] is True
    assert set(result['batch_seconds']) == {'overlapped',
                                            'one_after_another'}
    assert all(len(v) == 2 for v in result['batch_seconds'].values())
    assert result['speedup'] > 0
    out = capsys.readouterr().out
    assert 'one after another / overlapped' in out and 'parts per scan' in out
    assert set(result['parts_per_scan']['overlapped']) == {
        'load', 'detect', 'measure', 'write'}
    assert json.loads((tmp_path / 'b.json').read_text())['num_scans'] == 2


def test_benchmark_refuses_a_batch_of_one():
    with pytest.raises(SystemExit):
        _tool().main(['--num-scans', '1'])


def test_every_schedule_is_a_valid_finishing_and_old_code():
    """Each schedule's settings build (a schedule not run by the test
    above fails here, not in a user's run)."""
    import dataclasses
    import inspect

    from mmlesion.apps.whole_scan.batch import Finishing
    from mmlesion.apis.whole_scan.settings import RunSettings
    tool = _tool()
    old_code = inspect.signature(tool.old_code.__wrapped__).parameters
    for name, fields in tool.SCHEDULES.items():
        Finishing(**fields)
        assert set(tool.OLD_CODE_SCHEDULES.get(name, {})) <= set(old_code)
        dataclasses.replace(RunSettings(), **tool.RUN_SCHEDULES.get(name, {}))
    assert set(tool.OLD_CODE_SCHEDULES) <= set(tool.SCHEDULES)
    assert set(tool.RUN_SCHEDULES) <= set(tool.SCHEDULES)


def test_the_operating_point_comparison_keeps_what_the_threshold_says(
        tmp_path, capsys):
    """Both stand-ins through the three paths: every finding measured and
    written, or only those of the high-score boxes (the low-score boxes of
    the ``many`` stand-in stay candidates), by the stacking of now and of
    before, which write the same files."""
    torch.set_num_threads(1)
    result = _tool().main([
        '--num-scans', '2', '--scan-size', '48', '8', '--stand-in-ms', '0',
        '--stand-in-boxes', '2', '--low-boxes', '3', '--repeats', '1',
        '--operating-point', '0.3', '--json', str(tmp_path / 'op.json')])
    few, many = result['few/operating_point'], result['many/operating_point']
    assert few['findings_per_scan'] == few['candidates_per_scan'] == 2
    assert many['findings_per_scan'] == 2
    assert many['candidates_per_scan'] > 2
    every = result['many/every_finding']
    assert every['findings_per_scan'] == every['candidates_per_scan'] == (
        many['candidates_per_scan'])
    assert set(result) >= {'many_over_few/every_finding',
                           'many_over_few/operating_point',
                           'many_over_few/operating_point_before'}
    # the previous stacking (every candidate a Finding): the same files
    assert result['many/operating_point_before'] | dict(
        seconds_per_scan=0, spread=0) == many | dict(seconds_per_scan=0,
                                                     spread=0)
    assert result['same_files'] is True
    assert 'findings kept of' in capsys.readouterr().out
    assert json.loads((tmp_path / 'op.json').read_text())[
        'operating_point'] == .3
