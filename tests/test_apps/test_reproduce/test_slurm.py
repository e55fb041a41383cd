# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py --executor slurm`` on a real one-node Slurm cluster
(started by the test; skipped, saying why, where it cannot): stages become
jobs that wait for the stage before them, a shared stage runs once, the
results equal a local run, a failing job shows in ``--status`` with its
log."""
import json
import sys

import pytest

from mmlesion.apps.reproduce import Row, Stage, run_rows
from tests.helpers.slurm_cluster import PARTITION


@pytest.fixture
def cluster(slurm_cluster):
    pytest.importorskip('submitit')
    return slurm_cluster


def _py(code: str):
    return [sys.executable, '-c', code]


def _rows(tmp):
    """Two rows x two seeds sharing their first stage, and a row that
    fails."""
    base = tmp / 'base.txt'
    shared = Stage('shared', _py(
        f'import time; time.sleep(1); open({str(base)!r}, "a").write("x")'),
        outputs=[str(base)])
    rows = []
    for seed in (0, 1):
        for key, factor in (('a', 2), ('b', 3)):
            out = tmp / f'{key}{seed}.json'
            step = Stage(f'{key}{seed}', _py(
                'import json; n = len(open({b!r}).read()); '
                'json.dump({{"value": n * {f} + {s}}}, open({o!r}, "w"))'
                .format(b=str(base), f=factor, s=seed, o=str(out))),
                outputs=[str(out)])
            rows.append(Row(key, key.upper(), '', [shared, step], str(out),
                            {'value': ('value', 1.)}, seed))
    bad = Stage('bad', _py('import sys; print("boom: no data", '
                           'file=sys.stderr); sys.exit(4)'))
    rows.append(Row('c', 'C', '', [bad], str(tmp / 'c.json'), {}, 0))
    return rows


def test_wait_for_jobs_asks_soon_then_less_often(monkeypatch):
    """No cluster: the first ``squeue`` after 0.5 s (a short job's end is
    seen at once), the intervals growing up to ``poll``; each count of
    jobs left logged once, then every ``poll`` seconds."""
    import time

    from mmlesion.apps.reproduce import slurm
    answers = iter([['RUNNING']] * 9 + [None])
    monkeypatch.setattr(slurm, '_squeue', lambda job: next(answers))
    pauses, lines = [], []
    monkeypatch.setattr(time, 'sleep', pauses.append)
    slurm.wait_for_jobs(['7'], poll=2., log=lines.append)
    assert pauses == [.5, .75, 1.125, 1.6875, 2., 2., 2., 2., 2.]
    assert lines == ['waiting for 1 job(s)'] * 6


@pytest.mark.slurm
def test_stages_as_jobs_equal_a_local_run(cluster, tmp_path, monkeypatch):
    from mmlesion.apps.reproduce.slurm import (SlurmOptions, job_status,
                                               status_table, submit_rows,
                                               wait_for_jobs)
    for key, value in cluster.env().items():
        monkeypatch.setenv(key, value)
    work = tmp_path / 'slurm'
    work.mkdir()
    records = submit_rows(str(work), _rows(work),
                          SlurmOptions(PARTITION, gpus=0, cpus=1, mem_gb=0,
                                       max_minutes=10), log=lambda *_: 0)
    # the shared stage once: 6 jobs for 9 stages
    assert sorted(r['stage'] for r in records) == ['a0', 'a1', 'b0', 'b1',
                                                   'bad', 'shared']
    wait_for_jobs([r['job_id'] for r in records], poll=1, log=lambda *_: 0)
    assert (work / 'base.txt').read_text() == 'x'
    keys = ('a0', 'a1', 'b0', 'b1')
    slurm_values = {k: json.loads((work / f'{k}.json').read_text())
                    for k in keys}
    status = {s['stage']: s for s in job_status(str(work))}
    assert status['a1']['state'] == status['shared']['state'] == 'COMPLETED'
    assert status['bad']['state'] == 'FAILED'
    table = status_table(status.values())
    assert 'FAILED' in table and status['bad']['stdout'] in table
    assert 'exit 4' in status['bad']['failure'] or \
        'boom' in status['bad']['failure']
    # the same rows locally
    local = tmp_path / 'local'
    local.mkdir()
    run_rows(str(local), _rows(local), keep_going=True, log=lambda *_: 0)
    assert {k: json.loads((local / f'{k}.json').read_text())
            for k in keys} == slurm_values == {
                'a0': {'value': 2}, 'a1': {'value': 3},
                'b0': {'value': 3}, 'b1': {'value': 4}}
    # nothing runs twice: a second submission submits nothing done
    again = submit_rows(str(work), _rows(work)[:4],
                        SlurmOptions(PARTITION, gpus=0, cpus=1, mem_gb=0),
                        log=lambda *_: 0)
    assert again == []
