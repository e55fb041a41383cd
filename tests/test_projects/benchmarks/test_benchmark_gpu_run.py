# Copyright (c) mmlesion contributors. All rights reserved.
"""The one-call GPU run, rehearsed on the CPU at tiny sizes: every part
measured with finite numbers, a stopped run resumed with the rest, the
goals' verdicts and where the time goes (no timing is asserted)."""
import json

import pytest
import torch

from tests.helpers.tool_modules import load_tool


@pytest.fixture(scope='module')
def tool():
    return load_tool('projects/benchmarks/benchmark_gpu_run.py')


def test_a_stopped_rehearsal_resumes_with_the_rest(tool, tmp_path,
                                                   monkeypatch, capsys):
    from projects.benchmarks import (gpu_run_parts, gpu_run_plan,
                                     gpu_run_report)
    out = tmp_path / 'run'
    argv = ['--device', 'cpu', '--tiny', '--out', str(out)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def stopped(run):  # the run is stopped during the second part
        raise KeyboardInterrupt

    try:
        with monkeypatch.context() as patch:
            patch.setitem(gpu_run_parts.PART_FUNCTIONS, 'whole_scan',
                          stopped)
            with pytest.raises(KeyboardInterrupt):
                tool.main(argv)
        first = json.loads((out / 'results.json').read_text())
        assert first['parts']['amp_compare']['status'] == 'done'
        assert first['parts']['whole_scan']['status'] == 'stopped'
        assert set(first['parts']) == {'amp_compare', 'whole_scan'}
        assert '## amp_compare' in (out / 'results.md').read_text()
        capsys.readouterr()
        assert tool.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    record = json.loads((out / 'results.json').read_text())
    assert len(record['runs']) == 2
    # the first part is kept from the stopped run, the rest measured now
    assert record['parts']['amp_compare'] == first['parts']['amp_compare']
    assert 'amp_compare: done in an earlier run' in capsys.readouterr().out
    for name in gpu_run_plan.PARTS:
        part = record['parts'][name]
        assert part['status'] == 'done', (name, part)
        assert part['run'] == (1 if name == 'amp_compare' else 2)
        assert set(part['results']) == set(gpu_run_plan.sub_steps(
            gpu_run_plan.TINY, name, 'cpu')), name
    assert gpu_run_report.finite_numbers(record)
    for row in record['parts']['train_steps']['results'].values():
        assert row['ms_per_image'] > 0
    batch = record['parts']['infer_scans']['results']['batch']
    assert batch['slices_per_second'] > 0 and batch['same_findings']
    # the random weights keep their best findings at the operating point
    prepared = record['prepared']
    compared = record['parts']['amp_compare']['results']['scans']
    assert compared['confident']['fp32'] >= prepared['findings_kept'] > 0
    assert compared['match'] and not compared['amp_active']
    table = (out / 'results.md').read_text()
    for name in gpu_run_plan.PARTS:
        assert f'## {name}' in table
    assert table.count('**met**') + table.count('**NOT MET**') == 3
    assert 'not measured' not in table
    # another plan into the same folder is refused, the record kept
    assert tool.main(['--device', 'cpu', '--out', str(out)]) == 2
    assert 'give another --out' in capsys.readouterr().err
    assert json.loads((out / 'results.json').read_text()) == record


def test_parts_that_do_not_fit_the_deadline_wait(tool, tmp_path, capsys):
    out = tmp_path / 'run'
    assert tool.main(['--device', 'cpu', '--tiny', '--out', str(out),
                      '--parts', 'aggregated3d', 'train_steps',
                      '--deadline', '6']) == 1
    record = json.loads((out / 'results.json').read_text())
    assert set(record['parts']) == {'aggregated3d', 'train_steps'}
    for part in record['parts'].values():
        assert part['status'] == 'not started'
        assert 'its budget is 120 s; run again' in part['note']
    assert 'run the same command again' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.parse_args(['--deadline', '5'])


def test_a_part_past_its_budget_is_stopped_and_resumed(tool, tmp_path,
                                                       monkeypatch):
    """Past 1.5 times its budget a part is stopped (its finished
    sub-steps kept); a re-run does the rest."""
    import time

    from projects.benchmarks import gpu_run_parts, gpu_run_plan
    monkeypatch.setitem(gpu_run_plan.TINY.budgets, 'aggregated3d', .2)

    def slow(run):  # one sub-step, then more than the hard limit
        run.keep('fp32', dict(seconds=1.))
        time.sleep(5)

    monkeypatch.setitem(gpu_run_parts.PART_FUNCTIONS, 'aggregated3d', slow)
    monkeypatch.setattr(tool, 'sub_steps',
                        lambda plan, name, device: ['fp32', 'again'])
    argv = ['--device', 'cpu', '--tiny', '--out', str(tmp_path),
            '--parts', 'aggregated3d']
    start = time.monotonic()
    assert tool.main(argv) == 1
    assert time.monotonic() - start < 4
    part = json.loads((tmp_path / 'results.json').read_text())['parts'][
        'aggregated3d']
    assert part['status'] == 'partial'
    assert part['note'] == 'stopped after 0.3 s: again left for a re-run'
    assert part['results'] == {'fp32': {'seconds': 1.}}

    def finish(run):
        assert run.todo() == ['again']
        run.keep('again', dict(seconds=2.))

    monkeypatch.setitem(gpu_run_parts.PART_FUNCTIONS, 'aggregated3d',
                        finish)
    assert tool.main(argv) == 0
    part = json.loads((tmp_path / 'results.json').read_text())['parts'][
        'aggregated3d']
    assert (part['status'], part['run']) == ('done', 2)
    # a record the table cannot read is named there, not a crash
    table = (tmp_path / 'results.md').read_text()
    assert "(its record cannot be tabulated: KeyError: 'seconds_per_scan'" \
        in table


def _record(slices_per_s=70., workers=6, agg3d_s=.93):
    scan = dict(read=.2, resample=.03, detect=2.4, model=2.3, stack=.07,
                recist=.5, write=.3)
    agg = dict(read=.19, resample=.03, lung_crop=.44, window=.02,
               backbone=.09, rpn_head=.02, proposals=.03, fprn=.12,
               merge_nms=.004, window_overhead=.02)
    return dict(parts=dict(
        amp_compare=dict(results=dict(scans=dict(match=True,
                                                 amp_active=True))),
        infer_scans=dict(results=dict(batch=dict(
            parts=scan, slices_per_second=slices_per_s,
            seconds_per_scan=2.7, slices_per_scan=188, num_scans=2,
            amp_active=True))),
        data_loading=dict(results=dict(LENS=dict(
            need=dict(workers=workers, gpu_time='measured here (cuda)'),
            largest_part='key_png_decode',
            shares=dict(key_png_decode=.45, augmentation=.2)))),
        aggregated3d=dict(results=dict(amp=dict(
            amp_active=True, parts=agg, seconds_per_scan=dict(
                median=agg3d_s, min=agg3d_s, max=agg3d_s))))))


def test_missed_goals_name_the_part_that_takes_the_time():
    from projects.benchmarks.gpu_run_report import goals
    slices, workers, agg3d = goals(_record())
    assert slices.verdict == 'NOT MET' and 'AMP matches float32' in \
        slices.measured
    # the detector's test_step, not the detection loop around it
    assert slices.time_goes.startswith('detector 2.300 of 3.500 s (66 %)')
    assert workers.verdict == 'NOT MET'
    assert 'LENS: 6 workers' in workers.time_goes
    assert 'key_png_decode (45 %)' in workers.time_goes
    assert agg3d.verdict == 'NOT MET'
    assert agg3d.time_goes.startswith('preprocess 0.490')
    assert 'largest step: lung_crop 0.440 s' in agg3d.time_goes
    assert [g.verdict for g in goals(_record(210., 4, .45))] == ['met'] * 3
    assert [g.verdict for g in goals(dict(parts={}))] == ['not measured'] * 3
