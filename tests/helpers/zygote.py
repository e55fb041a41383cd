# Copyright (c) mmlesion contributors. All rights reserved.
"""Run ``python tools/<x>.py ...`` commands as forks of one Python process
that imported torch, mmcv, mmdet and mmlesion once (a *zygote*).

A stage of ``tools/reproduce.py`` (a training, a test, an evaluation) runs
as a new ``python`` process; at the suite's tiny sizes its imports (about
5 s of CPU a process, mostly mmdet's) cost as much as its work. Here each
command is still a process of its own, with its own ``sys.argv``, working
directory, environment and output file, run as ``python`` runs a file
(``runpy.run_path(..., run_name='__main__')``, its folder first on
``sys.path``), but forked from a process whose imports are done. The
zygote runs no torch operation before it forks: the child's thread pools
start in the child, with the thread count of the child's environment
(``OMP_NUM_THREADS``, set again, since the OpenMP runtime read the
zygote's at import).

Commands that are not ``python <file>.py`` (``sbatch``, ``bash``) are not
for the zygote: :func:`zygote_subprocess_run` passes them to
:func:`subprocess.run`; ``python -c CODE`` too, unless asked
(``python_c=True``: the code runs as ``__main__``, ``''`` first on
``sys.path``). A test opts in (fixture ``tools_forked``, or
``code_forked`` for ``-c`` too): not for a tool whose test is about what a
new interpreter imports, or that signals a process.

A *bare* zygote (``Zygote(bare=True)``) imported the third-party stack
alone (:data:`BARE_PREIMPORTS`) and no module of ``mmlesion``: a fork of it
tells what the code it runs loads of ``mmlesion``, as a new interpreter
would, without the ~7 s of torch's and mmdet's imports a check.

Protocol (one JSON line each way): ``{"argv", "cwd", "env", "log", "err",
"timeout"}`` -> ``{"returncode", "timed_out"}``. ``python -m
tests.helpers.zygote`` is the zygote.
"""
import atexit
import gc
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from tests.helpers.tool_batch import run_as_main

_ROOT = str(Path(__file__).resolve().parents[2])


class Zygote:
    """A running zygote; :meth:`run` forks one command from it and waits.

    One command at a time (a lock); the zygote ends with :meth:`close` or
    when this process ends (its standard input closes).
    """

    def __init__(self, bare: bool = False) -> None:
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [_ROOT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                       if p])
        self._proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.helpers.zygote'] +
            (['--bare'] if bare else []), cwd=_ROOT,
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        self._lock = threading.Lock()

    def run(self, argv: List[str], cwd: str, log: str,
            env: Optional[Dict[str, str]] = None, err: Optional[str] = None,
            timeout: Optional[float] = None) -> Tuple[int, bool]:
        """Run ``python *argv`` (``argv[0]`` a ``.py`` file) in ``cwd``,
        stdout appended to ``log`` and stderr to ``err`` (default: ``log``
        too), killed after ``timeout`` seconds.

        Returns:
            tuple: the exit code, and whether the command was killed for
            its time.

        Raises:
            RuntimeError: the zygote itself ended.
        """
        job = dict(argv=list(argv), cwd=str(cwd), log=str(log),
                   err=str(err or log), timeout=timeout,
                   env=dict(os.environ if env is None else env))
        with self._lock:
            if self._proc.poll() is not None:
                raise RuntimeError('the zygote ended (exit '
                                   f'{self._proc.returncode})')
            self._proc.stdin.write(json.dumps(job) + '\n')
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline()
        if not answer:
            raise RuntimeError('the zygote ended without an answer')
        answer = json.loads(answer)
        return int(answer['returncode']), bool(answer['timed_out'])

    def close(self) -> None:
        """End the zygote (it holds nothing to save: killed, not left to
        unload its modules)."""
        self._proc.stdin.close()
        self._proc.kill()
        self._proc.wait()
        self._proc.stdout.close()


