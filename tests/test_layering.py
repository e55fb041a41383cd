# Copyright (c) mmlesion contributors. All rights reserved.
"""The package's layering rules (docs/layers.md), read from the imports.

* No module imports a layer above its own: tools > apis >
  engine/visualization > datasets/models/evaluation (with anchors, mining,
  nas) > structures/utils. ``import mmlesion`` (the registration entry
  point, what ``custom_imports=['mmlesion']`` does) is allowed anywhere.
* Evaluation depends only on structures and utils: it does not import
  datasets, models, mining or visualization (a metric returns data; a
  picture is drawn in visualization).
* ``mmlesion.testing`` is a leaf used by tests only: nothing under
  ``mmlesion/`` (but ``testing`` itself), ``tools/`` or ``configs/`` imports it.
* No source file under ``mmlesion/`` or ``tools/`` has more than 600 lines.

Each rule is checked on the repository and, to show it can fail, on a
synthetic tree with one violation.
"""
import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from mmlesion.testing import repo_root

#: Layer of each subpackage of ``mmlesion`` (higher = may import lower).
LAYERS: Dict[str, int] = {
    'registry': 0,
    'structures': 0,
    'utils': 0,
    'version': 0,
    'anchors': 1,
    'datasets': 1,
    'evaluation': 1,
    'mining': 1,
    'models': 1,
    'nas': 1,
    'engine': 2,
    'visualization': 2,
    'apis': 3,
}
#: Subpackages a subpackage must not import even though they are not above.
FORBIDDEN: Dict[str, Tuple[str, ...]] = {
    'evaluation': ('anchors', 'datasets', 'mining', 'models', 'nas'),
}
MAX_LINES = 600


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def iter_imports(path: Path, root: Path) -> Iterator[Tuple[int, str, bool]]:
    """``(line, absolute module, names_given)`` of every import in a file.

    Relative imports are resolved against the file's package (``root`` is
    the folder holding the top-level package). ``names_given`` is False for
    a plain ``import x`` (no names taken from ``x``).
    """
    module = _module_name(path, root)
    is_pkg = path.name == '__init__.py'
    package = module.split('.') if is_pkg else module.split('.')[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, False
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = '.'.join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ''
            yield node.lineno, name, True


def _subpackage(module: str, top: str) -> Optional[str]:
    parts = module.split('.')
    if parts[0] != top or len(parts) < 2:
        return None
    return parts[1]


def _sources(folder: Path) -> List[Path]:
    """The ``.py`` files under ``folder``, without hidden folders such as
    ``mmlesion/.mim`` (an installed package's links back to ``configs/``
    and ``tools/``, made by ``setup.py``: not package code)."""
    return sorted(p for p in folder.rglob('*.py') if not any(
        part.startswith('.') for part in p.relative_to(folder).parts))


def layer_violations(root: Path, top: str = 'mmlesion',
                     layers: Dict[str, int] = LAYERS,
                     forbidden: Dict[str, Tuple[str, ...]] = FORBIDDEN
                     ) -> List[str]:
    """Every upward or forbidden import inside package ``top`` under root."""
    out = []
    for path in _sources(root / top):
        src_mod = _module_name(path, root)
        src = _subpackage(src_mod, top)
        if src is None or src == 'testing':
            continue  # the package __init__ and the test-support leaf
        if src not in layers:
            out.append(f'{path}: subpackage {src!r} has no layer; add it '
                       'to LAYERS (and docs/layers.md)')
            continue
        for line, name, names_given in iter_imports(path, root):
            if name == top and not names_given:
                continue  # `import mmlesion`: registration entry point
            dst = _subpackage(name, top)
            if name == top:
                out.append(f'{path}:{line}: from {top} import ...: import '
                           'from the subpackage that holds the name')
                continue
            if dst is None or dst == src:
                continue
            if dst == 'testing':
                continue  # reported by runtime_testing_imports
            if dst not in layers:
                out.append(f'{path}:{line}: imports unknown {name}')
            elif layers[dst] > layers[src]:
                out.append(f'{path}:{line}: {src} (layer {layers[src]}) '
                           f'imports {name} (layer {layers[dst]})')
            elif dst in forbidden.get(src, ()):
                out.append(f'{path}:{line}: {src} must not import {name}')
    return out


def runtime_testing_imports(
        root: Path,
        folders: Tuple[str, ...] = ('mmlesion', 'tools', 'configs'),
        top: str = 'mmlesion') -> List[str]:
    """Imports of ``{top}.testing`` outside ``tests/`` and the package."""
    out = []
    for folder in folders:
        for path in _sources(root / folder):
            rel = path.relative_to(root).parts
            if rel[:2] == (top, 'testing'):
                continue
            for line, name, _ in iter_imports(path, root):
                if name == f'{top}.testing' or name.startswith(
                        f'{top}.testing.'):
                    out.append(f'{path}:{line}: imports {name}')
    return out


def long_files(root: Path, folders: Tuple[str, ...] = ('mmlesion', 'tools'),
               limit: int = MAX_LINES) -> List[str]:
    """Source files with more than ``limit`` lines."""
    out = []
    for folder in folders:
        for path in _sources(root / folder):
            n = len(path.read_text().splitlines())
            if n > limit:
                out.append(f'{path}: {n} lines (split it along its concepts)')
    return out


def test_no_upward_imports():
    assert layer_violations(repo_root()) == []


def test_testing_is_used_by_tests_only():
    assert runtime_testing_imports(repo_root()) == []


def test_no_file_over_600_lines():
    assert long_files(repo_root()) == []


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def fake_repo(tmp_path):
    """A clean miniature of the layout (no violation)."""
    for pkg in ('', 'structures', 'utils', 'datasets', 'evaluation', 'apis',
                'testing'):
        _write(tmp_path, f'mmlesion/{pkg}/__init__.py'.replace('//', '/'),
               '')
    _write(tmp_path, 'mmlesion/datasets/loader.py',
           'from ..structures import geometry\nimport mmlesion\n')
    _write(tmp_path, 'mmlesion/evaluation/metric.py',
           'from mmlesion.structures import geometry\n')
    _write(tmp_path, 'mmlesion/apis/run.py',
           'from ..datasets.loader import x\nfrom ..evaluation import m\n')
    _write(tmp_path, 'mmlesion/testing/helpers.py',
           'from mmlesion.apis.run import y\n')
    _write(tmp_path, 'tools/train.py', 'from mmlesion.apis import run\n')
    _write(tmp_path, 'configs/a.py', "_base_ = ['b.py']\n")
    assert layer_violations(tmp_path) == []
    assert runtime_testing_imports(tmp_path) == []
    assert long_files(tmp_path) == []
    return tmp_path


def test_upward_import_is_caught(fake_repo):
    _write(fake_repo, 'mmlesion/datasets/bad.py',
           'def f():\n    from ..apis.run import y  # lazy, still upward\n')
    found = layer_violations(fake_repo)
    assert len(found) == 1 and 'datasets (layer 1) imports mmlesion.apis.run' \
        in found[0] and 'bad.py:2' in found[0]


def test_evaluation_importing_datasets_is_caught(fake_repo):
    _write(fake_repo, 'mmlesion/evaluation/bad.py',
           'from mmlesion.datasets.loader import x\n')
    found = layer_violations(fake_repo)
    assert len(found) == 1 and 'evaluation must not import' in found[0]


def test_unknown_subpackage_and_root_names_are_caught(fake_repo):
    _write(fake_repo, 'mmlesion/newpkg/__init__.py', '')
    _write(fake_repo, 'mmlesion/utils/bad.py', 'from mmlesion import apis\n')
    found = layer_violations(fake_repo)
    assert len(found) == 2
    assert any("'newpkg' has no layer" in f for f in found)
    assert any('from mmlesion import ...' in f for f in found)


def test_runtime_import_of_testing_is_caught(fake_repo):
    _write(fake_repo, 'tools/bench.py', 'from mmlesion.testing import h\n')
    _write(fake_repo, 'mmlesion/apis/bad.py',
           'from ..testing.helpers import y\n')
    found = runtime_testing_imports(fake_repo)
    assert len(found) == 2
    assert layer_violations(fake_repo) == []  # reported once, above


def test_long_file_is_caught(fake_repo):
    _write(fake_repo, 'tools/long.py', 'x = 1\n' * (MAX_LINES + 1))
    _write(fake_repo, 'tools/ok.py', 'x = 1\n' * MAX_LINES)
    found = long_files(fake_repo)
    assert len(found) == 1 and 'long.py: 601 lines' in found[0]
