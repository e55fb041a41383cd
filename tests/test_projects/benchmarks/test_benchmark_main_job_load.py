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


def test_read_running_does_not_count_the_reader(tool, tmp_path):
    stat = tmp_path / 'stat'
    stat.write_text('cpu  1 2 3\nprocs_running 3\nprocs_blocked 0\n')
    assert tool.read_running(str(stat)) == 2
    stat.write_text('procs_running 1\n')
    assert tool.read_running(str(stat)) == 0
    assert tool.read_running(str(tmp_path / 'missing')) == 0


def test_busy_processes_raise_the_sampled_load(tool):
    """Two burners are runnable while the timed command runs, and are
    gone afterwards."""
    sleep = [sys.executable, '-c', 'import time; time.sleep(1.5)']
    busy = tool.time_command(sleep, 'busy (2 cores)', 2, interval=0.2)
    assert busy.returncode == 0
    assert busy.seconds >= 1.5
    assert len(busy.samples) >= 5
    # the burners start before the command and are runnable throughout
    assert max(s.running for s in busy.samples) >= 2
    quiet = tool.time_command(sleep, 'quiet', 0, interval=0.2)
    assert (quiet.running_stats()[0] < busy.running_stats()[0])


def test_stop_burners_kills_them(tool):
    procs = tool.start_burners(2)
    tool.stop_burners(procs)
    assert all(p.poll() is not None for p in procs)


def test_failed_command_is_reported(tool):
    fail = [sys.executable, '-c', 'raise SystemExit(3)']
    run = tool.time_command(fail, 'quiet', 0, interval=0.1)
    assert run.returncode == 3
    report = tool.format_report([run], cpus=2, threads='1')
    assert '(exit 3)' in report
    assert 'OMP_NUM_THREADS=1' in report


def test_report_gives_time_load_and_ratio(tool):
    samples = [tool.LoadSample(0.0, 1, 0.5), tool.LoadSample(5.0, 3, 1.5)]
    quiet = tool.TimedRun('quiet', 0, 600.0, 0, samples)
    busy = tool.TimedRun('busy (1 core)', 1, 1500.0, 0,
                         [tool.LoadSample(0.0, 3, 3.0)])
    lines = tool.format_report([quiet, busy], cpus=2, threads='unset')
    quiet_line, busy_line = lines.splitlines()[2:]
    assert quiet_line.split()[:3] == ['quiet', '600', '10.0']
    assert '2.0 (1-3)' in quiet_line and quiet_line.endswith('1.00')
    assert busy_line.split()[-1] == '2.50'
    assert '25.0' in busy_line and '3.00' in busy_line


def test_main_job_command_names_each_condition(tool, tmp_path):
    args = tool.parse_args(['--work-dir', str(tmp_path), '--epochs', '2'])
    cmd = tool.main_job_command(args, 'busy')
    assert cmd[1].endswith('tools/run_demo.py')
    assert cmd[cmd.index('--work-dir') + 1] == str(tmp_path / 'busy')
    assert cmd[cmd.index('--data-root') + 1] == str(tmp_path / 'data')
    assert cmd[-2:] == ['--epochs', '2']
    with pytest.raises(SystemExit):
        tool.parse_args(['--busy-procs', '-1'])


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
    run = tool.TimedRun('quiet', 0, 12.5, 0, [tool.LoadSample(0.0, 1, 0.2)])
    tool.write_summary(path, [run])
    data = json.loads(path.read_text())
    assert data['runs'][0]['seconds'] == 12.5
    assert data['runs'][0]['samples'][0]['running'] == 1
    assert not (tmp_path / 'main_job_load.json.tmp').exists()


def test_busy_only_has_no_ratio(tool, tmp_path):
    busy = tool.TimedRun('busy (1 core)', 1, 900.0, 0,
                         [tool.LoadSample(0.0, 3, 3.0)])
    line = tool.format_report([busy], cpus=2, threads='unset').splitlines()[2]
    assert line.split()[-1] == 'nan'
    args = tool.parse_args(['--conditions', 'busy'])
    assert args.conditions == ['busy']


def test_burner_whose_parent_is_already_gone_ends_at_once(tool):
    """Given a parent that is not its parent (already gone when it
    starts), the busy process ends at once instead of running forever."""
    import subprocess
    proc = subprocess.Popen([sys.executable, '-c', tool.BURNER, '1'])
    assert proc.wait(timeout=30) == 0
