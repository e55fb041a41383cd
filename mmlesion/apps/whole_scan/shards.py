# Copyright (c) mmlesion contributors. All rights reserved.
"""Work items sharded over several jobs, forked processes or Slurm jobs
(:func:`run_sharded_inference`; ``tools/infer_volume.py --jobs N``;
docs/archive.md): shard ``k`` runs in ``OUT/shard_<k>/``, and
``OUT/shards.json`` keeps each item's shard, so a re-run skips the
finished items whatever its ``jobs``.
"""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union, get_args)

from mmengine.config import Config

from mmlesion.apis.whole_scan.settings import Finishing, RunSettings
from mmlesion.apis.whole_scan.write import OutDirLock, output_paths
from mmlesion.utils.distributed.forked_call import fork_available
from mmlesion.utils.distributed.guard import exit_with_parent
from mmlesion.utils.tool_defaults import tool_defaults
from mmlesion.utils.writing.atomic import (OutputDirError, atomic_write_json,
                                           remove_stale_temporaries_of)

from .batch import (SUMMARY_NAME, BatchOptions, read_csv_rows,
                    run_batch_inference)
from .scan_list import NamedScan, named_scans
from .shard_summary import (FINDINGS_TABLE, ShardedRow, scan_findings,
                            shard_folder, write_sharded_outputs)

#: The defaults ``tools/infer_volume.py --help`` shows of the Slurm jobs.
_SLURM = tool_defaults(__file__)['ShardSettings']

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
    cpus_per_task: int = _SLURM['cpus_per_task']
    gpus_per_job: int = _SLURM['gpus_per_job']
    mem_gb: int = _SLURM['mem_gb']
    timeout_min: int = _SLURM['timeout_min']
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


class ShardWork:
    """The items of a sharded run and what a job does with its share: here
    scan files, each shard a batch
    (:func:`~mmlesion.apps.whole_scan.batch.run_batch_inference`).

    Args:
        scans (Sequence[str | NamedScan]): the scans (two of one results
            folder refused).
    """

    def __init__(self, scans: Sequence[Union[str, NamedScan]]) -> None:
        self.scans = named_scans(scans)

    def items(self) -> List[NamedScan]:
        """Each item (``scan``: what ``scans.csv`` names it by, ``folder``:
        its results folder in its shard's), in order."""
        return list(self.scans)

    def only(self, folders: Sequence[str]) -> 'ShardWork':
        """The work of the items of these results folders (a shard's)."""
        from copy import copy
        keep = set(folders)
        part = copy(self)
        part.scans = [s for s in self.scans if s.folder in keep]
        return part

    def run(self, job: 'ShardJob') -> int:
        """Run the items into ``job.out_dir`` (in the job); the number
        that failed."""
        run = job.run
        rows = run_batch_inference(run.config,
                                   run.checkpoint,
                                   self.scans,
                                   run.out_dir,
                                   run.run_settings,
                                   options=BatchOptions(
                                       overlap=run.overlap,
                                       finishing=run.finishing))
        return sum(row.status == 'failed' for row in rows)

    def finished(self, folder: Path, name: str) -> bool:
        """Whether the item's result set is in the shard's ``folder``
        (``findings.json``, written last)."""
        return output_paths(folder / name).json.is_file()

    def reasons(self, folder: Path) -> Dict[str, str]:
        """The one-line reason of each item the shard's last run failed
        (its ``scans.csv``)."""
        return {name: rec['error'] for name, rec in
                read_csv_rows(folder / SUMMARY_NAME).items()
                if rec.get('status') == 'failed' and rec.get('error')}

    def output_names(self) -> Tuple[str, ...]:
        """The files :meth:`write_outputs` writes into ``OUT``."""
        return ()

    def round_ended(self, folders: Sequence[Path]) -> None:
        """What the work keeps of a round once its jobs ended (``folders``:
        their shards'), before a retry rewrites them (nothing here)."""

    def write_outputs(self, rows: Sequence[ShardedRow], out: Path) -> None:
        """What the work adds to the merged tables (nothing here)."""


