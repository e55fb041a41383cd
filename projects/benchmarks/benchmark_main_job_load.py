# Copyright (c) mmlesion contributors. All rights reserved.
"""Time the README's main job on a quiet machine and on a busy one.

Runs ``tools/run_demo.py`` (the README's main job, train + val) twice on the
same demo data, seed and thread setting: once alone, then beside
``--busy-procs`` processes that each keep one core busy (a stand-in for
another user's job). The machine's load is sampled every ``--interval``
seconds during each run: the runnable tasks (``procs_running`` of
``/proc/stat``, the instantaneous load) and the 1-minute load average. It
prints, per condition, the wall time, the load (mean and range) and the
ratio to the quiet run::

    python projects/benchmarks/benchmark_main_job_load.py
    python projects/benchmarks/benchmark_main_job_load.py --busy-procs 2
    python projects/benchmarks/benchmark_main_job_load.py --epochs 2 \\
        --work-dir /tmp/main_job_load

The demo data is generated before the first run and is not timed (the
README gives its time separately). Each run writes its own
``<work-dir>/<condition>/<timestamp>/`` folder, and a summary
``<work-dir>/main_job_load.json``. Torch's threads are the caller's: set
``OMP_NUM_THREADS`` to time another thread count.

Exit status: 0 when every run finished, 1 otherwise.
"""
import argparse
import dataclasses
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

from mmlesion_cli import tool_parser

REPO = Path(__file__).resolve().parents[2]
CONDITIONS = ('quiet', 'busy')
MAIN_JOB = REPO / 'tools' / 'run_demo.py'
#: keeps one core busy while the process whose pid it is given (this tool)
#: is its parent: it ends when the tool is gone, even when the tool is
#: killed, also before the busy process has started
BURNER = ('import os, sys\nparent = int(sys.argv[1])\n'
          'while os.getppid() == parent:\n    pass\n')


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
        condition (str): ``quiet`` or ``busy (N cores)``.
        busy_procs (int): processes beside it that each keep a core busy.
        seconds (float): wall time of the command.
        returncode (int): its exit status.
        samples (list[LoadSample]): the load, sampled while it ran.
    """

    condition: str
    busy_procs: int
    seconds: float
    returncode: int
    samples: List[LoadSample]

    def running_stats(self) -> tuple:
        """Mean, min and max runnable tasks over the samples."""
        return _mean_min_max([s.running for s in self.samples])

    def loadavg_stats(self) -> tuple:
        """Mean, min and max 1-minute load average over the samples."""
        return _mean_min_max([s.loadavg1 for s in self.samples])


def _mean_min_max(values: list) -> tuple:
    values = values or [0]
    return statistics.fmean(values), min(values), max(values)


def read_running(stat_path: str = '/proc/stat') -> int:
    """Runnable tasks now besides the reader, from ``procs_running``.

    The reading thread is itself running when it reads, so it is not
    counted. 0 where the file is unavailable.

    Args:
        stat_path (str): the kernel's statistics file.

    Returns:
        int: the number of runnable tasks.
    """
    try:
        with open(stat_path) as f:
            for line in f:
                if line.startswith('procs_running'):
                    return max(int(line.split()[1]) - 1, 0)
    except OSError:
        return 0
    return 0


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
                    running=read_running(),
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


def time_command(command: Sequence[str], condition: str, busy_procs: int,
                 interval: float) -> TimedRun:
    """Run ``command`` beside ``busy_procs`` busy processes, timed.

    Args:
        command (Sequence[str]): the command line.
        condition (str): the name of this condition in the report.
        busy_procs (int): processes that each keep a core busy meanwhile.
        interval (float): seconds between load samples.

    Returns:
        TimedRun: its time, exit status and load samples.
    """
    burners = start_burners(busy_procs)
    try:
        with LoadSampler(interval) as sampler:
            start = time.monotonic()
            returncode = subprocess.run(list(command)).returncode
            seconds = time.monotonic() - start
    finally:
        stop_burners(burners)
    return TimedRun(condition, busy_procs, seconds, returncode,
                    sampler.samples)


def main_job_command(args: argparse.Namespace, condition: str) -> List[str]:
    """The README's main job for one condition (its own work dir)."""
    cmd = [
        sys.executable,
        str(MAIN_JOB), '--seed',
        str(args.seed), '--data-root',
        str(Path(args.work_dir) / 'data'), '--work-dir',
        str(Path(args.work_dir) / condition)
    ]
    if args.epochs is not None:
        cmd += ['--epochs', str(args.epochs)]
    return cmd