def zygote_subprocess_run(zygote: Zygote, python_c: bool = False):
    """A stand-in for :func:`subprocess.run` that forks ``python <file>.py``
    commands (and ``python -c CODE ...`` where ``python_c``) from
    ``zygote``; any other command, or other options than ``cwd``, ``env``,
    ``stdout``, ``stderr``, ``text``, ``timeout`` and ``check``, runs as
    usual. Output to a pipe goes through a temporary file and comes back
    in the result as :func:`subprocess.run` gives it."""
    real_run = subprocess.run

    def run(argv, *args, **kwargs) -> subprocess.CompletedProcess:
        other = set(kwargs) - {'cwd', 'env', 'stdout', 'stderr', 'text',
                               'timeout', 'check', 'capture_output'}
        if (args or other or not isinstance(argv, (list, tuple))
                or len(argv) < 2 or argv[0] != sys.executable
                or not (str(argv[1]).endswith('.py') or
                        (python_c and argv[1] == '-c' and len(argv) > 2))):
            return real_run(argv, *args, **kwargs)
        stdout, stderr = kwargs.get('stdout'), kwargs.get('stderr')
        if kwargs.get('capture_output'):
            stdout = stderr = subprocess.PIPE
        if stdout not in (subprocess.PIPE, None) and not hasattr(
                stdout, 'name'):
            return real_run(argv, *args, **kwargs)
        with tempfile.TemporaryDirectory(prefix='zygote-') as tmp:
            out_path = (osp.join(tmp, 'out') if stdout in (
                subprocess.PIPE, None) else stdout.name)
            if stderr == subprocess.STDOUT:
                err_path = out_path
            elif stderr == subprocess.PIPE or stderr is None:
                err_path = osp.join(tmp, 'err')
            elif hasattr(stderr, 'name'):
                err_path = stderr.name
            else:
                return real_run(argv, *args, **kwargs)
            for stream in (stdout, stderr):
                if hasattr(stream, 'flush'):
                    stream.flush()
            code, timed_out = zygote.run(
                [str(a) for a in argv[1:]], kwargs.get('cwd') or os.getcwd(),
                out_path, kwargs.get('env'), err_path, kwargs.get('timeout'))

            def read(path, piped):
                if not piped or not osp.exists(path):
                    return None
                data = Path(path).read_bytes()
                return data.decode() if kwargs.get('text') else data

            out = read(out_path, stdout == subprocess.PIPE)
            err = read(err_path, stderr == subprocess.PIPE)
            if stdout is None and osp.exists(out_path):  # as if inherited
                sys.stdout.write(Path(out_path).read_text(errors='replace'))
            if stderr is None and osp.exists(err_path):
                sys.stderr.write(Path(err_path).read_text(errors='replace'))
        if timed_out:
            raise subprocess.TimeoutExpired(argv, kwargs['timeout'], out,
                                            err)
        done = subprocess.CompletedProcess(argv, code, out, err)
        if kwargs.get('check'):
            done.check_returncode()
        return done

    return run


def _child(job: Dict[str, Any]) -> int:
    """In the fork: become ``python *argv`` and return its exit code."""
    os.chdir(job['cwd'])
    os.environ.clear()
    os.environ.update(job['env'])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, job['log']), (2, job['err'])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, fd)
        os.close(out)
    # the child's PYTHONPATH, as a new interpreter would read it
    extra = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep)
             if p and p not in sys.path]
    sys.path[1:1] = extra
    import torch
    threads = os.environ.get('OMP_NUM_THREADS', '')
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    argv = job['argv']
    if argv[0] == '-c':  # python -c CODE ARGS
        sys.argv = ['-c'] + argv[2:]
        sys.path[0] = ''
        return run_as_main(argv[1], python_c=True)
    sys.argv = list(argv)
    sys.path[0] = osp.dirname(osp.abspath(argv[0]))
    return run_as_main(argv[0])


def _wait(pid: int, timeout: Optional[float]) -> Tuple[int, bool]:
    """Wait for the child (killed after ``timeout`` s): its exit code and
    whether it was killed for its time."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), True
        time.sleep(0.05)


#: What the zygote imports before it forks (a child does not import them
#: again, so it prints none of their start-up warnings: a test imports them
#: in a fresh interpreter instead). ``torch._dynamo``: building a
#: training's optimizer imports it (0.8 s of CPU a forked training); the
#: methods (their tables), the data-layout and whole-config checks: every
#: training and test (0.15 s); ``mmlesion.apis`` and ``mmlesion.protocols``:
#: the test and evaluation tools (0.1-0.2 s); ``setuptools``: mmengine's
#: ``collect_env`` imports it in every training (0.1 s).
PREIMPORTS = ('mmdet.models', 'mmengine.runner', 'torch', 'torch._dynamo',
              'mmlesion.datasets', 'mmlesion.engine', 'mmlesion.evaluation',
              'mmlesion.models', 'mmlesion.methods',
              'mmlesion.datasets.data_layout',
              'mmlesion.datasets.replica_marker',
              'mmlesion.utils.configs.whole_config', 'mmlesion.apis',
              'mmlesion.protocols', 'setuptools')


#: What a bare zygote imports: what ``import mmlesion`` and the methods
#: load of the third-party stack, and nothing of ``mmlesion``.
BARE_PREIMPORTS = ('torch', 'mmengine.runner', 'mmcv.ops', 'mmdet.apis',
                   'mmdet.datasets', 'mmdet.evaluation', 'mmdet.models',
                   'scipy.ndimage', 'SimpleITK', 'matplotlib.pyplot')


def main() -> None:
    """The zygote: import once, then fork a child per request."""
    import importlib
    bare = sys.argv[1:] == ['--bare']
    for name in BARE_PREIMPORTS if bare else PREIMPORTS:
        importlib.import_module(name)
    if not bare:
        importlib.import_module('mmlesion.methods').import_methods()
        from tests.helpers.config_cache import memoize_metafile_lookup
        memoize_metafile_lookup(parse_now=True)  # the children inherit them
    # Frozen for good: the child's collections leave these pages alone, and
    # the zygote does not walk its imports' objects again before each fork
    # (0.3 s of CPU a fork; what it makes between forks is a few lines).
    gc.collect()
    gc.freeze()
    protocol_out = sys.stdout
    for line in sys.stdin:
        job = json.loads(line)
        protocol_out.flush()
        sys.stderr.flush()
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(job)
            finally:
                try:
                    atexit._run_exitfuncs()  # logging, multiprocessing
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code if isinstance(code, int) else 1)
        code, timed_out = _wait(pid, job.get('timeout'))
        protocol_out.write(
            json.dumps(dict(returncode=code, timed_out=timed_out)) + '\n')
        protocol_out.flush()


if __name__ == '__main__':
    main()
