# Copyright (c) mmlesion contributors. All rights reserved.
"""Every submodule a module of ``mmlesion`` (and ``mmlesion_cli``,
``tools/``) reaches as an attribute
(``pydicom.fileset.FileSet``) is one it imports, or one its parent makes
available by itself.

``import a`` makes ``a.b`` an attribute only where ``a/__init__.py``
imports ``b`` (or loads it lazily); otherwise ``a.b`` works only after some
other module imported ``a.b``, so the code passes a test suite whose
helpers import it and fails for a user. Here, for each module, every
attribute chain on a name bound to one of :data:`PACKAGES` (by ``import``,
``from ... import`` of a submodule, or a variable named like the package,
as ``pydicom = require_pydicom(...)``) is followed over submodules; a
submodule reached that way must be imported by the module itself (any
import, at any level), or be available after importing, in a **new
interpreter**, the longest prefix of the chain the module does import: in
``sys.modules`` right after that import, or served by the parent's
``__getattr__`` (scipy's lazy submodules).
"""
import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

from mmlesion.testing import repo_root

#: Top-level packages whose submodule attributes are checked.
PACKAGES = ('pydicom', 'SimpleITK', 'scipy', 'mmengine', 'mmdet', 'mmcv',
            'torch', 'nibabel', 'highdicom', 'skimage')

#: (file, line, imported prefix, submodule reached) of one use.
Use = Tuple[str, int, str, str]


def _watched(name: str) -> bool:
    return name.split('.')[0] in PACKAGES


def _is_module(name: str) -> bool:
    """Whether ``name`` is an importable module (its parents are
    imported to find out; the module itself is not run)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def _chain(node: ast.Attribute) -> List[str]:
    """``a.b.c`` -> ['a', 'b', 'c'] (empty where the base is no name)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return []
    return [node.id] + parts[::-1]


def module_uses(path: Path) -> Tuple[Set[str], List[Tuple[int, str]]]:
    """The watched modules a file imports and the watched attribute
    chains it uses.

    Returns:
        tuple: the imported module names (with their parent packages),
        and (line, dotted chain with the bound name resolved) per use.
    """
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node  # outermost chains only, below
    imported: Set[str] = set()
    bound: Dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split('.')
                imported.update('.'.join(parts[:k + 1])
                                for k in range(len(parts)))
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    bound[parts[0]] = parts[0]
        elif isinstance(node, ast.ImportFrom) and node.module and \
                not node.level:
            parts = node.module.split('.')
            imported.update('.'.join(parts[:k + 1])
                            for k in range(len(parts)))
            for alias in node.names:
                full = f'{node.module}.{alias.name}'
                if _watched(full) and _is_module(full):
                    imported.add(full)
                    bound[alias.asname or alias.name] = full
    uses = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or isinstance(
                getattr(node, 'parent', None), ast.Attribute):
            continue
        chain = _chain(node)
        if not chain:
            continue
        # a variable named like a package holds it (require_pydicom())
        base = bound.get(chain[0], chain[0] if chain[0] in PACKAGES else '')
        if _watched(base):
            uses.append((node.lineno, '.'.join([base] + chain[1:])))
    return imported, uses


def submodule_queries(root: Path, top: str = 'mmlesion') -> List[Use]:
    """Every use of a submodule the file does not import, with the
    longest prefix it does import (to be checked in a new interpreter)."""
    out = set()
    for path in sorted((root / top).rglob('*.py')):
        imported, uses = module_uses(path)
        for line, dotted in uses:
            parts = dotted.split('.')
            # the longest imported prefix (the package itself for a
            # variable named like it)
            k = max((k for k in range(1, len(parts) + 1)
                     if '.'.join(parts[:k]) in imported), default=1)
            for j in range(k + 1, len(parts) + 1):
                name = '.'.join(parts[:j])
                if not _is_module(name):
                    break
                out.add((str(path.relative_to(root)), line,
                         '.'.join(parts[:k]), name))
    return sorted(out)


#: Run in a new interpreter: import argv[1], then say which of the names
#: of argv[2] (a JSON list) are reachable as attributes.
_AVAILABLE = """
import importlib, json, sys
prefix, names = sys.argv[1], json.loads(sys.argv[2])
importlib.import_module(prefix)
loaded = set(sys.modules)
def reachable(name):
    if name in loaded:
        return True
    parent, _, child = name.rpartition('.')
    hook = getattr(sys.modules.get(parent), '__getattr__', None)
    try:
        return hook is not None and hook(child) is not None
    except Exception:
        return False
print(json.dumps([n for n in names if reachable(n)]))
"""


def unimported_submodules(queries: List[Use]) -> List[str]:
    """The uses whose submodule is not available after importing the
    prefix alone, one line each."""
    by_prefix: Dict[str, Set[str]] = {}
    for _, _, prefix, name in queries:
        by_prefix.setdefault(prefix, set()).add(name)
    available: Set[str] = set()
    for prefix, names in sorted(by_prefix.items()):
        run = subprocess.run(
            [sys.executable, '-c', _AVAILABLE, prefix,
             json.dumps(sorted(names))],
            capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        available.update(
            json.loads(run.stdout.strip().splitlines()[-1]))
    return [
        f'{file}:{line}: uses {name} after importing only {prefix} '
        f'(import {name} itself)' for file, line, prefix, name in queries
        if name not in available
    ]


def test_every_submodule_used_is_imported():
    queries = [q for top in ('mmlesion', 'mmlesion_cli', 'tools')
               for q in submodule_queries(repo_root(), top)]
    bad = unimported_submodules(queries)
    assert not bad, '\n'.join(bad)


def test_a_submodule_used_without_import_is_caught(tmp_path):
    pkg = tmp_path / 'mmlesion'
    pkg.mkdir()
    (pkg / 'ok.py').write_text(
        'import SimpleITK as sitk\nimport pydicom\n'
        'from pydicom.fileset import FileSet\n'
        'def f(p):\n    return pydicom.fileset.FileSet(sitk.ReadImage(p))\n')
    (pkg / 'bad.py').write_text(
        'def f(path):\n    pydicom = require_pydicom(path)\n'
        '    return pydicom.fileset.FileSet(pydicom.dcmread(path))\n')
    (pkg / 'lazy.py').write_text(
        'import scipy\nimport torch\n'
        'def f(x):\n    return scipy.ndimage.zoom(torch.nn.functional'
        '.relu(x), 2)\n')
    bad = unimported_submodules(submodule_queries(tmp_path))
    assert bad == ['mmlesion/bad.py:3: uses pydicom.fileset after importing '
                   'only pydicom (import pydicom.fileset itself)'], bad
