# Copyright (c) mmlesion contributors. All rights reserved.
"""Time the README's main job with today's threading and with the tools'
choice, quiet and beside busy processes, in one run.

Runs ``tools/run_demo.py`` (the README's main job, train + val) on the same
demo data and seed under two threading settings:

* ``today``: torch's own (``MMLESION_AUTO_THREADS=0``: one thread per core,
  OpenMP's threads spinning while they wait);
* ``auto``: what every tool now does by default (``mmlesion_cli/threads.py``:
  torch's own on a quiet machine; ``OMP_WAIT_POLICY=PASSIVE`` and the
  thread count from the cores free at the start on a busy one),

each alone and beside each of ``--busy-procs`` processes that keep one core
busy apiece (a stand-in for other users' jobs). The cases are interleaved:
every repetition runs every (busy, setting) pair once, the order of the two
settings alternating, so that the noise of a shared machine hits both alike.
A user's own ``OMP_NUM_THREADS`` / ``OMP_WAIT_POLICY`` reach both settings.

The machine's load is sampled every ``--interval`` seconds during each run
(runnable tasks from ``/proc/stat`` and the 1-minute load average). The
report gives per case the median wall time of the job, the median time of a
training iteration (from the job's log: the part that grows with the epochs,
while start-up and evaluation do not), the torch threads the job used (from
its ``froc_val.json``), the load, the ratio to the same setting's quiet
case and ``auto`` / ``today``::

    python projects/benchmarks/benchmark_main_job_load.py
    python projects/benchmarks/benchmark_main_job_load.py --busy-procs 0 1 \\
        --repeats 3 --train-images 0 --epochs 2

By default each job is short (1 epoch on 40 training images, 4 val images:
about 45 s quiet on 2 cores); ``--train-images 0 --val-images 0 --epochs 36``
is the README's job. The demo data is generated before the first run and is
not timed. Each run writes its own ``<work-dir>/<setting>_busy<N>_r<k>/``
folder, and ``<work-dir>/main_job_load.json`` after each run.

Exit status: 0 when every run finished, 1 otherwise.
"""
import argparse
import dataclasses
import glob
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

#: the user's own OpenMP variables, read before ``mmlesion_cli`` (imported
#: below) chooses this process's threading
USER_OMP = {k: os.environ.get(k) for k in ('OMP_NUM_THREADS',
                                           'OMP_WAIT_POLICY')}

from mmlesion_cli import tool_parser  # noqa: E402
from mmlesion_cli.threads import (AUTO_ENV, CHOSEN_ENV,  # noqa: E402
                                  CHOSEN_WAIT_ENV, busy_cores)

REPO = Path(__file__).resolve().parents[2]
SETTINGS = ('today', 'auto')
MAIN_JOB = REPO / 'tools' / 'run_demo.py'
#: keeps one core busy while the process whose pid it is given (this tool)
#: is its parent: it ends when the tool is gone, even when the tool is
#: killed, also before the busy process has started
BURNER = ('import os, sys\nparent = int(sys.argv[1])\n'
          'while os.getppid() == parent:\n    pass\n')
ITER_TIME = re.compile(r'Epoch\(train\).*?\stime: ([0-9.]+)')


@dataclasses.dataclass
class LoadSample:
    """One look at the machine's load.

    Attributes:
        seconds (float): time since the run started.
        running (int): runnable tasks at that moment (``procs_running``).
        loadavg1 (float): the 1-minute load average.
    """

    seconds: float
    running: int
    loadavg1: float


@dataclasses.dataclass
class TimedRun:
    """One timed command and the load seen while it ran.

    Attributes:
        setting (str): ``today`` or ``auto`` (the threading).
        busy_procs (int): processes beside it that each keep a core busy.
        seconds (float): wall time of the command.
        returncode (int): its exit status.
        samples (list[LoadSample]): the load, sampled while it ran.
        repeat (int): the repetition it belongs to.
        iteration_seconds (float, optional): median training iteration
            time in the job's log (its first logged one left out).
        torch_threads (int, optional): the torch threads the job used.
    """

    setting: str
    busy_procs: int
    seconds: float
    returncode: int
    samples: List[LoadSample]
    repeat: int = 0
    iteration_seconds: Optional[float] = None
    torch_threads: Optional[int] = None

    def running_stats(self) -> tuple:
        """Mean, min and max runnable tasks over the samples."""
        return _mean_min_max([s.running for s in self.samples])

    def loadavg_stats(self) -> tuple:
        """Mean, min and max 1-minute load average over the samples."""
        return _mean_min_max([s.loadavg1 for s in self.samples])


def _mean_min_max(values: list) -> tuple:
    values = values or [0]
    return statistics.fmean(values), min(values), max(values)


