# Copyright (c) mmlesion contributors. All rights reserved.
"""The known start-up warnings of the stack are silenced in one place, by
the tools.

A tool imports ``mmlesion_cli`` (``from mmlesion_cli import tool_parser``)
before ``mmlesion``; after that, importing ``mmlesion`` and loading a config
that inherits from ``mmdet::`` (which makes mmengine import and reload
``pkg_resources``) print nothing on stderr. The same process then records
what reloading ``pkg_resources`` warns without the filters: the deprecation
warning, so the stack still raises it and the check can fail. (Each tool's
``--help`` is checked for an empty stderr in
``tests/test_tools/test_tool_help.py``.)

The library itself installs no filter (``test_import_mmlesion.py``).
"""
import os
import subprocess
import sys
import warnings

from mmlesion.testing import repo_root
from mmlesion_cli.warnings_filter import KNOWN_WARNINGS, silence_known_warnings

#: Starts as a tool does, then loads a config inheriting from mmdet::
#: configs, as train.py does.
SCRIPT = """
import importlib, warnings
from mmlesion_cli import tool_parser
import mmlesion
from mmengine.config import Config
Config.fromfile('configs/_base_/default_runtime.py')
import pkg_resources
with warnings.catch_warnings(record=True) as caught:
    warnings.resetwarnings()
    warnings.simplefilter('always')
    importlib.reload(pkg_resources)
print(sum('pkg_resources is deprecated' in str(w.message) for w in caught))
"""

def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(repo_root()))
    env.pop('PYTHONWARNINGS', None)
    env.pop('MMLESION_SHOW_STACK_WARNINGS', None)
    return env


def test_a_tool_and_mmdet_config_print_no_warning():
    proc = subprocess.run([sys.executable, '-c', SCRIPT],
                          cwd=str(repo_root()), env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ''
    # without the filters the stack does warn
    assert int(proc.stdout.strip()) >= 1


def test_only_the_known_warnings_are_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        silence_known_warnings()
        warnings.warn('pkg_resources is deprecated as an API', UserWarning)
        warnings.warn('`torch.jit.script` is deprecated.', DeprecationWarning)
        # same text, other category; other text: both still shown
        warnings.warn('pkg_resources is deprecated as an API', RuntimeWarning)
        warnings.warn('something else', UserWarning)
    assert [str(w.message) for w in caught] == [
        'pkg_resources is deprecated as an API', 'something else'
    ]
    assert len(KNOWN_WARNINGS) == len({m for m, _ in KNOWN_WARNINGS})
