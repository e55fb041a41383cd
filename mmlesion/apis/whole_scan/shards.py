# Copyright (c) mmlesion contributors. All rights reserved.
"""A day's scans sharded over several jobs (:func:`run_sharded_inference`;
``tools/infer_volume.py --jobs N [--slurm]``, docs/infer_volume.md).

The scans are dealt into ``jobs`` shards (round robin, in the list's
order); shard ``k`` is a batch (:func:`~mmlesion.apis.whole_scan.batch.
run_batch_inference`) into ``OUT/shard_<k>/``, run in a local process
(forked from this one) or, with ``launcher='slurm'``, in a Slurm job
submitted through submitit (one job array). Which shard a scan belongs to
is kept in ``OUT/shards.json``, so that a re-run sends every scan to the
folder that holds its earlier results: a scan's results are never stored
twice, whatever ``jobs`` the re-run asks for (new scans are dealt among
the shards of this run).

Each scan's results appear whole or not at all and ``findings.json`` is
written last (the batch's atomic result set), so the parent counts the
finished scans by their ``findings.json`` (the progress lines, over all
jobs), and a re-run of the same command skips them and runs what an
interrupted job left. After the jobs end, the scans not finished (a failed
scan, a job killed midway) are run once more (``retries``); then
``OUT/scans.csv`` lists every scan (status, shard, attempts, the one-line
reason of a failure), ``OUT/findings.csv`` holds the findings of all scans
in one table and ``OUT/summary.html`` (self-contained, with
``summary.png``: findings per scan and the scans' status) sums them up;
all written atomically.
"""
import csv
import json
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from mmengine.config import Config

from mmlesion.utils.distributed.forked_call import fork_available
from mmlesion.utils.writing.atomic import (atomic_write_json,
                                           remove_stale_temporaries_of)

from .batch import SUMMARY_NAME, run_batch_inference
from .scan_list import scan_folder_names
from .shard_summary import (FINDINGS_TABLE, ShardedRow, scan_findings,
                            shard_folder, write_sharded_outputs)
from .settings import Finishing, RunSettings
from .write import OutDirLock, output_paths

#: Launchers of the shards' jobs.
LAUNCHERS = ('local', 'slurm')
#: ``OUT/shards.json``: folder name -> shard.
PLAN_NAME = 'shards.json'


@dataclass
class ShardSettings:
    """How the scans are sharded and where the shards run.

    Args:
        jobs (int): shards (jobs running at once, at most one per scan).
        launcher (str): ``local`` (processes forked from this one) or
            ``slurm`` (Slurm jobs through submitit).
        partition (str, optional): ``slurm``: the partition (required).
        cpus_per_task (int): ``slurm``: CPUs of each job (also its torch
            threads).
        gpus_per_job (int): ``slurm``: GPUs of each job (0: none).
        mem_gb (int): ``slurm``: memory of each job (0: the partition's
            default).
        timeout_min (int): ``slurm``: time limit of each job.
        retries (int): rounds that run the scans not finished again.
        poll_seconds (float): how often the progress is counted.
    """
    jobs: int = 2
    launcher: str = 'local'
    partition: Optional[str] = None
    cpus_per_task: int = 2
    gpus_per_job: int = 0
    mem_gb: int = 0
    timeout_min: int = 60
    retries: int = 1
    poll_seconds: float = 2.0

    def check(self) -> None:
        """Raise ``ValueError`` naming the setting that cannot work."""
        if self.jobs < 1:
            raise ValueError(f'--jobs must be 1 or more, got {self.jobs}')
        if self.launcher not in LAUNCHERS:
            raise ValueError(f'--launcher must be one of {LAUNCHERS}, got '
                             f'{self.launcher!r}')
        if self.launcher == 'slurm' and not self.partition:
            raise ValueError('--slurm needs --partition (sinfo lists them)')
        if self.retries < 0 or self.cpus_per_task < 1 or \
                self.timeout_min < 1:
            raise ValueError('retries must be >= 0, cpus per task and the '
                             'time limit >= 1')


