# Copyright (c) mmlesion contributors. All rights reserved.
"""Run a study's seeds in parallel processes (``--jobs``).

The rows of one seed depend on each other (a row may start from another
row's checkpoint of the same seed); the seeds do not. ``--jobs N`` therefore
splits the seeds into ``N`` groups and runs the same tool command once per
group in a child process (``--seeds <group> --jobs 1``); the parent then
continues as a normal run, which finds every row/seed stored and only writes
the tables and pictures. Same seeds and threads give the same numbers
whether the seeds run one after another or side by side (the study runner's
results depend on the seed, not on the process).

Each child gets ``OMP_NUM_THREADS`` = the CPU cores divided by the jobs
(at least 1), unless the caller set it; its output goes to
``<work dir>/jobs/seeds_<s1>-<s2>.log`` (appended to, after a header line
with the date). Every ``poll_s`` seconds the parent prints each job's last
``study:`` line if it is new.
"""
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Callable, List, Optional, Sequence

#: options removed from the parent's command line before the children's
#: ``--seeds <group> --jobs 1`` are appended
_VALUED = ('--seeds', '--jobs')


def split_seeds(seeds: Sequence[int], jobs: int) -> List[List[int]]:
    """Seeds dealt round-robin into at most ``jobs`` non-empty groups.

    Raises:
        ValueError: ``jobs`` < 1.
    """
    if jobs < 1:
        raise ValueError(f'--jobs must be at least 1, got {jobs}')
    groups: List[List[int]] = [[] for _ in range(min(jobs, len(seeds)))]
    for i, seed in enumerate(seeds):
        groups[i % len(groups)].append(int(seed))
    return groups


def child_argv(argv: Sequence[str], seeds: Sequence[int]) -> List[str]:
    """``argv`` without its ``--seeds`` / ``--jobs`` values, plus
    ``--seeds <seeds> --jobs 1``."""
    out: List[str] = []
    skipping = False
    for token in argv:
        if token in _VALUED or token.split('=', 1)[0] in _VALUED:
            skipping = '=' not in token
            continue
        if skipping and not token.startswith('-'):
            continue
        skipping = False
        out.append(token)
    return out + ['--seeds'] + [str(s) for s in seeds] + ['--jobs', '1']


def _last_study_line(path: str) -> str:
    try:
        with open(path, errors='replace') as f:
            lines = [ln.strip() for ln in f if ln.startswith('study:')]
    except OSError:
        return ''
    return lines[-1] if lines else 'starting'


def run_seed_jobs(tool: str,
                  argv: Sequence[str],
                  seeds: Sequence[int],
                  jobs: int,
                  work_dir: str,
                  poll_s: float = 60.,
                  log: Callable[[str], None] = print) -> None:
    """Run ``tool`` once per seed group in child processes and wait.

    Args:
        tool (str): the tool's script path (``__file__``).
        argv (Sequence[str]): the tool's own command line (no program).
        seeds (Sequence[int]): all the study's seeds.
        jobs (int): parallel processes (at most one per seed).
        work_dir (str): the study folder (logs go to ``jobs/`` in it).
        poll_s (float): seconds between progress lines.
        log (callable): progress lines.

    Raises:
        RuntimeError: a child failed; names its seeds, exit code and log.
    """
    groups = split_seeds(seeds, jobs)
    log_dir = osp.join(work_dir, 'jobs')
    os.makedirs(log_dir, exist_ok=True)
    threads = os.environ.get('OMP_NUM_THREADS') or str(
        max(1, (os.cpu_count() or 1) // len(groups)))
    env = dict(os.environ, OMP_NUM_THREADS=threads,
               MKL_NUM_THREADS=os.environ.get('MKL_NUM_THREADS', threads))
    running = []
    for group in groups:
        path = osp.join(log_dir,
                        'seeds_' + '-'.join(str(s) for s in group) + '.log')
        with open(path, 'a') as out:  # a later run adds to the log
            out.write(f'== {time.strftime("%Y-%m-%d %H:%M:%S")}: '
                      f'seeds {group}, {threads} threads\n')
            out.flush()
            proc = subprocess.Popen(
                [sys.executable, tool] + child_argv(argv, group),
                stdout=out, stderr=subprocess.STDOUT, env=env)
        log(f'study jobs: seeds {group} in process {proc.pid} '
            f'({threads} threads), log {path}')
        running.append((group, proc, path, time.monotonic()))
    failed = []
    shown: dict = {}
    last_progress = time.monotonic()
    while running:
        time.sleep(min(1., poll_s))
        for item in list(running):
            group, proc, path, start = item
            if proc.poll() is None:
                continue
            running.remove(item)
            minutes = (time.monotonic() - start) / 60
            log(f'study jobs: seeds {group} finished (exit '
                f'{proc.returncode}, {minutes:.1f} min)')
            if proc.returncode:
                failed.append((group, proc.returncode, path))
        if running and time.monotonic() - last_progress >= poll_s:
            last_progress = time.monotonic()
            for group, _, path, _ in running:
                line = _last_study_line(path)
                if shown.get(path) != line:  # only what is new
                    shown[path] = line
                    log(f'study jobs: seeds {group}: {line}')
    if failed:
        raise RuntimeError('; '.join(
            f'study job of seeds {g} failed (exit {rc}); see {p}'
            for g, rc, p in failed))


def maybe_run_seed_jobs(args, argv: Optional[Sequence[str]], tool: str,
                        seeds: Optional[Sequence[int]] = None,
                        work_dir: Optional[str] = None) -> bool:
    """Run the seeds in ``args.jobs`` child processes when that is asked
    for and there is more than one seed; call it after the study data
    exist (so that the children do not generate them side by side).

    Returns:
        bool: True if the children ran (the caller then reports from the
        stored results).
    """
    jobs = getattr(args, 'jobs', 1) or 1
    seeds = list(seeds if seeds is not None else (args.seeds or ()))
    if jobs <= 1 or len(seeds) <= 1 or getattr(args, 'quick', False):
        return False
    run_seed_jobs(tool, sys.argv[1:] if argv is None else argv, seeds,
                  jobs, work_dir or args.work_dir)
    return True