@dataclass
class ShardedRun:
    """What a sharded run runs and how
    (:func:`run_sharded_inference`, :func:`~mmlesion.apis.whole_scan.
    server_shards.run_sharded_query`).

    Args:
        config (str | Config): a 2.5D config.
        checkpoint (str, optional): its weights (None: random weights).
        out_dir (str): ``shard_<k>/``, ``shards.json``, ``scans.csv``,
            ``findings.csv``, ``summary.html`` / ``summary.png``,
            ``logs/`` (a job's: its shard's folder).
        run_settings, overlap, finishing: as
            :func:`~mmlesion.apps.whole_scan.batch.run_batch_inference`
            (``run_settings.overwrite`` runs finished items again).
        shards (ShardSettings): the jobs.
        log (callable): gets the progress lines.
        on_progress (callable, optional): called with a
            :class:`ShardProgress` at each count.
    """
    config: Union[str, Config]
    checkpoint: Optional[str]
    out_dir: str
    run_settings: RunSettings = field(default_factory=RunSettings)
    shards: ShardSettings = field(default_factory=ShardSettings)
    overlap: bool = True
    finishing: Finishing = field(default_factory=Finishing)
    log: Callable[[str], None] = print
    on_progress: Optional[Callable[['ShardProgress'], None]] = None


@dataclass
class ShardJob:
    """One shard's work, run in a job (pickled for Slurm)."""
    run: ShardedRun  # out_dir: the shard's folder; no ``on_progress``
    work: ShardWork  # the shard's items only

    def __call__(self) -> int:
        """Run the shard's work; the number of its items that failed."""
        cpus = os.environ.get('SLURM_CPUS_PER_TASK')
        if cpus and 'OMP_NUM_THREADS' not in os.environ:
            import torch
            torch.set_num_threads(int(cpus))
        # a Config (not a file) brings no imports of its own into a job
        # that did not fork from the caller (Slurm)
        config = self.run.config
        imports = (config.get('custom_imports')
                   if isinstance(config, Config) else None)
        if imports:
            from mmengine.utils import import_modules_from_strings
            import_modules_from_strings(**imports)
        return self.work.run(self)

    def checkpoint(self) -> Any:
        """submitit: a pre-empted job is requeued; the batch then skips
        the scans it finished."""
        import submitit
        return submitit.helpers.DelayedSubmission(self)


def plan_shards(names: Sequence[str], out: Path, jobs: int) -> List[int]:
    """The shard of each scan (by its folder name): the one
    ``OUT/shards.json`` names, else the one with the fewest scans."""
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


def finished(work: ShardWork, out: Path, row: ShardedRow) -> bool:
    """:meth:`ShardWork.finished` of ``row`` in its shard's folder."""
    return work.finished(out / shard_folder(row.shard), row.folder)


# jobs ----------------------------------------------------------------


class _LocalJob:
    """A shard in a forked (else spawned) process, logging to ``log``."""

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
        why = _last_error(self.log)
        return (f'job process {self.id} ended (exit code '
                f'{self.process.exitcode}{": " + why if why else ""}; log: '
                f'{self.log})')

    def wait(self, seconds: float) -> None:
        """Wait for the process to end (``seconds`` at most)."""
        self.process.join(seconds)

    def kill(self) -> None:
        """SIGKILL to the job's process group, as ``scancel`` does."""
        if self.process.is_alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except OSError:  # not yet its own group
                self.process.kill()


def _run_logged(job: ShardJob, log: str) -> None:
    """A local shard: output to ``log``, exit 1 when a scan failed; it ends
    with what it forked when the run's process dies (killed too)."""
    os.setpgid(0, 0)  # its own group: kill() ends what it forks too
    signal.signal(signal.SIGTERM, _end_group)
    exit_with_parent(signal.SIGTERM)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    code = 1
    try:
        code = int(job() > 0)
    except BaseException as err:  # noqa: BLE001 (the log says why)
        why = '' if isinstance(err, OutputDirError) else \
            traceback.format_exc()  # a lock or a full disk: its line only
        line = str(err).replace('\n', ' ') or type(err).__name__
        sys.stderr.flush()
        os.write(2, f'{why}{ERROR_PREFIX}{line}\n'.encode())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


#: How a local job's log says why it ended early (its last such line).
ERROR_PREFIX = 'error: '


