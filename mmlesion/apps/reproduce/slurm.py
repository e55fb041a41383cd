# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py --executor slurm``: every stage of a table becomes
a Slurm job, submitted through submitit.

A stage waits for the stage before it in its row (``afterok``); stages
shared by several rows (a baseline, Table III's RPN stage) are submitted
once. Stages that wait for nothing go in one submission, a job array. A
job pre-empted or stopped at its time limit is requeued by submitit
(:class:`StageJob` is checkpointable) and resumes: a finished stage is not
run again (its marker) and a training resumes from its newest checkpoint.
The job ids go to ``<work>/slurm_jobs.json``; :func:`job_status` reads them
back for ``--status``.
"""
import json
import math
import os.path as osp
import subprocess
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence

from mmlesion.utils.writing.atomic import atomic_write_json
from .execute import MARKER_DIR, run_stage, stage_done, stage_id
from .plan import Row, Stage

JOBS_FILE = 'slurm_jobs.json'


@dataclass
class SlurmOptions:
    """Resources of every job.

    Args:
        partition (str): Slurm partition.
        gpus (int): GPUs per job (0: a CPU partition; the trainings then
            run on CPUs with gloo).
        cpus (int): CPUs per task.
        mem_gb (int): memory per job (0: the partition's default).
        max_minutes (int): the longest time limit asked for; a job asks
            for twice its stage's estimate (at least 30 min), capped here.
    """
    partition: str
    gpus: int = 1
    cpus: int = 8
    mem_gb: int = 32
    max_minutes: int = 24 * 60


def time_limit(stage: Stage, opts: SlurmOptions) -> int:
    """Minutes asked for a stage: twice its GPU-hour estimate spread over
    its GPUs, at least 30, at most ``opts.max_minutes``."""
    hours = stage.gpu_hours / max(opts.gpus, 1)
    return int(min(max(30, math.ceil(2 * 60 * hours)), opts.max_minutes))


@dataclass
class StageJob:
    """One stage run inside a Slurm job (requeued when pre-empted)."""
    work_dir: str
    stage: Stage
    allow_other_code: bool = False

    def __call__(self) -> str:
        if stage_done(self.work_dir, self.stage, self.allow_other_code):
            return 'done before'
        run_stage(self.work_dir, self.stage)
        return 'done'

    def checkpoint(self):
        """submitit calls this on pre-emption / time limit: requeue the
        same stage (it resumes from its newest checkpoint)."""
        import submitit
        return submitit.helpers.DelayedSubmission(replace(self))


def submit_rows(work_dir: str, rows: Sequence[Row], opts: SlurmOptions,
                allow_other_code: bool = False, log=print) -> List[dict]:
    """Submit every stage not done yet as a Slurm job.

    Returns:
        list[dict]: one record per job (``job_id``, ``stage``, ``rows``,
        ``stdout``, ``stderr``), also written to ``slurm_jobs.json``.
    """
    import submitit
    folder = osp.join(work_dir, 'slurm', '%j')
    executor = submitit.AutoExecutor(folder=folder, cluster='slurm')
    base = dict(slurm_partition=opts.partition, cpus_per_task=opts.cpus,
                tasks_per_node=1, nodes=1)
    if opts.mem_gb > 0:
        base['mem_gb'] = opts.mem_gb
    if opts.gpus > 0:
        base['gpus_per_node'] = opts.gpus
    jobs: Dict[str, object] = {}
    rows_of: Dict[str, List[str]] = {}
    order: List[tuple] = []  # (stage id, stage, id of the stage before)
    for row in rows:
        before = None
        for stage in row.stages:
            sid = stage_id(stage)
            rows_of.setdefault(sid, []).append(f'{row.key}/seed_{row.seed}')
            if sid not in {o[0] for o in order}:
                order.append((sid, stage, before))
            before = sid
    pending = [o for o in order
               if not stage_done(work_dir, o[1], allow_other_code)]
    pending_ids = {o[0] for o in pending}
    first = [o for o in pending if o[2] not in pending_ids]
    rest = [o for o in pending if o[2] in pending_ids]
    # stages that wait for nothing: one array per time limit
    for minutes in sorted({time_limit(o[1], opts) for o in first}):
        group = [o for o in first if time_limit(o[1], opts) == minutes]
        executor.update_parameters(timeout_min=minutes, name='reproduce',
                                   **base)
        with executor.batch():
            subs = [executor.submit(StageJob(work_dir, o[1],
                                             allow_other_code))
                    for o in group]
        for o, job in zip(group, subs):
            jobs[o[0]] = job
    for sid, stage, before in rest:
        executor.update_parameters(
            timeout_min=time_limit(stage, opts), name='reproduce',
            slurm_additional_parameters=dict(
                dependency=f'afterok:{jobs[before].job_id}'), **base)
        jobs[sid] = executor.submit(StageJob(work_dir, stage,
                                             allow_other_code))
    records = []
    for sid, stage, _ in pending:
        job = jobs[sid]
        records.append(dict(job_id=str(job.job_id), stage=stage.name,
                            stage_id=sid, rows=rows_of[sid],
                            stdout=str(job.paths.stdout),
                            stderr=str(job.paths.stderr)))
        log(f'submitted {stage.name} of {rows_of[sid]}: job {job.job_id}')
    path = osp.join(work_dir, JOBS_FILE)
    old = []
    if osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
    atomic_write_json(path, old + records, indent=1)
    return records


def _squeue(job_id: str) -> Optional[List[str]]:
    try:
        out = subprocess.run(['squeue', '-h', '-j', job_id, '-o', '%T|%N|%M'],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = out.stdout.strip().splitlines()
    return line[0].split('|') if out.returncode == 0 and line else None


def wait_for_jobs(job_ids: Sequence[str], poll: float = 10.0,
                  log=print) -> None:
    """Return when Slurm lists none of ``job_ids`` any more.

    Slurm is asked after 0.5 s, then at intervals growing by half up to
    ``poll`` seconds: short jobs are seen ending at once, long ones do
    not flood slurmctld.

    Args:
        job_ids (Sequence[str]): the Slurm job ids to wait for.
        poll (float): the longest interval between two ``squeue`` calls,
            in seconds; also how often the wait is logged.
        log (callable): takes each "waiting for N job(s)" line, logged
            when N changes and at most every ``poll`` seconds otherwise.
    """
    import time
    left, pause, said = list(job_ids), min(0.5, poll), None
    while left:
        left = [j for j in left if _squeue(j)]
        if left:
            if len(left) != said or pause >= poll:
                log(f'waiting for {len(left)} job(s)')
                said = len(left)
            time.sleep(pause)
            pause = min(poll, pause * 1.5)


def _last_line(path: str) -> str:
    """The failure a job's stderr ends with: the stage's error if there is
    one, else its last line that is not Slurm's own."""
    if not osp.isfile(path):
        return ''
    with open(path, errors='replace') as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    for line in reversed(lines):
        if 'StageError: ' in line:
            return line.split('StageError: ', 1)[1]
    ours = [ln for ln in lines if not ln.startswith(('srun:', 'slurmstepd'))]
    return ours[-1] if ours else (lines[-1] if lines else '')


def job_status(work_dir: str) -> List[dict]:
    """State, node, elapsed time, log and (for a failure) the last line of
    every job submitted for this table.

    A job Slurm no longer lists is ``COMPLETED`` when its stage's marker
    exists, else ``FAILED`` (its log says why).
    """
    path = osp.join(work_dir, JOBS_FILE)
    if not osp.isfile(path):
        return []
    with open(path) as f:
        records = json.load(f)
    out = []
    for rec in records:
        queued = _squeue(rec['job_id'])
        marker = osp.join(work_dir, MARKER_DIR, f"{rec['stage_id']}.json")
        if queued:
            state, node, elapsed = queued
        else:
            state = 'COMPLETED' if osp.isfile(marker) else 'FAILED'
            node, elapsed = '-', '-'
        failure = _last_line(rec['stderr']) if state == 'FAILED' else ''
        out.append(dict(rec, state=state, node=node or '-',
                        elapsed=elapsed, failure=failure))
    return out


def status_table(status: Sequence[dict]) -> str:
    """``--status`` as a markdown table."""
    lines = ['| job | stage | rows | state | node | elapsed | log | last '
             'line of a failure |', '|---|---|---|---|---|---|---|---|']
    for s in status:
        lines.append(
            f"| {s['job_id']} | {s['stage']} | {', '.join(s['rows'])} | "
            f"{s['state']} | {s['node']} | {s['elapsed']} | {s['stdout']} | "
            f"{s['failure'] or '-'} |")
    return '\n'.join(lines) + '\n'