@dataclass
class ShardJob:
    """One shard's batch, run in a job (pickled for Slurm)."""
    config: Union[str, Config]
    weights: Optional[str]  # the checkpoint (``checkpoint`` is submitit's)
    scans: List[str]
    out_dir: str
    run_settings: RunSettings
    overlap: bool = True
    finishing: Finishing = field(default_factory=Finishing)

    def __call__(self) -> int:
        """Run the batch; the number of its scans that failed."""
        cpus = os.environ.get('SLURM_CPUS_PER_TASK')
        if cpus and 'OMP_NUM_THREADS' not in os.environ:
            import torch
            torch.set_num_threads(int(cpus))
        rows = run_batch_inference(self.config, self.weights, self.scans,
                                   self.out_dir, self.run_settings,
                                   overlap=self.overlap,
                                   finishing=self.finishing)
        return sum(row.status == 'failed' for row in rows)

    def checkpoint(self) -> Any:
        """submitit: a pre-empted job is requeued; the batch then skips
        the scans it finished."""
        import submitit
        return submitit.helpers.DelayedSubmission(self)


def plan_shards(names: Sequence[str], out: Path, jobs: int) -> List[int]:
    """The shard of each scan (by its folder name): the one
    ``OUT/shards.json`` names, where an earlier run put it, else dealt
    round robin over ``jobs`` shards, fewest scans first."""
    plan: Dict[str, int] = {}
    path = out / PLAN_NAME
    if path.is_file():
        try:
            plan = {str(k): int(v) for k, v in
                    json.loads(path.read_text(encoding='utf-8')).items()}
        except (ValueError, AttributeError, TypeError) as err:
            raise ValueError(f'{path}: not a shard plan ({err}); remove it '
                             'only if no shard folder holds results') from err
    counts = {k: 0 for k in range(jobs)}
    for name in names:
        if name in plan:
            counts[plan[name]] = counts.get(plan[name], 0) + 1
    for name in names:
        if name not in plan:
            shard = min(range(jobs), key=lambda k: (counts[k], k))
            plan[name] = shard
            counts[shard] += 1
    atomic_write_json(str(path), plan, indent=1)
    return [plan[name] for name in names]


def finished(out: Path, row: ShardedRow) -> bool:
    """Whether the scan's result set is in place (``findings.json``,
    written last)."""
    return output_paths(out / shard_folder(row.shard) / row.folder
                        ).json.is_file()


# jobs ----------------------------------------------------------------


class _LocalJob:
    """A shard in a process forked from this one (spawned where fork is
    not available); its output goes to ``log``."""

    def __init__(self, job: ShardJob, log: Path) -> None:
        context = multiprocessing.get_context(
            'fork' if fork_available() else 'spawn')
        self.process = context.Process(target=_run_logged,
                                       args=(job, str(log)),
                                       name='mmlesion-shard')
        self.process.start()
        self.id = str(self.process.pid)
        self.log = log

    def done(self) -> bool:
        return not self.process.is_alive()

    def ending(self) -> str:
        self.process.join()
        return (f'job process {self.id} ended (exit code '
                f'{self.process.exitcode}; log: {self.log})')

    def kill(self) -> None:
        """SIGKILL to the job's processes (its process group: the batch
        and the processes it forked), as ``scancel`` ends a Slurm job."""
        import signal
        if self.process.is_alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except OSError:  # not yet its own group
                self.process.kill()


