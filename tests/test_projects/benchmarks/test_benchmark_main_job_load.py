# Copyright (c) mmlesion contributors. All rights reserved.
"""The main-job load benchmark's parts, on short commands (no timing is
asserted; the main job itself is tested in tests/test_tools)."""
import importlib.util
import sys
from pathlib import Path

import pytest

TOOL = (Path(__file__).resolve().parents[3] / 'projects' / 'benchmarks' /
        'benchmark_main_job_load.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('benchmark_main_job_load',
                                                  TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_load_samples_do_not_count_the_reader(tool, tmp_path):
    stat = tmp_path / 'stat'
    stat.write_text('cpu  1 2 3\nprocs_running 3\nprocs_blocked 0\n')
    assert tool.busy_cores(looks=1, stat_path=str(stat)) == 2
    stat.write_text('procs_running 1\n')
    assert tool.busy_cores(looks=1, stat_path=str(stat)) == 0
    assert tool.busy_cores(looks=1, stat_path=str(tmp_path / 'no')) == 0


def test_busy_processes_raise_the_sampled_load(tool):
    """Two burners are runnable while the timed command runs, and are
    gone afterwards."""
    sleep = [sys.executable, '-c', 'import time; time.sleep(1.5)']
    busy = tool.time_command(sleep, 'today', 2, interval=0.2)
    assert busy.returncode == 0
    assert busy.seconds >= 1.5
    assert len(busy.samples) >= 5
    # the burners start before the command and are runnable throughout
    assert max(s.running for s in busy.samples) >= 2
    quiet = tool.time_command(sleep, 'today', 0, interval=0.2)
    assert (quiet.running_stats()[0] < busy.running_stats()[0])


def test_stop_burners_kills_them(tool):
    procs = tool.start_burners(2)
    tool.stop_burners(procs)
    assert all(p.poll() is not None for p in procs)


def test_failed_command_is_reported(tool):
    fail = [sys.executable, '-c', 'raise SystemExit(3)']
    run = tool.time_command(fail, 'today', 0, interval=0.1)
    assert run.returncode == 3
    assert '(1 failed)' in tool.format_report([run], cpus=2)


def _run(tool, setting, busy, iteration, threads=2, load=1.0):
    return tool.TimedRun(setting, busy, 30.0 * iteration, 0,
                         [tool.LoadSample(0.0, 1 + busy, load)],
                         iteration_seconds=iteration, torch_threads=threads)


def test_report_gives_ratios_to_quiet_and_to_today(tool):
    runs = [
        _run(tool, 'today', 0, 0.30), _run(tool, 'auto', 0, 0.31),
        _run(tool, 'auto', 3, 0.62, threads=1, load=4.0),
        _run(tool, 'today', 3, 1.50, load=4.0),
        _run(tool, 'today', 3, 1.70, load=4.0),
    ]
    lines = tool.format_report(runs, cpus=2).splitlines()
    rows = {tuple(line.split()[:2]): line.split() for line in lines[2:]}
    assert list(rows) == [('today', '0'), ('today', '3'), ('auto', '0'),
                          ('auto', '3')]
    today3, auto3 = rows[('today', '3')], rows[('auto', '3')]
    assert today3[2:6] == ['2', '2', '48.0', '1.600']  # medians of 2 runs
    assert today3[-2:] == ['5.33', '1.00']
    assert auto3[3] == '1' and auto3[-2:] == ['2.00', '0.39']
    assert rows[('auto', '0')][-1] == '1.03'


def test_schedule_interleaves_and_alternates_the_settings(tool, tmp_path):
    args = tool.parse_args(['--busy-procs', '0', '3', '--repeats', '2'])
    assert tool.schedule(args) == [
        (0, 0, 'today'), (0, 0, 'auto'), (0, 3, 'auto'), (0, 3, 'today'),
        (1, 0, 'today'), (1, 0, 'auto'), (1, 3, 'auto'), (1, 3, 'today')]
    with pytest.raises(SystemExit):
        tool.parse_args(['--busy-procs', '-1'])


def test_settings_environments(tool, monkeypatch):
    """``today`` switches the tools' choice off, ``auto`` leaves it on;
    a choice this process made is not passed on as the user's."""
    monkeypatch.setattr(tool, 'USER_OMP', {'OMP_NUM_THREADS': None,
                                           'OMP_WAIT_POLICY': 'ACTIVE'})
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    monkeypatch.setenv(tool.CHOSEN_ENV, '1')
    today, auto = tool.setting_env('today'), tool.setting_env('auto')
    assert today[tool.AUTO_ENV] == '0' and tool.AUTO_ENV not in auto
    for env in (today, auto):
        assert 'OMP_NUM_THREADS' not in env and tool.CHOSEN_ENV not in env
        assert env['OMP_WAIT_POLICY'] == 'ACTIVE'


def test_main_job_command_sizes_the_job(tool, tmp_path):
    args = tool.parse_args(['--work-dir', str(tmp_path), '--epochs', '2'])
    cmd = tool.main_job_command(args, tmp_path / 'auto_busy1_r0')
    assert cmd[1].endswith('tools/run_demo.py')
    assert cmd[cmd.index('--work-dir') + 1] == str(tmp_path / 'auto_busy1_r0')
    assert cmd[cmd.index('--data-root') + 1] == str(tmp_path / 'data')
    assert cmd[cmd.index('--epochs') + 1] == '2'
    assert 'train_dataloader.dataset.indices=40' in cmd
    args = tool.parse_args(['--train-images', '0', '--val-images', '0'])
    assert '--cfg-options' not in tool.main_job_command(args, tmp_path)


def test_job_results_are_read_from_its_log_and_record(tool, tmp_path):
    import json
    run = tmp_path / 'job' / '20260101_000000'
    run.mkdir(parents=True)
    (run / '20260101_000000.log').write_text(''.join(
        f'x - INFO - Epoch(train) [1][{i}/20]  lr: 1e-3  eta: 0:00:01  '
        f'time: {t}  data_time: 0.03\n'
        for i, t in ((5, 9.0), (10, 0.4), (15, 0.5), (20, 0.6))))
    (run / 'froc_val.json').write_text(json.dumps({'torch_threads': 1}))
    assert tool.read_job_results(tmp_path / 'job') == (0.5, 1)
    assert tool.read_job_results(tmp_path / 'none') == (None, None)


def test_burner_ends_when_its_parent_is_killed(tool, tmp_path):
    """A killed benchmark leaves no process keeping a core busy, also when
    it is killed before the busy process has looked at its parent."""
    import os
    import subprocess
    import time
    pid_file = tmp_path / 'pid'
    parent = subprocess.Popen([
        sys.executable, '-c',
        'import sys, subprocess, time; '
        'import os; '
        f'p = subprocess.Popen([sys.executable, "-c", {tool.BURNER!r}, '
        'str(os.getpid())]); '
        f'open({str(pid_file)!r}, "w").write(str(p.pid)); time.sleep(60)'
    ])
    deadline = time.monotonic() + 20
    while not (pid_file.is_file() and pid_file.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    burner = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(burner, 0)
            with open(f'/proc/{burner}/stat') as f:
                if f.read().split(') ')[1].startswith('Z'):
                    break  # ended, waiting for its reaper
        except (ProcessLookupError, FileNotFoundError):
            break
        assert time.monotonic() < deadline, 'the burner outlived its parent'
        time.sleep(0.05)


def test_summary_is_written_after_each_run(tool, tmp_path):
    import json
    path = tmp_path / 'main_job_load.json'
    run = tool.TimedRun('auto', 0, 12.5, 0, [tool.LoadSample(0.0, 1, 0.2)])
    tool.write_summary(path, [run])
    data = json.loads(path.read_text())
    assert data['runs'][0]['seconds'] == 12.5
    assert data['runs'][0]['samples'][0]['running'] == 1
    assert not (tmp_path / 'main_job_load.json.tmp').exists()


def test_burner_whose_parent_is_already_gone_ends_at_once(tool):
    """Given a parent that is not its parent (already gone when it
    starts), the busy process ends at once instead of running forever."""
    import subprocess
    proc = subprocess.Popen([sys.executable, '-c', tool.BURNER, '1'])
    assert proc.wait(timeout=30) == 0
