# Copyright (c) mmlesion contributors. All rights reserved.
"""``import mmlesion`` changes the process only as its docstring says.

Besides its registrations (new names in mmdet's and mmengine's
registries), ``mmlesion/__init__.py`` lists four process-wide changes, each
made by one function (:data:`CHANGES`). In a fresh interpreter that has
imported the stack (torch, mmcv, mmdet, mmengine, ..., whose own filters
and settings are theirs), the state is recorded before and after
``import mmlesion``: each listed change is there, and nothing else changed
(warnings filters, environment, ``sys.path``, hooks, signal handlers,
logging, numpy / torch settings, random states, any other attribute of
another package). The docstring and ``docs/get_started_gpu.md`` name each
change, and each is made in one place of the library.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mmlesion
from mmlesion.testing import repo_root

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
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.runner import CheckpointLoader


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


def loaders():
    return {prefix: f'{f.__module__}.{f.__qualname__}'
            for prefix, f in CheckpointLoader._schemes.items()}


before, ids = state(), replaceable()
schemes, packages = loaders(), dict(MODULE2PACKAGE)
import mmlesion
after, ids_after = state(), replaceable()
print(json.dumps(dict(
    changed={k: [before[k], after[k]] for k in before
             if before[k] != after[k]},
    replaced=sorted(k for k in ids if ids_after.get(k, ids[k]) != ids[k]),
    schemes={k: v for k, v in loaders().items() if schemes.get(k) != v},
    packages={k: v for k, v in MODULE2PACKAGE.items()
              if packages.get(k) != v},
    cli_imported='mmlesion_cli' in sys.modules)))
"""

#: The four changes of ``mmlesion/__init__.py``'s docstring: the function
#: that makes each, and what each changes (as the docstring and the docs
#: name it).
CHANGES = {
    'register_checkpoint_loader': ['local checkpoints', 'CheckpointLoader'],
    'patch_history_buffer_pickling': ['HistoryBuffer.__getstate__'],
    'register_torchvision_loader': ['torchvision://', 'modelzoo://'],
    'register_config_scope': ['MODULE2PACKAGE', 'get_installed_path'],
}
#: The attributes of other packages that ``import mmlesion`` replaces
#: (``patch_history_buffer_pickling``, ``register_config_scope``).
KNOWN_PATCHES = [
    'mmengine.config.config.get_installed_path',
    'mmengine.logging.history_buffer.HistoryBuffer.__getstate__',
]
#: mmengine's ``CheckpointLoader.register_scheme`` replaces its
#: ``_schemes`` dict each time (sorted anew); its entries are compared on
#: their own (``schemes``), whether the new dict lands at the old one's
#: address is the allocator's chance.
REGISTRIES = ('mmengine.runner.checkpoint.CheckpointLoader._schemes', )
#: The loaders the schemes get (``register_checkpoint_loader``,
#: ``register_torchvision_loader``).
SCHEMES = {
    '': 'mmlesion.utils.checkpoints.loader.load_local_checkpoint',
    'torchvision://': 'mmlesion.utils.checkpoints.pretrained.load_from_torchvision_name',
    'modelzoo://': 'mmlesion.utils.checkpoints.pretrained.load_from_torchvision_name',
}


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


@pytest.fixture(scope='module')
def import_effects() -> dict:
    env = dict(os.environ, PYTHONPATH=str(repo_root()))
    env.pop('PYTHONWARNINGS', None)
    env.pop('MMLESION_SHOW_STACK_WARNINGS', None)
    proc = subprocess.run([sys.executable, '-c', STATE_SCRIPT],
                          input=json.dumps(_stack_modules()),
                          cwd=str(repo_root()), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_no_other_state_changes(import_effects):
    """No warnings filter, environment variable, path, hook, logging,
    numpy / torch setting or random state changes; ``mmlesion_cli`` (and
    its warnings filter) is not imported."""
    assert not import_effects['cli_imported']
    assert import_effects['changed'] == {}


def test_only_the_listed_attributes_are_replaced(import_effects):
    """``HistoryBuffer.__getstate__`` and the config parser's
    ``get_installed_path``; a new patch fails the test."""
    replaced = [
        k for k in import_effects['replaced'] if k not in REGISTRIES
    ]
    assert replaced == KNOWN_PATCHES


def test_checkpoint_schemes(import_effects):
    """The local and torchvision loaders replace mmengine's, and no other
    scheme changes."""
    assert import_effects['schemes'] == SCHEMES


def test_config_scope(import_effects):
    """``mmlesion::`` bases: mmlesion joins mmengine's packages with
    configs, and only it."""
    assert import_effects['packages'] == {'mmlesion': 'mmlesion'}


def _library_sources() -> str:
    folder = Path(mmlesion.__file__).parent
    return '\n'.join(
        p.read_text(encoding='utf-8') for p in sorted(folder.rglob('*.py')))


@pytest.mark.parametrize('function,what', list(CHANGES.items()))
def test_each_change_is_listed_and_made_once(function, what):
    """The docstring of ``mmlesion`` and the install page name each change;
    the library calls the function that makes it once (in
    ``mmlesion/__init__.py``)."""
    doc = mmlesion.__doc__
    page = (repo_root() / 'docs' / 'get_started_gpu.md').read_text()
    assert function in doc
    for text in what:
        assert text in doc, text
        assert text in page, text
    calls = re.findall(rf'^\s*{function}\(\)', _library_sources(), re.M)
    assert len(calls) == 1, calls


@pytest.mark.parametrize('change', [
    r'CheckpointLoader\.register_scheme\(', r'HistoryBuffer\.__getstate__ =',
    r'get_installed_path =', r'MODULE2PACKAGE\.setdefault\('
])
def test_each_replacement_is_made_in_one_function(change):
    """Nothing else in the library replaces what the four functions do
    (two schemes registrations: the local and the torchvision loader)."""
    found = re.findall(change, _library_sources())
    assert len(found) == (2 if 'register_scheme' in change else 1), change
