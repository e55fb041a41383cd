# Copyright (c) mmlesion contributors. All rights reserved.
"""Choose the tools' OpenMP threading for a machine others may share.

torch's default (one thread per physical core, OpenMP's threads spinning
while they wait for work) is the fastest on a quiet machine and collapses on
a busy one: a thread that waits spins on a core another process needs, and
a thread that is descheduled holds up the others at every operation (the
README's main job ran 13x its quiet time beside a load of 4-5 on 2 cores).
When a tool starts, before torch is imported, :func:`choose_threads`
counts the cores that other processes keep busy now (the fewest runnable
tasks in a few looks at ``/proc/stat``, a 0.1 s look). A quiet machine (as
many free cores as torch's default threads) keeps torch's threading, the
fastest there (a passive wait cost the main job's iterations about a third
more time on a quiet 2-core machine). When fewer cores are free it

* sets ``OMP_WAIT_POLICY=PASSIVE``: a waiting thread sleeps instead of
  spinning (the numbers a run computes do not change);
* sets ``OMP_NUM_THREADS`` to the free cores (at least 1).

A user's own ``OMP_NUM_THREADS`` or ``OMP_WAIT_POLICY`` always wins, and
``MMLESION_AUTO_THREADS=0`` leaves both to torch. What it chose is marked in
``MMLESION_CHOSEN_THREADS`` / ``MMLESION_CHOSEN_WAIT_POLICY``, so a tool
started by another (a stage of ``reproduce``) chooses again instead of
taking it for the user's. The choice is made once, at the start: a machine
that becomes busy later keeps the quiet choice. Once torch
is imported, the variables no longer act: the choice is then left alone.
Another thread count gives other (equally valid) numbers for the same seed;
run records name the count used (:func:`thread_record`), and the tools that
train or test print it, with the reason, in one line at the start
(:func:`thread_line`; also in the run's log, fresh or resumed).
"""
import dataclasses
import os
import sys
import time
from typing import Callable, Mapping, MutableMapping, Optional

#: ``0`` leaves torch's threading as torch sets it.
AUTO_ENV = 'MMLESION_AUTO_THREADS'
#: the ``OMP_NUM_THREADS`` this module chose (not the user's).
CHOSEN_ENV = 'MMLESION_CHOSEN_THREADS'
#: the ``OMP_WAIT_POLICY`` this module chose (not the user's).
CHOSEN_WAIT_ENV = 'MMLESION_CHOSEN_WAIT_POLICY'
THREADS_ENV = 'OMP_NUM_THREADS'
WAIT_ENV = 'OMP_WAIT_POLICY'


@dataclasses.dataclass
class ThreadChoice:
    """What :func:`choose_threads` decided.

    Attributes:
        threads (int, optional): the ``OMP_NUM_THREADS`` set, ``None`` when
            it was left alone (the user's, or torch's default).
        wait_policy (str, optional): the ``OMP_WAIT_POLICY`` in force.
        busy_cores (int): cores other processes kept busy at the start.
        source (str): ``user``, ``off`` (``MMLESION_AUTO_THREADS=0``),
            ``torch imported`` or ``free cores``.
    """

    threads: Optional[int]
    wait_policy: Optional[str]
    busy_cores: int
    source: str
    cpus: int = 0  #: the CPUs this process may run on (0: not counted)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where known)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def physical_cores(cpus: int) -> int:
    """Physical cores among the usable CPUs (torch's default thread count).

    Args:
        cpus (int): the usable CPUs, the answer where the topology is not
            readable.

    Returns:
        int: distinct sibling sets of the usable CPUs.
    """
    ids = os.sched_getaffinity(0) if hasattr(os, 'sched_getaffinity') else []
    siblings = set()
    for cpu in ids:
        path = f'/sys/devices/system/cpu/cpu{cpu}/topology/' \
               'thread_siblings_list'
        try:
            with open(path) as f:
                siblings.add(f.read().strip())
        except OSError:
            return cpus
    return len(siblings) or cpus


def busy_cores(looks: int = 5, pause: float = 0.02,
               stat_path: str = '/proc/stat') -> int:
    """Cores that other processes keep busy now.

    The fewest runnable tasks (``procs_running``) in ``looks`` looks, less
    this process: a task that stays runnable throughout is counted, a brief
    one is not. 0 where ``/proc/stat`` is not readable.

    Args:
        looks (int): how many looks.
        pause (float): seconds between looks.
        stat_path (str): the kernel's statistics file.

    Returns:
        int: busy cores besides this process.
    """
    fewest = None
    for look in range(looks):
        try:
            with open(stat_path) as f:
                running = next((int(line.split()[1]) for line in f
                                if line.startswith('procs_running')), 1)
        except (OSError, ValueError, IndexError):
            return 0
        fewest = running if fewest is None else min(fewest, running)
        if look + 1 < looks:
            time.sleep(pause)
    return max((fewest or 1) - 1, 0)