def _last_error(log: Path) -> str:
    """The last ``error:`` line of a job's log (its end), ``''`` if
    none."""
    try:
        with open(log, 'rb') as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            tail = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    lines = [line for line in tail.splitlines()
             if line.startswith(ERROR_PREFIX)]
    return lines[-1][len(ERROR_PREFIX):] if lines else ''


def _end_group(*_) -> None:
    """SIGTERM to a local job (its run died): end its process group."""
    os.killpg(0, signal.SIGKILL)


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
        subprocess.run(['scancel', self.id],
                       capture_output=True, timeout=30)

    def wait(self, seconds: float) -> None:
        """Slurm ends a cancelled job itself: no wait here."""


def _launch(jobs: Dict[int, ShardJob], settings: ShardSettings, out: Path,
            running: Dict[int, Any]) -> None:
    """Start one job per shard (local processes or one Slurm array) into
    ``running``, each as soon as it started: a Ctrl-C while they start
    ends those already running."""
    logs = out / 'logs'
    logs.mkdir(parents=True, exist_ok=True)
    if settings.launcher == 'local':
        for k, job in jobs.items():
            running[k] = _LocalJob(job, logs / f'{shard_folder(k)}.log')
        return
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
    running.update({k: _SlurmJob(job) for k, job in submitted.items()})


@dataclass
class ShardProgress:
    """What the parent knows while the jobs run (for ``on_progress``)."""
    done: int
    total: int
    running: Dict[int, Any]
    attempt: int
    by_shard: Dict[int, int]


# the run -------------------------------------------------------------


def run_sharded_inference(scans: Union[ShardWork, Sequence[Union[
                              str, NamedScan]]],
                          settings: ShardedRun) -> List[ShardedRow]:
    """Run the items as shards in several jobs (see the module's doc).

    Args:
        scans (ShardWork | Sequence[str | NamedScan]): the work, or the
            scan files of a :class:`ShardWork`.
        settings (ShardedRun): the model, ``OUT``, the jobs.

    Returns:
        list[ShardedRow]: one row per item, as ``OUT/scans.csv``.

    Raises:
        ValueError: no item, two items of one folder name, a bad setting.
        OutputDirError: ``out_dir`` cannot be written or another run
            writes into it.
    """
    settings.shards.check()
    work = scans if isinstance(scans, ShardWork) else ShardWork(scans)
    items = work.items()
    if not items:
        raise ValueError('no scan to run')
    out = Path(settings.out_dir)
    lock = OutDirLock(out)
    lock.acquire()
    try:
        out.mkdir(parents=True, exist_ok=True)
        # what a killed run left of its tables and page
        remove_stale_temporaries_of(*(str(out / name) for name in (
            SUMMARY_NAME, FINDINGS_TABLE, PLAN_NAME, 'summary.png',
            'summary.html', *work.output_names())))
        plan = plan_shards([i.folder for i in items], out,
                           min(settings.shards.jobs, len(items)))
        rows = [ShardedRow(i.scan, i.folder, k)
                for i, k in zip(items, plan)]
        todo = [r for r in rows if settings.run_settings.overwrite
                or not finished(work, out, r)]
        run = settings
        for attempt in range(1 + settings.shards.retries):
            if not todo:
                break
            if attempt:
                settings.log(f'retrying {len(todo)} scan(s) not finished: '
                             + ', '.join(r.folder for r in todo))
            _run_round(run, work, attempt, rows, todo)
            # a retry keeps what the round made
            run = replace(run, run_settings=replace(run.run_settings,
                                                    overwrite=False))
            todo = [r for r in todo if not finished(work, out, r)]
        _final_status(work, rows, out)
        write_sharded_outputs(rows, out)
        work.write_outputs(rows, out)
    finally:
        lock.release()
    return rows


