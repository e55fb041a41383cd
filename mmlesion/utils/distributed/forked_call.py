# Copyright (c) mmlesion contributors. All rights reserved.
"""Run a callable in a process forked from this one and wait for its
result (:class:`ForkedCall`): nothing is pickled but the (small) result or
error; :func:`gc.freeze` keeps the child from copying this process's pages.
"""
import gc
import multiprocessing
import os
import pickle
import sys
import traceback
from typing import Any, Callable

from mmengine.logging import MMLogger


def fork_available() -> bool:
    """Whether :class:`ForkedCall` can run here (Linux with ``fork``)."""
    return sys.platform.startswith('linux') and (
        'fork' in multiprocessing.get_all_start_methods())


def usable_cpus() -> int:
    """The CPUs this process may use (its affinity on Linux), else all."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class ForkedCallError(RuntimeError):
    """A forked call failed with an error that could not be sent back as
    it was (its type and text are in the message), or its process ended
    without an answer (killed, out of memory; the exit code is named)."""


class ForkedCall:
    """``fn()`` started in a process forked from this one; :meth:`result`
    waits for its value or raises its error.

    Args:
        fn (callable): run in the child, without arguments; its value must
            pickle.
        name (str): the child process's name. Defaults to
            ``'mmlesion-forked'``.

    Raises:
        RuntimeError: forking is not available (:func:`fork_available`).
    """

    def __init__(self, fn: Callable[[], Any],
                 name: str = 'mmlesion-forked') -> None:
        if not fork_available():
            raise RuntimeError('ForkedCall needs fork (Linux)')
        context = multiprocessing.get_context('fork')
        self._conn, child_end = context.Pipe(duplex=False)
        self._process = context.Process(target=_run_and_send,
                                        args=(fn, child_end), name=name,
                                        daemon=True)
        frozen = gc.get_freeze_count()
        gc.freeze()  # the child's collections skip this process's objects
        try:
            self._process.start()
        finally:
            if not frozen:  # this process's collector as it was
                gc.unfreeze()
        child_end.close()

    def result(self) -> Any:
        """Wait for the child and return ``fn()``'s value.

        Raises:
            Exception: ``fn()``'s error, as raised in the child (or a
                :class:`ForkedCallError` with its type and text where it
                does not pickle).
            ForkedCallError: the child ended without an answer.
        """
        try:
            outcome = self._conn.recv()
        except EOFError:  # killed (out of memory?) before it answered
            outcome = None
        finally:
            self._conn.close()
        self._process.join()
        if outcome is None:
            raise ForkedCallError(
                f'the forked process {self._process.name!r} ended without '
                f'an answer (exit code {self._process.exitcode})')
        value, error = outcome
        if error is not None:
            raise error
        return value


def _run_and_send(fn: Callable[[], Any], conn) -> None:
    """The child: run ``fn``, send ``(value, error)`` back."""
    try:
        outcome = (fn(), None)
    except BaseException as err:  # the parent raises it
        MMLogger.get_current_instance().debug(''.join(
            traceback.format_exception(type(err), err, err.__traceback__)))
        outcome = (None, portable_error(err))
    try:
        conn.send(outcome)
    finally:
        conn.close()


def portable_error(err: BaseException) -> BaseException:
    """``err`` where it survives a pickle, else a :class:`ForkedCallError`
    naming its type and text."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        return ForkedCallError(f'{type(err).__name__}: {err}')
    return err
