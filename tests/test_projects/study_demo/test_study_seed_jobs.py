# Copyright (c) mmlesion contributors. All rights reserved.
"""``--jobs``: a study's seeds in parallel processes, same numbers."""
import json
import os
import subprocess
import sys
from argparse import Namespace

import pytest

from projects.study_demo.study import (TIME_KEY, maybe_run_seed_jobs,
                                 run_seed_jobs)
from projects.study_demo.study.seed_jobs import child_argv, split_seeds
from mmlesion.apps.demo import generate_demo_deeplesion
from mmlesion.testing import repo_root

FAKE_TOOL = '''
import json, os, sys
argv = sys.argv[1:]
seeds = argv[argv.index('--seeds') + 1:argv.index('--jobs')]
work = argv[argv.index('--work-dir') + 1]
print('study: fpn seed', seeds[0], 'running')
with open(os.path.join(work, 'child_' + '-'.join(seeds) + '.json'),
          'w') as f:
    json.dump(dict(argv=argv, threads=os.environ['OMP_NUM_THREADS']), f)
sys.exit(3 if '9' in seeds else 0)
'''


def test_split_seeds_and_child_argv():
    assert split_seeds([0, 1, 2], 2) == [[0, 2], [1]]
    assert split_seeds([4, 5], 8) == [[4], [5]]
    assert split_seeds([7], 1) == [[7]]
    with pytest.raises(ValueError, match='--jobs'):
        split_seeds([0, 1], 0)
    argv = ['--work-dir', 'w', '--seeds', '0', '1', '2', '--rows', 'fpn',
            'trpn', '--jobs', '2', '--keep-going']
    assert child_argv(argv, [1]) == [
        '--work-dir', 'w', '--rows', 'fpn', 'trpn', '--keep-going',
        '--seeds', '1', '--jobs', '1']
    assert child_argv(['--jobs=3', '--seeds', '0', '1', '--quick'],
                      [0]) == ['--quick', '--seeds', '0', '--jobs', '1']


def test_run_seed_jobs_runs_each_group_and_names_a_failure(
        tmp_path, monkeypatch):
    tool = tmp_path / 'fake_tool.py'
    tool.write_text(FAKE_TOOL)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    lines = []
    argv = ['--work-dir', str(tmp_path), '--seeds', '0', '1', '2']
    run_seed_jobs(str(tool), argv, [0, 1, 2], 2, str(tmp_path), poll_s=0.2,
                  log=lines.append)
    runs = {p.name: json.loads(p.read_text())
            for p in tmp_path.glob('child_*.json')}
    assert sorted(runs) == ['child_0-2.json', 'child_1.json']
    assert runs['child_1.json']['argv'][-4:] == ['--seeds', '1', '--jobs',
                                                 '1']
    expected = str(max(1, (os.cpu_count() or 1) // 2))
    assert {r['threads'] for r in runs.values()} == {expected}
    log_lines = (tmp_path / 'jobs' / 'seeds_0-2.log').read_text().split('\n')
    assert log_lines[0].startswith('== ') and log_lines[0].endswith(
        'seeds [0, 2], ' + expected + ' threads')
    assert log_lines[1] == 'study: fpn seed 0 running'
    assert sum('finished (exit 0' in ln for ln in lines) == 2
    # a failing child: its seeds, exit code and log are named; a thread
    # count the caller set is kept
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    with pytest.raises(RuntimeError, match=r'seeds \[9\] failed \(exit 3\)'
                       r'.*seeds_9\.log'):
        run_seed_jobs(str(tool), argv, [8, 9], 2, str(tmp_path), poll_s=0.2,
                      log=lines.append)
    assert json.loads((tmp_path / 'child_8.json').read_text())[
        'threads'] == '1'
    # nothing to split: no child
    args = Namespace(jobs=4, seeds=[0], quick=False, work_dir=str(tmp_path))
    assert not maybe_run_seed_jobs(args, [], str(tool))
    args = Namespace(jobs=1, seeds=[0, 1], quick=False,
                     work_dir=str(tmp_path))
    assert not maybe_run_seed_jobs(args, [], str(tool))


@pytest.mark.usefixtures('tools_forked')
def test_study_tool_with_jobs_gives_the_same_numbers(tmp_path):
    """The ElixirNet study tool, one row, 2 seeds, 1 epoch on tiny data:
    ``--jobs 2`` and one process store the same metrics (the tool forked
    from the zygote; its seed jobs new interpreters)."""
    data = tmp_path / 'demo'
    generate_demo_deeplesion(data, num_train=2, num_val=1, num_test=1,
                             image_size=128)
    tool = str(repo_root() / 'projects' / 'elixirnet' / 'tools' / 'eval_elixirnet_demo.py')
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    results = {}
    for jobs in (1, 2):
        work = tmp_path / f'jobs{jobs}'
        subprocess.run(
            [sys.executable, tool, '--rows', 'fpn', '--max-epochs', '1',
             '--seeds', '0', '1', '--jobs', str(jobs), '--data-root',
             str(data), '--work-dir', str(work)],
            check=True, env=env, capture_output=True)
        results[jobs] = {
            seed: json.loads((work / 'fpn' / f'seed_{seed}' /
                              'result.json').read_text())['metrics']
            for seed in (0, 1)
        }
        assert (work / 'summary.json').is_file()
    assert (tmp_path / 'jobs2' / 'jobs' / 'seeds_1.log').is_file()
    assert not (tmp_path / 'jobs1' / 'jobs').exists()
    for seed in (0, 1):
        one, two = results[1][seed], results[2][seed]
        one.pop(TIME_KEY, None), two.pop(TIME_KEY, None)
        assert one == two