def choose_threads(
        environ: Optional[MutableMapping[str, str]] = None,
        count_busy: Callable[[], int] = busy_cores,
        cores: Optional[int] = None) -> ThreadChoice:
    """Set ``OMP_WAIT_POLICY`` and ``OMP_NUM_THREADS`` for this machine.

    See the module doc. Called when :mod:`mmlesion_cli` is imported, i.e.
    by every tool before it imports torch.

    Args:
        environ (MutableMapping, optional): the environment to read and set
            (default ``os.environ``).
        count_busy (callable): returns the cores others keep busy.
        cores (int, optional): torch's default thread count (default: the
            physical cores among the usable CPUs).

    Returns:
        ThreadChoice: what was decided.
    """
    env = os.environ if environ is None else environ
    if env.get(AUTO_ENV) == '0':
        return ThreadChoice(None, env.get(WAIT_ENV), 0, 'off')
    if environ is None and 'torch' in sys.modules:
        return ThreadChoice(None, env.get(WAIT_ENV), 0, 'torch imported')
    for var, marker in ((THREADS_ENV, CHOSEN_ENV),
                        (WAIT_ENV, CHOSEN_WAIT_ENV)):
        chosen = env.pop(marker, None)
        if chosen is not None and env.get(var) == chosen:
            del env[var]  # a parent tool's choice: choose again
    source = 'user' if env.get(THREADS_ENV) else 'free cores'
    cores = cores or physical_cores(usable_cpus())
    busy = count_busy()
    free = usable_cpus() - busy
    if free >= cores:  # quiet: torch's threading, the fastest there
        return ThreadChoice(None, env.get(WAIT_ENV), busy, source,
                            usable_cpus())
    if not env.get(WAIT_ENV):
        env[WAIT_ENV] = env[CHOSEN_WAIT_ENV] = 'PASSIVE'
    threads = None
    if source != 'user':
        threads = max(1, free)
        env[THREADS_ENV] = env[CHOSEN_ENV] = str(threads)
    return ThreadChoice(threads, env[WAIT_ENV], busy, source, usable_cpus())


#: Set by :mod:`mmlesion_cli` when it is imported: what
#: :func:`choose_threads` decided for this process.
PROCESS_CHOICE: Optional[ThreadChoice] = None


def choose_process_threads() -> ThreadChoice:
    """:func:`choose_threads` for this process, kept in
    :data:`PROCESS_CHOICE` for :func:`thread_line`."""
    global PROCESS_CHOICE
    PROCESS_CHOICE = choose_threads()
    return PROCESS_CHOICE


@dataclasses.dataclass
class ThreadRecord:
    """The threading a run used, for its records.

    Attributes:
        torch_threads (int): ``torch.get_num_threads()``.
        omp_num_threads (str, optional): ``OMP_NUM_THREADS`` (``None``:
            unset).
        omp_wait_policy (str, optional): ``OMP_WAIT_POLICY``.
        threads_chosen_by (str): ``mmlesion`` when :func:`choose_threads`
            set the count, ``user`` when the variable was the user's,
            ``torch`` otherwise.
    """

    torch_threads: int
    omp_num_threads: Optional[str]
    omp_wait_policy: Optional[str]
    threads_chosen_by: str


def thread_record(torch_threads: int,
                  environ: Optional[Mapping[str, str]] = None
                  ) -> ThreadRecord:
    """The threading this process uses (see :class:`ThreadRecord`).

    Args:
        torch_threads (int): ``torch.get_num_threads()`` (this package
            imports nothing of the stack: the caller asks torch).
        environ (Mapping, optional): the environment (default
            ``os.environ``).

    Returns:
        ThreadRecord: torch's thread count and the variables behind it.
    """
    env = os.environ if environ is None else environ
    omp = env.get(THREADS_ENV)
    by = 'torch' if omp is None else (
        'mmlesion' if env.get(CHOSEN_ENV) == omp else 'user')
    return ThreadRecord(torch_threads, omp, env.get(WAIT_ENV), by)


def _busy_text(choice: Optional[ThreadChoice]) -> str:
    """``1 of 2 cores busy with other processes at the start``."""
    if choice is None or not choice.cpus:
        return 'cores busy with other processes at the start'
    busy, cpus = choice.busy_cores, choice.cpus
    if busy < cpus:
        return f'{busy} of {cpus} cores busy with other processes at the start'
    return (f'all {cpus} cores busy with other processes at the start '
            f'({busy} of their tasks runnable)')


def thread_line(record: ThreadRecord,
                choice: Optional[ThreadChoice] = None,
                environ: Optional[Mapping[str, str]] = None) -> str:
    """One line for the console and the log: the threads a run computes
    with and why (another count gives other, equally valid numbers).

    Args:
        record (ThreadRecord): :func:`thread_record` of this process.
        choice (ThreadChoice, optional): what :func:`choose_threads` decided
            (default :data:`PROCESS_CHOICE`).
        environ (Mapping, optional): the environment (default
            ``os.environ``): whose ``OMP_WAIT_POLICY`` it is.

    Returns:
        str: e.g. ``threads: torch computes with 1 (OMP_NUM_THREADS=1,
        chosen by mmlesion: 1 of 2 cores busy with other processes at the
        start; OMP_WAIT_POLICY=PASSIVE) ...``.
    """
    choice = PROCESS_CHOICE if choice is None else choice
    env = os.environ if environ is None else environ
    source = choice.source if choice is not None else None
    if record.threads_chosen_by == 'mmlesion':
        why = (f'{THREADS_ENV}={record.omp_num_threads}, chosen by mmlesion: '
               + _busy_text(choice))
    elif record.threads_chosen_by == 'user':
        why = f'{THREADS_ENV}={record.omp_num_threads}, set by you'
    elif source == 'off':
        why = f"torch's default ({AUTO_ENV}=0)"
    elif source == 'torch imported':
        why = "torch's default (torch was imported before the choice)"
    else:
        why = ("torch's default: the machine was quiet at the start"
               if choice is not None else "torch's default")
    if record.omp_wait_policy:
        by = (' by mmlesion' if env.get(CHOSEN_WAIT_ENV)
              == record.omp_wait_policy else '')
        why += f'; {WAIT_ENV}={record.omp_wait_policy}{by}'
    return (f'threads: torch computes with {record.torch_threads} ({why}); '
            'another count gives other, equally valid numbers for the same '
            f'seed ({THREADS_ENV} sets it)')
