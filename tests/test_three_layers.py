# Copyright (c) mmlesion contributors. All rights reserved.
"""The package's three layers (docs/layers.md): the core (every folder of
``mmlesion`` but ``apps/`` and ``methods/``), the applications on it
(``mmlesion/apps/``) and the method homes on both (``mmlesion/methods/``).
Each imports only the layers below it: the core neither
``mmlesion.apps`` nor ``mmlesion.methods``, the applications not
``mmlesion.methods``; every import counts (also inside functions and under
``if TYPE_CHECKING:``; relative ones resolved). And no engine (the core,
the applications) names a method: no string of theirs but a docstring
holds ``mmlesion.methods.<method>`` or ``mmlesion/methods/<method>`` (a
lookup by name is an import the imports do not show); a method plugs in
through each engine's registry (``PAPER_TABLES``, ``CONFIG_KEYS``,
``WHOLE_SCAN_STEPS``: ``mmlesion/utils/method_registry.py``).

Each rule is checked on the repository and, to show it can fail, on a
synthetic tree with one violation.
"""
import ast
import re
from pathlib import Path
from typing import List, Set

import pytest

from mmlesion.testing import repo_root
from tests.test_layering import _sources, _write, iter_import_names

#: Layer of each top folder of ``mmlesion`` named here (the core: any other).
TOP = {'apps': 1, 'methods': 2}
LAYER_NAMES = ('core', 'apps', 'methods')


def _layer(module: str) -> int:
    """0 (core), 1 (``mmlesion.apps``) or 2 (``mmlesion.methods``)."""
    parts = module.split('.')
    return TOP.get(parts[1], 0) if len(parts) > 1 else 0


def layer_violations(root: Path) -> List[str]:
    """``path:line: <layer> imports <module> (<layer>)`` of every import of
    a higher layer."""
    out = []
    for path in _sources(root / 'mmlesion'):
        src = _layer('.'.join(path.relative_to(root).with_suffix('').parts))
        for line, name, names in iter_import_names(path, root):
            if name.split('.')[0] != 'mmlesion':
                continue
            targets = ([f'{name}.{n}' for n in names]
                       if name == 'mmlesion' else [name])
            for target in targets:
                dst = _layer(target)
                if dst > src:
                    out.append(f'{path.relative_to(root)}:{line}: '
                               f'{LAYER_NAMES[src]} imports {target} '
                               f'({LAYER_NAMES[dst]})')
    return out


def _docstrings(tree: ast.AST) -> Set[int]:
    """``id`` of each docstring node (module, class, function)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                             ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(
                    first.value, ast.Constant):
                out.add(id(first.value))
    return out


def method_names(root: Path) -> List[str]:
    """``path:line: names <method>`` of every string (not a docstring) of
    the core or the applications naming a method's module."""
    methods = sorted(p.parent.name
                     for p in (root / 'mmlesion' / 'methods').glob(
                         '*/__init__.py'))
    if not methods:
        return []
    named = re.compile(r'mmlesion[./]methods[./](%s)\b' %
                       '|'.join(map(re.escape, methods)))
    out = []
    for path in _sources(root / 'mmlesion'):
        rel = path.relative_to(root)
        if rel.parts[1] == 'methods':
            continue
        tree = ast.parse(path.read_text(encoding='utf-8'))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant)
                    and isinstance(node.value, str) and id(node) not in docs):
                found = named.search(node.value)
                if found:
                    out.append(f'{rel}:{node.lineno}: names '
                               f'{found.group(0)}')
    return out


def test_each_layer_imports_only_the_layers_below():
    assert layer_violations(repo_root()) == []


def test_no_engine_names_a_method():
    assert method_names(repo_root()) == []


@pytest.fixture
def tree(tmp_path):
    """A package with the three layers, each importing below it."""
    _write(tmp_path, 'mmlesion/__init__.py', 'from . import datasets\n')
    _write(tmp_path, 'mmlesion/datasets/__init__.py', '')
    _write(tmp_path, 'mmlesion/datasets/reader.py', 'import os\n')
    _write(tmp_path, 'mmlesion/apps/__init__.py', '')
    _write(tmp_path, 'mmlesion/apps/batch.py',
           'from ..datasets.reader import r\n')
    _write(tmp_path, 'mmlesion/methods/__init__.py', '')
    _write(tmp_path, 'mmlesion/methods/toy/__init__.py',
           'from mmlesion.apps.batch import b\n'
           'from mmlesion.datasets import reader\n'
           "NAME = 'mmlesion.methods.toy'\n")
    assert layer_violations(tmp_path) == []
    assert method_names(tmp_path) == []
    return tmp_path


@pytest.mark.parametrize('path,code,found', [
    ('mmlesion/datasets/bad.py',
     'def f():\n    from mmlesion.apps.batch import b\n',
     'mmlesion/datasets/bad.py:2: core imports mmlesion.apps.batch (apps)'),
    ('mmlesion/datasets/bad.py', 'from .. import methods\n',
     'mmlesion/datasets/bad.py:1: core imports mmlesion.methods (methods)'),
    ('mmlesion/apps/bad.py',
     'from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
     '    from ..methods.toy import NAME\n',
     'mmlesion/apps/bad.py:3: apps imports mmlesion.methods.toy (methods)'),
])
def test_an_import_of_a_higher_layer_is_caught(tree, path, code, found):
    _write(tree, path, code)
    assert layer_violations(tree) == [found]


@pytest.mark.parametrize('path', ['mmlesion/datasets/bad.py',
                                  'mmlesion/apps/bad.py'])
def test_an_engine_naming_a_method_is_caught(tree, path):
    _write(tree, path, '"""Not a lookup: mmlesion.methods.toy."""\n'
           'import importlib\n\n\ndef f():\n'
           '    """Nor here: mmlesion/methods/toy/."""\n'
           "    return importlib.import_module('mmlesion.methods.toy')\n")
    assert method_names(tree) == [
        f'{path}:7: names mmlesion.methods.toy']
