# Copyright (c) mmlesion contributors. All rights reserved.
"""Run several ``python tools/<x>.py ...`` commands one after another in
one Python process, each as its own ``__main__``.

A command-line tool's cost in the suite is mostly its imports (torch,
mmcv, mmdet: about 4 s a process); commands that only read files and write
others (converters, ``reproduce.py --dry-run``) run here in one process,
each with its own ``sys.argv``, working directory and captured output, as
``python`` would run the file (``runpy.run_path(..., run_name='__main__')``,
its folder first on ``sys.path``). Commands that train stay separate
processes.

Usage: ``python -m tests.helpers.tool_batch JOBS.json RESULTS.json``, where
JOBS.json is a list of ``{"argv": [...], "cwd": "..."}`` (``argv`` without
the leading ``python``) and RESULTS.json receives, per job, ``returncode``
and ``output`` (stdout and stderr, in order).
"""
import contextlib
import io
import json
import os
import runpy
import sys
import traceback
from typing import List


def run_as_main(path: str, python_c: bool = False) -> int:
    """Run the file ``path`` (the source text itself where ``python_c``) as
    ``python`` runs it (``__main__``, with the current ``sys.argv``); its
    exit code: ``sys.exit(text)`` prints the text and gives 1, as Python
    does, and so does a crash (its traceback printed)."""
    try:
        if python_c:
            exec(compile(path, '<string>', 'exec'), {'__name__': '__main__'})
        else:
            runpy.run_path(path, run_name='__main__')
    except SystemExit as done:
        code = done.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)  # sys.exit('error: ...')
            return 1
        return code or 0
    except BaseException:  # noqa: BLE001 (a crash is its result)
        traceback.print_exc()
        return 1
    return 0


def run_job(argv: List[str], cwd: str) -> dict:
    """Run ``python *argv`` in ``cwd``; its exit code and output."""
    out = io.StringIO()
    here, path, old_argv = os.getcwd(), list(sys.path), sys.argv
    code = 0
    try:
        os.chdir(cwd)
        sys.argv = list(argv)
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = run_as_main(argv[0])
    finally:
        os.chdir(here)
        sys.path[:] = path
        sys.argv = old_argv
    return dict(returncode=code, output=out.getvalue())


def main() -> int:
    jobs_file, results_file = sys.argv[1:3]
    with open(jobs_file) as f:
        jobs = json.load(f)
    results = [run_job(job['argv'], job['cwd']) for job in jobs]
    with open(results_file, 'w') as f:
        json.dump(results, f)
    return 0


if __name__ == '__main__':
    sys.exit(main())