class LoadSampler:
    """Samples the load in a background thread until stopped.

    Args:
        interval (float): seconds between samples.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: List[LoadSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = 0.0

    def _loop(self) -> None:
        while True:
            self.samples.append(
                LoadSample(
                    seconds=time.monotonic() - self._start,
                    running=busy_cores(looks=1),
                    loadavg1=os.getloadavg()[0]))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> 'LoadSampler':
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def start_burners(count: int) -> List[subprocess.Popen]:
    """Start ``count`` processes that each keep one core busy.

    Args:
        count (int): how many.

    Returns:
        list[subprocess.Popen]: the processes (stop them with
        :func:`stop_burners`).
    """
    return [
        subprocess.Popen([sys.executable, '-c', BURNER, str(os.getpid())])
        for _ in range(count)
    ]


def stop_burners(procs: Sequence[subprocess.Popen]) -> None:
    """Kill the busy processes and wait for them."""
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def time_command(command: Sequence[str], setting: str, busy_procs: int,
                 interval: float,
                 env: Optional[Dict[str, str]] = None) -> TimedRun:
    """Run ``command`` beside ``busy_procs`` busy processes, timed.

    Args:
        command (Sequence[str]): the command line.
        setting (str): the threading setting, for the report.
        busy_procs (int): processes that each keep a core busy meanwhile.
        interval (float): seconds between load samples.
        env (dict, optional): the command's environment (default: this
            process's).

    Returns:
        TimedRun: its time, exit status and load samples.
    """
    burners = start_burners(busy_procs)
    try:
        with LoadSampler(interval) as sampler:
            start = time.monotonic()
            returncode = subprocess.run(list(command), env=env).returncode
            seconds = time.monotonic() - start
    finally:
        stop_burners(burners)
    return TimedRun(setting, busy_procs, seconds, returncode,
                    sampler.samples)


def setting_env(setting: str) -> Dict[str, str]:
    """The environment of a job under one threading setting.

    The user's own ``OMP_*`` variables (:data:`USER_OMP`) are kept, those
    this process's start chose are dropped; ``today`` adds
    ``MMLESION_AUTO_THREADS=0``.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in (CHOSEN_ENV, CHOSEN_WAIT_ENV, AUTO_ENV, *USER_OMP)}
    env.update({k: v for k, v in USER_OMP.items() if v is not None})
    if setting == 'today':
        env[AUTO_ENV] = '0'
    return env


def main_job_command(args: argparse.Namespace, run_dir: Path) -> List[str]:
    """The README's main job, its runs in ``run_dir``, sized by ``args``."""
    cmd = [
        sys.executable,
        str(MAIN_JOB), '--seed',
        str(args.seed), '--data-root',
        str(Path(args.work_dir) / 'data'), '--work-dir',
        str(run_dir)
    ]
    if args.epochs is not None:
        cmd += ['--epochs', str(args.epochs)]
    options = [f'{split}_dataloader.dataset.indices={n}'
               for split, n in (('train', args.train_images),
                                ('val', args.val_images)) if n]
    if options:
        cmd += ['--cfg-options', *options, 'default_hooks.logger.interval=5']
    return cmd


def read_job_results(run_dir: Path) -> tuple:
    """Median training iteration time and torch threads of a finished job.

    Args:
        run_dir (Path): the job's ``--work-dir``.

    Returns:
        tuple: ``(seconds or None, threads or None)``, from the log and
        ``froc_val.json`` of its newest ``<timestamp>/`` folder.
    """
    logs = sorted(glob.glob(str(run_dir / '*' / '*.log')))
    times = []
    if logs:
        with open(logs[-1]) as f:
            times = [float(m.group(1)) for m in map(ITER_TIME.search, f) if m]
    seconds = statistics.median(times[1:] or times) if times else None
    records = sorted(glob.glob(str(run_dir / '*' / 'froc_val.json')))
    threads = None
    if records:
        with open(records[-1]) as f:
            threads = json.load(f).get('torch_threads')
    return seconds, threads


def _median(values: list) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float('nan')


