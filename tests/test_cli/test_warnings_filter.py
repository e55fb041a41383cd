# Copyright (c) mmlesion contributors. All rights reserved.
"""The known start-up warnings of the stack are silenced in one place, by
the tools, and ``import mmlesion`` changes no global state.

A tool imports ``mmlesion_cli`` (``from mmlesion_cli import tool_parser``)
before ``mmlesion``; after that, importing ``mmlesion`` and loading a config
that inherits from ``mmdet::`` (which makes mmengine import and reload
``pkg_resources``) print nothing on stderr. The same process then records
what reloading ``pkg_resources`` warns without the filters: the deprecation
warning, so the stack still raises it and the check can fail. (Each tool's
``--help`` is checked for an empty stderr in
``tests/test_tools/test_tool_help.py``.)

The library itself installs no filter: ``import mmlesion`` leaves
``warnings.filters`` and the rest of the interpreter's state as they were,
but for its registrations.
"""
import json
import os
import subprocess
import sys
import warnings

import mmlesion  # noqa: F401  (the stack it imports: see below)
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

#: Imports the modules named on stdin (the stack), records the state of the
#: interpreter, imports mmlesion, records it again and prints both.
STATE_SCRIPT = """
import importlib, json, logging, os, random, signal, sys, threading
import warnings
for name in json.load(sys.stdin):
    try:
        importlib.import_module(name)
    except (Exception, SystemExit):
        pass  # not importable here: nothing of it to compare
import numpy as np
import torch


def replaceable():
    # id of every module attribute, and of every attribute of the classes a
    # module defines: a changed id is something replaced (patched)
    out = {}
    for name, mod in list(sys.modules.items()):
        try:
            items = list(vars(mod).items())
        except TypeError:
            continue
        for key, value in items:
            out[f'{name}.{key}'] = id(value)
            if issubclass(type(value), type) and vars(value).get(
                    '__module__') == name:
                for attr, member in list(vars(value).items()):
                    out[f'{name}.{key}.{attr}'] = id(member)
    return out


def state():
    return dict(
        filters=repr(warnings.filters), environ=dict(os.environ),
        path=list(sys.path), cwd=os.getcwd(),
        recursion=sys.getrecursionlimit(),
        hooks=repr((sys.excepthook, threading.excepthook,
                    warnings.showwarning)),
        signals=repr([signal.getsignal(s)
                      for s in (signal.SIGINT, signal.SIGTERM)]),
        logging=repr((logging.root.level, logging.root.handlers)),
        numpy=repr((np.geterr(), np.get_printoptions())),
        rng=repr((random.getstate(), np.random.get_state()[1].tolist(),
                  torch.get_rng_state().tolist())),
        torch=repr((torch.get_num_threads(), torch.get_default_dtype(),
                    torch.are_deterministic_algorithms_enabled(),
                    torch.is_grad_enabled(), torch.backends.cudnn.benchmark,
                    torch.get_float32_matmul_precision())))


before, ids = state(), replaceable()
import mmlesion
after, ids_after = state(), replaceable()
print(json.dumps(dict(
    changed={k: [before[k], after[k]] for k in before
             if before[k] != after[k]},
    replaced=sorted(k for k in ids if ids_after.get(k, ids[k]) != ids[k]),
    cli_imported='mmlesion_cli' in sys.modules)))
"""

#: What ``import mmlesion`` replaces in mmengine today (not a
#: registration: it changes mmengine for every user of the process).
#: ``register_checkpoint_loader`` -> ``patch_history_buffer_pickling``
#: replaces ``HistoryBuffer.__getstate__``; ``register_config_scope``
#: replaces mmengine's ``get_installed_path``. A new patch fails the test.
KNOWN_PATCHES = [
    'mmengine.config.config.get_installed_path',
    'mmengine.logging.history_buffer.HistoryBuffer.__getstate__',
]
#: Registries that a registration rebuilds as a new object: mmengine's
#: ``CheckpointLoader.register_scheme`` replaces its ``_schemes`` dict each
#: time (sorted anew). A registration, not a patch; whether its new dict
#: lands at the old one's address (and so looks unchanged) is the
#: allocator's chance.
REGISTRIES = ('mmengine.runner.checkpoint.CheckpointLoader._schemes', )


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


def _stack_modules() -> list:
    """The modules that ``import mmlesion`` imported into this process, but
    mmlesion's and the repository's own (tests, tools, projects)."""
    root = str(repo_root())
    out = []
    for name, module in list(sys.modules.items()):
        path = str(getattr(module, '__file__', None) or '')
        if name.split('.')[0] in ('mmlesion', 'mmlesion_cli', 'tests',
                                  'tools', 'projects', 'conftest',
                                  '__main__', '__mp_main__', 'pytest',
                                  '_pytest'):
            continue
        if path.startswith(root) and 'site-packages' not in path:
            continue  # other files of the repository
        out.append(name)
    return out


def test_import_mmlesion_installs_no_filter_and_changes_no_state():
    """In a fresh interpreter that has imported the stack (torch, mmcv,
    mmdet, mmengine, ... whose own filters are theirs), ``import mmlesion``
    adds no warnings filter, does not import ``mmlesion_cli`` and changes
    nothing cheap to read: environment, ``sys.path``, hooks, signal
    handlers, logging, numpy / torch settings, random states; the only
    attributes of other packages it replaces are :data:`KNOWN_PATCHES`."""
    proc = subprocess.run([sys.executable, '-c', STATE_SCRIPT],
                          input=json.dumps(_stack_modules()),
                          cwd=str(repo_root()), env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result['cli_imported']
    assert result['changed'] == {}
    replaced = [k for k in result['replaced'] if k not in REGISTRIES]
    assert replaced == KNOWN_PATCHES


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