def _run_logged(job: ShardJob, log: str) -> None:
    """A local shard: stdout and stderr to ``log``, exit 1 when a scan
    failed."""
    os.setpgid(0, 0)  # its own group: kill() ends what it forks too
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    code = 1
    try:
        code = int(job() > 0)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class _SlurmJob:
    """A shard as a Slurm job (a submitit job)."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.id = str(job.job_id)
        self.log = Path(job.paths.stderr)

    def done(self) -> bool:
        try:
            out = subprocess.run(['squeue', '-h', '-j', self.id, '-o', '%T'],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if out.returncode == 0 and out.stdout.strip():
            return False
        return out.returncode == 0 or 'Invalid job id' in out.stderr

    def ending(self) -> str:
        return f'Slurm job {self.id} ended (log: {self.log})'

    def kill(self) -> None:
        """``scancel``: Slurm sends SIGTERM (which submitit's jobs
        ignore), SIGKILL after its ``KillWait``."""
        subprocess.run(['scancel', self.id],
                       capture_output=True, timeout=30)


def _launch(jobs: Dict[int, ShardJob], settings: ShardSettings,
            out: Path) -> Dict[int, Any]:
    """Start one job per shard (local processes or one Slurm array)."""
    logs = out / 'logs'
    logs.mkdir(parents=True, exist_ok=True)
    if settings.launcher == 'local':
        return {k: _LocalJob(job, logs / f'{shard_folder(k)}.log')
                for k, job in jobs.items()}
    import submitit
    executor = submitit.AutoExecutor(folder=str(logs / 'slurm' / '%j'),
                                     cluster='slurm')
    params = dict(slurm_partition=settings.partition,
                  cpus_per_task=settings.cpus_per_task, tasks_per_node=1,
                  nodes=1, timeout_min=settings.timeout_min,
                  name='infer_volume')
    if settings.mem_gb > 0:
        params['mem_gb'] = settings.mem_gb
    if settings.gpus_per_job > 0:
        params['gpus_per_node'] = settings.gpus_per_job
    executor.update_parameters(**params)
    with executor.batch():
        submitted = {k: executor.submit(job) for k, job in jobs.items()}
    return {k: _SlurmJob(job) for k, job in submitted.items()}


@dataclass
class ShardProgress:
    """What the parent knows while the jobs run (for ``on_progress``)."""
    done: int
    total: int
    running: Dict[int, Any]
    attempt: int
    by_shard: Dict[int, int]


# the run -------------------------------------------------------------


def run_sharded_inference(config: Union[str, Config],
                          checkpoint: Optional[str],
                          scans: Sequence[str],
                          out_dir: str,
                          run_settings: Optional[RunSettings] = None,
                          shards: Optional[ShardSettings] = None,
                          overlap: bool = True,
                          finishing: Optional[Finishing] = None,
                          log: Callable[[str], None] = print,
                          on_progress: Optional[Callable[[ShardProgress],
                                                         None]] = None
                          ) -> List[ShardedRow]:
    """Run the scans as shards in several jobs (see the module's doc).

    Args:
        config, checkpoint, scans, run_settings, overlap, finishing: as
            :func:`~mmlesion.apis.whole_scan.batch.run_batch_inference`
            (``run_settings.overwrite`` runs finished scans again).
        out_dir (str): ``shard_<k>/``, ``shards.json``, ``scans.csv``,
            ``findings.csv``, ``summary.html`` / ``summary.png``, ``logs/``.
        shards (ShardSettings, optional): the jobs. Defaults to
            ``ShardSettings()``.
        log (callable): gets the progress lines.
        on_progress (callable, optional): called with a
            :class:`ShardProgress` at each count.

    Returns:
        list[ShardedRow]: one row per scan, as ``OUT/scans.csv``.

    Raises:
        ValueError: no scan, two scans of one folder name, a bad setting.
        OutputDirError: ``out_dir`` cannot be written or another run
            writes into it.
    """
    run = run_settings or RunSettings()
    settings = shards or ShardSettings()
    settings.check()
    if not scans:
        raise ValueError('no scan to run')
    names = scan_folder_names(scans)
    out = Path(out_dir)
    lock = OutDirLock(out)
    lock.acquire()
    try:
        out.mkdir(parents=True, exist_ok=True)
        # what a killed run left of its tables and page
        remove_stale_temporaries_of(*(str(out / name) for name in (
            SUMMARY_NAME, FINDINGS_TABLE, PLAN_NAME, 'summary.png',
            'summary.html')))
        plan = plan_shards(names, out, min(settings.jobs, len(scans)))
        rows = [ShardedRow(str(s), n, k)
                for s, n, k in zip(scans, names, plan)]
        todo = [r for r in rows if run.overwrite or not finished(out, r)]
        for attempt in range(1 + settings.retries):
            if not todo:
                break
            if attempt:
                log(f'retrying {len(todo)} scan(s) not finished: '
                    + ', '.join(r.folder for r in todo))
            _run_round(config, checkpoint, rows, todo, out, run, settings,
                       overlap, finishing or Finishing(), attempt, log,
                       on_progress)
            run = _no_overwrite(run)  # a retry keeps what the round made
            todo = [r for r in todo if not finished(out, r)]
        _final_status(rows, out)
        write_sharded_outputs(rows, out)
    finally:
        lock.release()
    return rows


def _no_overwrite(run: RunSettings) -> RunSettings:
    from dataclasses import replace
    return replace(run, overwrite=False) if run.overwrite else run


def _run_round(config, checkpoint, rows: List[ShardedRow],
               todo: List[ShardedRow], out: Path, run: RunSettings,
               settings: ShardSettings, overlap: bool, finishing: Finishing,
               attempt: int, log, on_progress) -> None:
    """One job per shard with scans to do, each over its whole shard (the
    batch skips the finished ones, keeping its ``scans.csv`` complete);
    wait, counting the finished scans."""
    shards = sorted({r.shard for r in todo})
    for row in todo:
        row.attempts += 1
    jobs = {k: ShardJob(config, checkpoint,
                        [r.scan for r in rows if r.shard == k],
                        str(out / shard_folder(k)), run, overlap, finishing)
            for k in shards}
    running = _launch(jobs, settings, out)
    log(f'{len(running)} job(s) started ({settings.launcher}): '
        + ', '.join(f'{shard_folder(k)} {j.id}' for k, j in running.items()))
    last = None
    while True:
        ended = all(job.done() for job in running.values())
        by_shard = {k: sum(finished(out, r) for r in rows if r.shard == k)
                    for k in {r.shard for r in rows}}
        done = sum(by_shard.values())
        busy = sum(not job.done() for job in running.values())
        if done != last or ended:
            log(f'progress: {done}/{len(rows)} scans done, {busy} job(s) '
                'running')
            last = done
        if on_progress is not None:
            on_progress(ShardProgress(done, len(rows), running, attempt,
                                      by_shard))
        if ended:
            break
        time.sleep(settings.poll_seconds)
    _record_numbers(rows, out)
    for k, job in running.items():
        ending = job.ending()
        for row in todo:
            if row.shard == k and not finished(out, row):
                row.error = ending  # unless scans.csv says more
                row.status = 'failed'


def _shard_tables(rows: Sequence[ShardedRow],
                  out: Path) -> Dict[int, Dict[str, dict]]:
    """Each shard's ``scans.csv`` by folder (empty where unreadable)."""
    tables: Dict[int, Dict[str, dict]] = {}
    for k in {r.shard for r in rows}:
        tables[k] = _read_table(out / shard_folder(k) / SUMMARY_NAME)
    return tables


def _read_table(path: Path) -> Dict[str, dict]:
    try:
        with open(path, newline='', encoding='utf-8') as f:
            return {rec['folder']: rec for rec in csv.DictReader(f)}
    except (OSError, csv.Error, KeyError):
        return {}


def _record_numbers(rows: Sequence[ShardedRow], out: Path) -> None:
    """The slices and seconds of the scans a round did (a later round's
    batch lists them as skipped, without numbers)."""
    tables = _shard_tables(rows, out)
    for row in rows:
        rec = tables[row.shard].get(row.folder, {})
        if rec.get('status') == 'done':
            row.slices = _int(rec.get('slices'))
            row.total_seconds = _float(rec.get('total_seconds'))


def _final_status(rows: List[ShardedRow], out: Path) -> None:
    """Each row from its shard's ``scans.csv`` and its result set: done
    where ``findings.json`` is there (its numbers from this run, else from
    the last ``OUT/scans.csv``), else failed with the batch's reason (or
    the job's end)."""
    tables = _shard_tables(rows, out)
    before = _read_table(out / SUMMARY_NAME)
    for row in rows:
        rec = tables[row.shard].get(row.folder, {})
        if finished(out, row):
            if row.total_seconds is None and \
                    before.get(row.folder, {}).get('status') == 'done':
                row.slices = _int(before[row.folder].get('slices'))
                row.total_seconds = _float(
                    before[row.folder].get('total_seconds'))
            row.status, row.error = 'done', ''
            found = scan_findings(out, row)
            row.findings = len(found)
            row.best_score = (f"{found[0]['score']:.4f}" if found else '')
        else:
            row.status = 'failed'
            if rec.get('status') == 'failed' and rec.get('error'):
                row.error = rec['error']
            elif not row.error:
                row.error = 'not run'


def _int(text: Optional[str]) -> Optional[int]:
    return int(text) if text else None


def _float(text: Optional[str]) -> Optional[float]:
    return float(text) if text else None


