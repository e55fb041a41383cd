# Copyright (c) mmlesion contributors. All rights reserved.
"""A command forked from the zygote behaves as ``python <file>.py``: its
arguments, folder, environment, thread count, output, exit code and time
limit are its own."""
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import os, sys
    import torch
    from here import WORD
    print('argv', sys.argv[1:], 'cwd', os.getcwd())
    print('env', os.environ.get('ZYGOTE_TEST'), 'threads',
          torch.get_num_threads(), WORD)
    print('to stderr', file=sys.stderr)
    if sys.argv[1] == 'sleep':
        import time
        time.sleep(60)
    sys.exit(int(sys.argv[1]) if sys.argv[1].isdigit() else 'error: said')
''')


@pytest.fixture
def script(tmp_path):
    tool = tmp_path / 'tool' / 'script.py'
    tool.parent.mkdir()
    tool.write_text(SCRIPT)
    (tool.parent / 'here.py').write_text('WORD = "beside"\n')  # its folder
    return tool


def _env(**extra):
    return {**os.environ, 'OMP_NUM_THREADS': '1', **extra}


def test_a_forked_command_is_its_own_process(script, tmp_path,
                                              tools_forked):
    run = subprocess.run([sys.executable, str(script), '3', 'b c'],
                         cwd=tmp_path, env=_env(ZYGOTE_TEST='yes'),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=60)
    assert run.returncode == 3
    assert f"argv ['3', 'b c'] cwd {tmp_path}" in run.stdout
    assert 'env yes threads 1 beside' in run.stdout
    assert run.stderr == 'to stderr\n'

    merged = subprocess.run([sys.executable, str(script), 'x'],
                            cwd=tmp_path, env=_env(OMP_NUM_THREADS='2'),
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=60)
    assert merged.returncode == 1  # sys.exit('error: ...')
    assert b'threads 2' in merged.stdout
    assert merged.stdout.endswith(b'to stderr\nerror: said\n')

    with open(tmp_path / 'log.txt', 'w') as log:
        log.write('before\n')
        done = subprocess.run([sys.executable, str(script), '0'],
                              cwd=tmp_path, env=_env(), stdout=log,
                              stderr=subprocess.STDOUT)
    assert done.returncode == 0
    text = (tmp_path / 'log.txt').read_text()
    assert text.startswith('before\nargv') and text.endswith('to stderr\n')


def test_time_limit_and_check(script, tmp_path, tools_forked):
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, str(script), 'sleep'],
                       cwd=tmp_path, env=_env(), capture_output=True,
                       timeout=3)
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([sys.executable, str(script), '2'], cwd=tmp_path,
                       env=_env(), capture_output=True, check=True)
    # not a .py file: a new interpreter, as without the fixture
    other = subprocess.run([sys.executable, '-c', 'print(7)'],
                           capture_output=True, text=True)
    assert other.stdout == '7\n'


CODE = ('import os, sys\n'
        "print(__name__, sys.argv, repr(sys.path[0]), os.getcwd(),\n"
        "      os.environ.get('ZYGOTE_TEST'))\n"
        "print('to stderr', file=sys.stderr)\n"
        "sys.exit(int(sys.argv[1]) if sys.argv[1:] else 'error: said')\n")


def test_code_runs_as_python_c_runs_it(tmp_path, _zygote):
    """``python -c`` forked (``code_forked``) gives what a new interpreter
    gives: ``__main__``, its arguments, ``''`` first on the path, folder,
    environment, output and exit code."""
    argv_sets = ([sys.executable, '-c', CODE, '4', 'b c'],
                 [sys.executable, '-c', CODE])
    fresh = [subprocess.run(argv, cwd=tmp_path, env=_env(ZYGOTE_TEST='y'),
                            capture_output=True, text=True, timeout=60)
             for argv in argv_sets]
    from tests.helpers.zygote import zygote_subprocess_run
    run = zygote_subprocess_run(_zygote, python_c=True)
    forked = [run(argv, cwd=tmp_path, env=_env(ZYGOTE_TEST='y'),
                  capture_output=True, text=True, timeout=60)
              for argv in argv_sets]
    # forked: the zygote's imports are there; without python_c=True, -c is
    # a new interpreter's
    torch_in = [sys.executable, '-c',
                "import sys; print('torch' in sys.modules)"]
    assert run(torch_in, capture_output=True, text=True).stdout == 'True\n'
    assert zygote_subprocess_run(_zygote)(
        torch_in, capture_output=True, text=True).stdout == 'False\n'
    assert [r.returncode for r in fresh] == [4, 1]
    assert fresh[0].stdout == (f"__main__ ['-c', '4', 'b c'] '' {tmp_path} "
                               'y\n')
    for new, fork in zip(fresh, forked):
        assert (fork.returncode, fork.stdout, fork.stderr) == (
            new.returncode, new.stdout, new.stderr)