def format_report(runs: Sequence[TimedRun], cpus: int) -> str:
    """The table printed at the end: one line per (setting, busy) case.

    Args:
        runs (Sequence[TimedRun]): the runs, every repetition.
        cpus (int): CPUs of the machine.

    Returns:
        str: the report. ``x quiet`` is the case's median iteration time
        over the same setting's quiet one, ``/ today`` over ``today``'s with
        the same busy processes (``nan`` where that case is missing).
    """
    user = ', '.join(f'{k}={v}' for k, v in USER_OMP.items() if v) or \
        'no OMP_* variable set by the user'
    lines = [
        f'main job on {cpus} CPUs ({user}); medians over the repetitions',
        f'{"setting":<8}{"busy":>5}{"runs":>5}{"threads":>8}{"wall s":>8}'
        f'{"iter s":>8}{"runnable (min-max)":>20}{"loadavg1":>9}'
        f'{"x quiet":>8}{"/ today":>8}'
    ]
    cases: Dict[tuple, List[TimedRun]] = {}
    for run in runs:
        cases.setdefault((run.setting, run.busy_procs), []).append(run)
    iters = {key: _median([r.iteration_seconds for r in group])
             for key, group in cases.items()}
    for (setting, busy), group in sorted(
            cases.items(), key=lambda kv: (SETTINGS.index(kv[0][0])
                                           if kv[0][0] in SETTINGS else 9,
                                           kv[0][1])):
        r_mean = statistics.fmean(r.running_stats()[0] for r in group)
        r_min = min(r.running_stats()[1] for r in group)
        r_max = max(r.running_stats()[2] for r in group)
        load = statistics.fmean(r.loadavg_stats()[0] for r in group)
        threads = sorted({r.torch_threads for r in group
                          if r.torch_threads is not None})
        failed = sum(r.returncode != 0 for r in group)
        it = iters[(setting, busy)]
        quiet = iters.get((setting, 0), float('nan'))
        today = iters.get(('today', busy), float('nan'))
        lines.append(
            f'{setting:<8}{busy:>5}{len(group):>5}'
            f'{"/".join(map(str, threads)) or "?":>8}'
            f'{_median([r.seconds for r in group]):>8.1f}{it:>8.3f}'
            f'{f"{r_mean:.1f} ({r_min}-{r_max})":>20}{load:>9.2f}'
            f'{it / quiet:>8.2f}{it / today:>8.2f}'
            + (f'  ({failed} failed)' if failed else ''))
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--busy-procs', type=int, nargs='+', default=[0, 1, 3],
        help='the cases: this many processes each keep one core busy')
    parser.add_argument(
        '--settings', nargs='+', choices=SETTINGS, default=list(SETTINGS),
        help='the threading settings compared')
    parser.add_argument('--repeats', type=int, default=2,
                        help='repetitions of every case (interleaved)')
    parser.add_argument(
        '--epochs', type=int, default=1,
        help="epochs of the main job (the README's: 36)")
    parser.add_argument(
        '--train-images', type=int, default=40,
        help='train on the first N training images (0: all)')
    parser.add_argument(
        '--val-images', type=int, default=4,
        help='validate on the first N val images (0: all)')
    parser.add_argument('--seed', type=int, default=0, help='main job seed')
    parser.add_argument(
        '--work-dir', default='work_dirs/main_job_load',
        help='data, every run and main_job_load.json go here')
    parser.add_argument(
        '--interval', type=float, default=2.0,
        help='seconds between load samples')
    args = parser.parse_args(argv)
    if min(args.busy_procs) < 0 or args.repeats < 1:
        parser.error('--busy-procs must be 0 or more, --repeats 1 or more')
    return args


def _stop_on_sigterm(signum, frame) -> None:
    """A killed benchmark ends its main job and busy processes too."""
    raise SystemExit(128 + signum)


def write_summary(path: Path, runs: Sequence[TimedRun]) -> None:
    """``main_job_load.json``, rewritten whole after each run."""
    summary = {
        'cpus': os.cpu_count(),
        'user_omp': USER_OMP,
        'runs': [dataclasses.asdict(run) for run in runs],
    }
    from mmlesion.utils.writing.atomic import atomic_write_json
    atomic_write_json(str(path), summary, indent=1)


def schedule(args: argparse.Namespace) -> List[tuple]:
    """``(repeat, busy, setting)`` in run order: every repetition runs every
    case, the settings' order alternating between cases."""
    order, flip = [], False
    for repeat in range(args.repeats):
        for busy in args.busy_procs:
            settings = args.settings[::-1] if flip else args.settings
            order += [(repeat, busy, setting) for setting in settings]
            flip = not flip
    return order


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    from mmlesion.apps.demo import generate_demo_deeplesion
    data = work / 'data'
    if not (data / 'DL_info.csv').is_file():
        generate_demo_deeplesion(data, seed=args.seed, show_progress=False)
    runs: List[TimedRun] = []
    for repeat, busy, setting in schedule(args):
        run_dir = work / f'{setting}_busy{busy}_r{repeat}'
        cmd = main_job_command(args, run_dir)
        print(f'--- {setting}, {busy} busy, repetition {repeat + 1}, load '
              f'{os.getloadavg()[0]:.2f}: {" ".join(cmd)}', flush=True)
        run = time_command(cmd, setting, busy, args.interval,
                           setting_env(setting))
        run.repeat = repeat
        run.iteration_seconds, run.torch_threads = read_job_results(run_dir)
        runs.append(run)
        write_summary(work / 'main_job_load.json', runs)
    print(format_report(runs, os.cpu_count() or 1))
    return 0 if all(run.returncode == 0 for run in runs) else 1


if __name__ == '__main__':
    sys.exit(main())
