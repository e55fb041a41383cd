# Copyright (c) mmlesion contributors. All rights reserved.
"""The tools' threading choice (mmlesion_cli/threads.py)."""
import os
import subprocess
import sys
from pathlib import Path

from mmlesion_cli.threads import (AUTO_ENV, CHOSEN_ENV, CHOSEN_WAIT_ENV,
                                  busy_cores, choose_threads, thread_line,
                                  thread_record)

REPO = Path(__file__).resolve().parents[2]


def _choose(env, busy, cores=2):
    return choose_threads(env, count_busy=lambda: busy, cores=cores)


def test_quiet_machine_keeps_torch_threading():
    env = {}
    choice = _choose(env, busy=0, cores=1)
    assert env == {}  # torch's thread count and OpenMP's spinning wait
    assert (choice.threads, choice.source) == (None, 'free cores')


def test_busy_cores_lower_the_thread_count(monkeypatch):
    monkeypatch.setattr('mmlesion_cli.threads.usable_cpus', lambda: 4)
    env = {}
    choice = _choose(env, busy=1, cores=4)
    assert env['OMP_NUM_THREADS'] == env[CHOSEN_ENV] == '3'
    assert env['OMP_WAIT_POLICY'] == env[CHOSEN_WAIT_ENV] == 'PASSIVE'
    assert choice.threads == 3 and choice.busy_cores == 1
    env = {}
    assert _choose(env, busy=9, cores=4).threads == 1  # never below 1


def test_the_users_variables_win():
    env = {'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'ACTIVE'}
    choice = _choose(env, busy=5)
    assert env == {'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'ACTIVE'}
    assert choice.source == 'user'
    env = {AUTO_ENV: '0'}
    assert _choose(env, busy=5).source == 'off'
    assert env == {AUTO_ENV: '0'}


def test_a_parent_tools_choice_is_made_again():
    """A tool started by another sees the parent's choice marked as such
    and chooses again (here: the machine became quiet)."""
    env = {'OMP_NUM_THREADS': '1', CHOSEN_ENV: '1',
           'OMP_WAIT_POLICY': 'PASSIVE', CHOSEN_WAIT_ENV: 'PASSIVE'}
    choice = _choose(env, busy=0, cores=1)
    assert env == {} and choice.threads is None


def test_busy_cores_reads_the_fewest_runnable_tasks(tmp_path):
    stat = tmp_path / 'stat'
    stat.write_text('cpu  1 2 3\nprocs_running 4\n')
    assert busy_cores(looks=2, pause=0, stat_path=str(stat)) == 3
    assert busy_cores(looks=1, stat_path=str(tmp_path / 'missing')) == 0


def test_record_names_the_threads_used_and_who_chose_them():
    record = thread_record(1, {'OMP_NUM_THREADS': '1', CHOSEN_ENV: '1'})
    assert record.torch_threads == 1
    assert (record.omp_num_threads, record.threads_chosen_by) == ('1',
                                                                  'mmlesion')
    assert thread_record(1, {'OMP_NUM_THREADS': '1'}
                         ).threads_chosen_by == 'user'
    assert thread_record(2, {}).threads_chosen_by == 'torch'


def test_the_line_names_the_threads_and_why(monkeypatch):
    """The one line a training or test prints (and logs) at its start: a
    busy machine's choice, the user's, torch's default on a quiet one."""
    monkeypatch.setattr('mmlesion_cli.threads.usable_cpus', lambda: 2)
    env = {}
    choice = _choose(env, busy=1, cores=2)
    line = thread_line(thread_record(1, env), choice, env)
    assert '\n' not in line
    assert line.startswith(
        'threads: torch computes with 1 (OMP_NUM_THREADS=1, chosen by '
        'mmlesion: 1 of 2 cores busy with other processes at the start; '
        'OMP_WAIT_POLICY=PASSIVE by mmlesion); another count gives other')
    env = {}
    choice = _choose(env, busy=8)
    assert ('chosen by mmlesion: all 2 cores busy with other processes at '
            'the start (8 of their tasks runnable)') in thread_line(
                thread_record(1, env), choice, env)
    env = {'OMP_NUM_THREADS': '2'}
    choice = _choose(env, busy=0)
    assert '(OMP_NUM_THREADS=2, set by you)' in thread_line(
        thread_record(2, env), choice, env)
    env = {}
    choice = _choose(env, busy=0)
    assert ("with 2 (torch's default: the machine was quiet at the start)"
            in thread_line(thread_record(2, env), choice, env))


def test_a_tool_process_gets_the_choice_before_torch_starts():
    """Importing mmlesion_cli first (as every tool does) makes the choice
    before torch is imported (a wait policy it sets is marked as its own,
    set only on a busy machine); the user's thread count wins."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('OMP_') and k not in (AUTO_ENV, CHOSEN_ENV,
                                                     CHOSEN_WAIT_ENV)}
    code = ('import os, sys, mmlesion_cli; e = os.environ; print(e.get('
            '"OMP_WAIT_POLICY", "unset"), e.get("' + CHOSEN_WAIT_ENV +
            '", "unset"), e["OMP_NUM_THREADS"], "torch" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                         env=dict(env, OMP_NUM_THREADS='1'),
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() in (['unset', 'unset', '1', 'False'],
                                  ['PASSIVE', 'PASSIVE', '1', 'False']
                                  ), (out.stdout, out.stderr)
