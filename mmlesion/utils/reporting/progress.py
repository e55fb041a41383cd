# Copyright (c) mmlesion contributors. All rights reserved.
"""Progress reporting that suits where the output goes: mmengine's bar
on a terminal, whole lines in a log file (where ``\\r`` would leave
thousands of updates on one line).
"""
import sys
import time
from typing import IO, Iterable, Iterator, Optional, TypeVar, Union

from mmengine.utils import ProgressBar

T = TypeVar('T')


class TerminalProgress(ProgressBar):
    """mmengine's bar with :meth:`finish`, which ends its line."""

    def finish(self) -> None:
        """End the bar's line."""
        self.file.write('\n')
        self.file.flush()


class LineProgress:
    """A progress report of whole lines, for streams that are not terminals.

    Args:
        task_num (int): number of steps. With 0 only the end is reported.
        file (IO): the stream. Defaults to ``sys.stdout``.
        steps (int): how many lines to write over the whole task (at most
            one per step). Defaults to 10.
        label (str): what is counted, the start of each line. Defaults to
            ``'progress'``.
    """

    def __init__(self,
                 task_num: int,
                 file: Optional[IO] = None,
                 steps: int = 10,
                 label: str = 'progress') -> None:
        if task_num < 0:
            raise ValueError(f'task_num must be >= 0, got {task_num}')
        self.task_num = task_num
        self.file = file if file is not None else sys.stdout
        self.steps = max(1, steps)
        self.label = label
        self.completed = 0
        self._next_line = 1
        self._start = time.perf_counter()

    def update(self, num_tasks: int = 1) -> None:
        """Count ``num_tasks`` more steps; write a line at each tenth."""
        self.completed += num_tasks
        if self.task_num == 0:
            return
        reached = self.completed * self.steps // self.task_num
        if reached < self._next_line:
            return
        self._next_line = reached + 1
        elapsed = time.perf_counter() - self._start
        eta = (elapsed / self.completed * (self.task_num - self.completed)
               if self.completed else 0.0)
        self.file.write(f'{self.label}: {self.completed}/{self.task_num} '
                        f'({100 * self.completed / self.task_num:.0f} %), '
                        f'elapsed {elapsed:.0f} s, ETA {eta:.0f} s\n')
        self.file.flush()

    def finish(self) -> None:
        """Nothing to end: every report is a whole line."""


def is_terminal(file: Optional[IO] = None) -> bool:
    """Whether ``file`` (default ``sys.stdout``) is an interactive terminal.
    """
    file = file if file is not None else sys.stdout
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(task_num: int,
                 file: Optional[IO] = None,
                 label: str = 'progress'
                 ) -> Union[TerminalProgress, LineProgress]:
    """mmengine's bar on a terminal, :class:`LineProgress` elsewhere.

    Args:
        task_num (int): number of steps.
        file (IO, optional): the stream. Defaults to ``sys.stdout``.
        label (str): what the plain lines start with.

    Returns:
        TerminalProgress | LineProgress: an object with ``update(n=1)``
        and ``finish()``.
    """
    file = file if file is not None else sys.stdout
    if is_terminal(file):
        return TerminalProgress(task_num, file=file)
    return LineProgress(task_num, file=file, label=label)


def track_progress(tasks: Iterable[T],
                   task_num: Optional[int] = None,
                   file: Optional[IO] = None,
                   label: str = 'progress') -> Iterator[T]:
    """Iterate over ``tasks`` with :func:`progress_bar` reporting (as
    mmengine's ``track_iter_progress``, in plain lines off a terminal).

    Args:
        tasks (Iterable): the items.
        task_num (int, optional): their number, when ``len`` cannot tell.
        file (IO, optional): the stream. Defaults to ``sys.stdout``.
        label (str): what the plain lines start with.

    Yields:
        the items of ``tasks``.
    """
    if task_num is None:
        task_num = len(tasks)  # type: ignore[arg-type]
    bar = progress_bar(task_num, file=file, label=label)
    for task in tasks:
        yield task
        bar.update()
    bar.finish()