def format_report(runs: Sequence[TimedRun], cpus: int, threads: str) -> str:
    """The table printed at the end.

    Args:
        runs (Sequence[TimedRun]): the runs; the ratio column is to the
            first one when it is the quiet run (``nan`` otherwise).
        cpus (int): CPUs of the machine.
        threads (str): the ``OMP_NUM_THREADS`` the runs saw.

    Returns:
        str: the report.
    """
    quiet = runs[0].seconds if runs[0].busy_procs == 0 else None
    lines = [
        f'main job on {cpus} CPUs, OMP_NUM_THREADS={threads}',
        f'{"condition":<16}{"seconds":>9}{"minutes":>9}'
        f'{"runnable tasks mean (min-max)":>32}{"loadavg 1 min mean":>20}'
        f'{"x quiet":>9}',
    ]
    for run in runs:
        r_mean, r_min, r_max = run.running_stats()
        l_mean, _, _ = run.loadavg_stats()
        status = '' if run.returncode == 0 else f'  (exit {run.returncode})'
        lines.append(f'{run.condition:<16}{run.seconds:>9.0f}'
                     f'{run.seconds / 60:>9.1f}'
                     f'{f"{r_mean:.1f} ({r_min}-{r_max})":>32}'
                     f'{l_mean:>20.2f}'
                     f'{run.seconds / quiet if quiet else float("nan"):>9.2f}'
                     f'{status}')
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--busy-procs', type=int, default=1,
        help='processes that each keep one core busy during the busy run')
    parser.add_argument(
        '--epochs', type=int,
        help="epochs of the main job (default: the config's 36)")
    parser.add_argument('--seed', type=int, default=0, help='main job seed')
    parser.add_argument(
        '--work-dir', default='work_dirs/main_job_load',
        help='data, both runs and main_job_load.json go here')
    parser.add_argument(
        '--interval', type=float, default=5.0,
        help='seconds between load samples')
    parser.add_argument(
        '--conditions', nargs='+', choices=CONDITIONS, default=CONDITIONS,
        help='which runs, in this order (the ratio column needs the quiet '
        'run first)')
    args = parser.parse_args(argv)
    if args.busy_procs < 0:
        parser.error('--busy-procs must be 0 or more')
    return args


def _stop_on_sigterm(signum, frame) -> None:
    """A killed benchmark ends its main job and busy processes too."""
    raise SystemExit(128 + signum)


def write_summary(path: Path, runs: Sequence[TimedRun]) -> None:
    """``main_job_load.json``, rewritten whole after each run."""
    summary = {
        'cpus': os.cpu_count(),
        'omp_num_threads': os.environ.get('OMP_NUM_THREADS'),
        'runs': [dataclasses.asdict(run) for run in runs],
    }
    from mmlesion.utils.writing.atomic import atomic_write_json
    atomic_write_json(str(path), summary, indent=1)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    from mmlesion.datasets.demo import generate_demo_deeplesion
    data = work / 'data'
    if not (data / 'DL_info.csv').is_file():
        generate_demo_deeplesion(data, seed=args.seed, show_progress=False)
    cores = 'core' if args.busy_procs == 1 else 'cores'
    runs: List[TimedRun] = []
    for name in args.conditions:
        busy = args.busy_procs if name == 'busy' else 0
        condition = f'busy ({busy} {cores})' if name == 'busy' else name
        cmd = main_job_command(args, name)
        print(f'--- {condition}: {" ".join(cmd)}', flush=True)
        runs.append(time_command(cmd, condition, busy, args.interval))
        write_summary(work / 'main_job_load.json', runs)
    print(format_report(runs, os.cpu_count() or 1,
                        os.environ.get('OMP_NUM_THREADS', 'unset')))
    return 0 if all(run.returncode == 0 for run in runs) else 1


if __name__ == '__main__':
    sys.exit(main())