def _run_round(run: ShardedRun, work: ShardWork, attempt: int,
               rows: List[ShardedRow], todo: List[ShardedRow]) -> None:
    """One job per shard with items to do, each over its whole shard;
    wait, counting the finished items."""
    out, settings, log = Path(run.out_dir), run.shards, run.log
    for row in todo:
        row.attempts += 1
    jobs = {k: ShardJob(replace(run, out_dir=str(out / shard_folder(k)),
                                log=print, on_progress=None),
                        work.only([r.folder for r in rows if r.shard == k]))
            for k in sorted({r.shard for r in todo})}
    running: Dict[int, Any] = {}
    try:  # a Ctrl-C as soon as a job runs ends it (else the run waits)
        _launch(jobs, settings, out, running)
        log(f'{len(running)} job(s) started ({settings.launcher}): '
            + ', '.join(f'{shard_folder(k)} {j.id}'
                        for k, j in running.items()))
        _wait(run, work, attempt, rows, running)
    except KeyboardInterrupt:
        raise ShardsInterrupted(_end_jobs(running)) from None
    work.round_ended([out / shard_folder(k) for k in running])
    _record_numbers(rows, out)
    for k, job in running.items():
        ending = job.ending()
        for row in todo:
            if row.shard == k and not finished(work, out, row):
                row.error = ending  # unless the shard says more
                row.status = 'failed'


class ShardsInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) while the jobs ran: they were ended; the message
    says which, in one line."""


def _end_jobs(running: Dict[int, Any], grace_s: float = 10.) -> str:
    """Kill every job (and what it forked: its process group, or
    ``scancel``), wait for them; the line that says so."""
    for job in running.values():
        job.kill()
    for job in running.values():
        job.wait(grace_s)
    return (f'{len(running)} job(s) ended (' + ', '.join(
        f'{shard_folder(k)} {j.id}' for k, j in running.items()) + '); '
        '--out-dir keeps the finished scans: run the same command again to '
        'go on')


def _wait(run: ShardedRun, work: ShardWork, attempt: int,
          rows: List[ShardedRow], running: Dict[int, Any]) -> None:
    """Wait for the jobs, logging the finished items as they grow."""
    out, settings, log = Path(run.out_dir), run.shards, run.log
    last = None
    while True:
        ended = all(job.done() for job in running.values())
        by_shard = {k: sum(finished(work, out, r) for r in rows
                           if r.shard == k)
                    for k in {r.shard for r in rows}}
        done = sum(by_shard.values())
        busy = sum(not job.done() for job in running.values())
        if done != last or ended:
            log(f'progress: {done}/{len(rows)} scans done, {busy} job(s) '
                'running')
            last = done
        if run.on_progress is not None:
            run.on_progress(ShardProgress(done, len(rows), running, attempt,
                                          by_shard))
        if ended:
            break
        time.sleep(settings.poll_seconds)


def _record_numbers(rows: Sequence[ShardedRow], out: Path) -> None:
    """The slices and seconds of the scans a round did (a later round's
    batch lists them as skipped, without numbers)."""
    tables = {k: read_csv_rows(out / shard_folder(k) / SUMMARY_NAME)
              for k in {r.shard for r in rows}}
    for row in rows:
        _take_done(row, tables[row.shard].get(row.folder, {}),
                   'slices', 'total_seconds')


def _final_status(work: ShardWork, rows: List[ShardedRow],
                  out: Path) -> None:
    """Each row from its shard: done where the item is finished (numbers
    from this run, else the last ``OUT/scans.csv``), else failed with the
    shard's reason."""
    reasons = {k: work.reasons(out / shard_folder(k))
               for k in {r.shard for r in rows}}
    before = read_csv_rows(out / SUMMARY_NAME)
    for row in rows:
        if finished(work, out, row):
            earlier = before.get(row.folder, {})
            if row.total_seconds is None:
                _take_done(row, earlier, 'slices', 'total_seconds')
            if not row.attempts:
                _take_done(row, earlier, 'attempts')
            row.status, row.error = 'done', ''
            found = scan_findings(out, row)
            row.findings = len(found)
            row.best_score = (f"{found[0]['score']:.4f}" if found else '')
        else:
            row.status = 'failed'
            if reasons[row.shard].get(row.folder):
                row.error = reasons[row.shard][row.folder]
            elif not row.error:
                row.error = 'not run'


def _take_done(row: ShardedRow, rec: Dict[str, str], *names: str) -> None:
    """``row``'s fields ``names`` from a ``done`` record of a
    ``scans.csv``, each text parsed by its field's type (``''``: the
    field's default)."""
    for item in fields(row) if rec.get('status') == 'done' else ():
        if item.name in names:
            kind = (get_args(item.type) or (item.type, ))[0]
            text = rec.get(item.name)
            setattr(row, item.name, kind(text) if text else item.default)
