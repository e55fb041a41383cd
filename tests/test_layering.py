# Copyright (c) mmlesion contributors. All rights reserved.
"""The package's layering rules (docs/layers.md), read from the imports.

Every import counts: at module level, inside functions, under
``if TYPE_CHECKING:``; relative imports are resolved against the file.

* No module imports a layer above its own: tools > methods > apps >
  protocols > apis >
  engine/visualization > datasets/models/evaluation (with anchors)
  > structures/utils. ``import mmlesion`` runs ``mmlesion/__init__.py``,
  which imports (registers) every subpackage: inside the package it is an
  upward import like any other and is reported, except in
  ``mmlesion/__init__.py`` itself and in ``mmlesion.testing``. It stays the
  registration entry point for ``tools/``, ``configs/`` (what
  ``custom_imports=['mmlesion']`` does) and tests.
* Evaluation depends only on structures and utils: it does not import
  datasets, models or visualization (a metric returns data; a
  picture is drawn in visualization).
* ``mmlesion_cli`` sits on the library, beside the tools: it imports the
  library's values its options show, and reaches torch, mmcv and mmdet only
  through ``mmlesion`` (none of them directly). The library never imports
  ``mmlesion_cli`` (the tools pass what they parsed).
* No import circle between modules of ``mmlesion`` and ``mmlesion_cli``:
  the import graph (an edge per imported module) has no strongly connected
  component of more than one module. An edge goes to the module named:
  ``import a.b`` and ``from a.b import f`` to ``a.b``; ``from a import b``
  to ``a.b`` when ``b`` is a submodule, else to ``a`` (the package
  ``__init__``). The parent packages that Python runs on the way are not
  edges, so a package ``__init__`` importing its own submodules is no
  circle with them, nor is a submodule importing a sibling with
  ``from . import sibling``; a submodule taking a *name* from its own
  package's ``__init__`` (``from . import f``, ``from mmlesion import x``,
  ``import mmlesion``) while that ``__init__`` imports it is a circle, and
  is reported.
* ``mmlesion.testing`` is a leaf used by tests only: nothing under
  ``mmlesion/`` (but ``testing`` itself), ``tools/`` or ``configs/`` imports it.
* No source file under ``mmlesion/`` or ``tools/`` has more than 600 lines.

Each rule is checked on the repository and, to show it can fail, on a
synthetic tree with one violation.
"""
import ast
import functools
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

from mmlesion.testing import repo_root

#: The folders of ``mmlesion``, one layer each, lowest first: a folder may
#: import the folders below it, never one above (docs/layers.md). Where two
#: folders do not import each other the order is ours: evaluation below
#: datasets (a metric returns data and reads no dataset), models above
#: datasets (both below anchors: the anchor tool measures boxes of a
#: dataset against a model's pyramid), the workflows that run a
#: model above inference (they run it; inference never trains, makes
#: training data or evaluates): the evaluation protocols, the table
#: workflow above them (it may run them all), and the
#: paper methods on top: each registers what the engines below learn of it
#: (``mmlesion/registry.py``'s ``METHODS``), which import no method.
LAYER_ORDER: Tuple[str, ...] = (
    'version', 'registry', 'utils', 'structures', 'evaluation', 'datasets',
    'models', 'anchors', 'visualization', 'engine', 'apis',
    'protocols', 'apps', 'methods')
#: Layer of each subpackage of ``mmlesion`` (higher = may import lower).
LAYERS: Dict[str, int] = {name: i for i, name in enumerate(LAYER_ORDER)}
MAX_LINES = 600
#: The packages whose modules make up the import graph.
PACKAGES: Tuple[str, ...] = ('mmlesion', 'mmlesion_cli')
#: Top-level packages ``mmlesion_cli`` must not import (docs/layers.md): it
#: reaches them through ``mmlesion``.
CLI_FORBIDDEN: Tuple[str, ...] = ('torch', 'mmcv', 'mmdet')


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def iter_import_names(path: Path, root: Path
                      ) -> Iterator[Tuple[int, str, Tuple[str, ...]]]:
    """``(line, absolute module, names)`` of every import in a file.

    Every import of the file's syntax tree counts (module level, functions,
    ``if TYPE_CHECKING:``). Relative imports are resolved against the
    file's package (``root`` is the folder holding the top-level package).
    ``names`` are those taken by ``from module import ...`` (``'*'``
    included); ``()`` for a plain ``import module``.
    """
    module = _module_name(path, root)
    is_pkg = path.name == '__init__.py'
    package = module.split('.') if is_pkg else module.split('.')[:-1]
    yield from _import_names(path.read_text(), str(path), tuple(package))


@functools.lru_cache(maxsize=None)
def _import_names(text: str, filename: str, package: Tuple[str, ...]
                  ) -> Tuple[Tuple[int, str, Tuple[str, ...]], ...]:
    """:func:`iter_import_names` of a file's text, parsed once a process
    (the layering tests walk the same files each)."""
    out = []
    for node in ast.walk(ast.parse(text, filename=filename)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                name = '.'.join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ''
            out.append((node.lineno, name, tuple(a.name for a in node.names)))
    return tuple(out)


def iter_imports(path: Path, root: Path) -> Iterator[Tuple[int, str, bool]]:
    """``(line, absolute module, names_given)`` of every import in a file.

    As :func:`iter_import_names`; ``names_given`` is False for a plain
    ``import x`` (no names taken from ``x``).
    """
    for line, name, names in iter_import_names(path, root):
        yield line, name, bool(names)


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
                     layers: Dict[str, int] = LAYERS) -> List[str]:
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
                out.append(f'{path}:{line}: import {top} runs the '
                           'registration of every subpackage (an upward '
                           'import): import the module that holds what is '
                           f'needed; `import {top}` belongs to tools/ and '
                           'configs/')
                continue
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
    return out


def cli_violations(root: Path, top: str = 'mmlesion_cli',
                   forbidden: Tuple[str, ...] = CLI_FORBIDDEN) -> List[str]:
    """Imports of a ``forbidden`` top-level package by package ``top``."""
    out = []
    for path in _sources(root / top):
        for line, name, _ in iter_imports(path, root):
            if name.split('.')[0] in forbidden:
                out.append(f'{path}:{line}: {top} imports {name} ({top} '
                           'reaches the stack through mmlesion: no ' +
                           ', '.join(forbidden) + ')')
    return out


def import_graph(root: Path, packages: Tuple[str, ...] = PACKAGES
                 ) -> Tuple[Dict[str, Set[str]], Dict[Tuple[str, str], str]]:
    """The module import graph of ``packages`` (the rules of the module doc).

    Args:
        root (Path): the folder holding the packages.
        packages (tuple[str]): top-level packages whose modules are nodes.

    Returns:
        tuple: ``{module: modules it imports}`` (nodes of these packages
        only, no self edge) and ``{(module, imported): 'path:line'}`` of the
        first import of each edge.
    """
    paths = {}
    for top in packages:
        for path in _sources(root / top):
            paths[_module_name(path, root)] = path

    def known(name: str) -> Optional[str]:
        parts = name.split('.')
        while parts and '.'.join(parts) not in paths:
            parts.pop()
        return '.'.join(parts) or None

    graph: Dict[str, Set[str]] = {m: set() for m in paths}
    where: Dict[Tuple[str, str], str] = {}
    for src, path in sorted(paths.items()):
        for line, name, names in iter_import_names(path, root):
            targets = []
            for alias in names or ('',):
                sub = f'{name}.{alias}' if alias else name
                targets.append(sub if sub in paths else known(name))
            for dst in targets:
                if dst is None or dst == src:
                    continue
                graph[src].add(dst)
                where.setdefault((src, dst), f'{path}:{line}')
    return graph, where


def strongly_connected(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Tarjan's strongly connected components, without recursion.

    Args:
        graph (dict): node -> successors (successors need not be keys).

    Returns:
        list[list[str]]: every component (sorted), in the order found.
    """
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components = []

    def visit(node: str) -> Iterator[str]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return iter(sorted(graph.get(node, ())))

    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, visit(start))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    work.append((child, visit(child)))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:  # every child done: close the node
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def import_circles(root: Path,
                   packages: Tuple[str, ...] = PACKAGES) -> List[str]:
    """Every import circle (component of > 1 module) of ``packages``, with
    the imports inside it (where to cut)."""
    graph, where = import_graph(root, packages)
    out = []
    for component in strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        edges = sorted(f'{where[(a, b)]}: {a} -> {b}' for a in component
                       for b in graph[a] if b in members)
        out.append(f'import circle of {len(component)} modules: ' +
                   ', '.join(component) + '\n    ' + '\n    '.join(edges))
    return out


def folder_circles(root: Path, top: str = 'mmlesion') -> List[str]:
    """Every circle between the folders of package ``top``: the folder
    graph (an edge per module import between two folders, imports inside
    functions and under ``if TYPE_CHECKING:`` included) has no strongly
    connected component of more than one folder, whatever the layers say."""
    graph, where = import_graph(root, (top, ))
    folders: Dict[str, Set[str]] = {}
    edges: Dict[Tuple[str, str], List[str]] = {}
    for src, dsts in graph.items():
        a = _subpackage(src, top)
        if a is None or a == 'testing':
            continue
        folders.setdefault(a, set())
        for dst in dsts:
            b = _subpackage(dst, top)
            if b is None or b == a or b == 'testing':
                continue
            folders[a].add(b)
            edges.setdefault((a, b), []).append(
                f'{where[(src, dst)]}: {src} -> {dst}')
    out = []
    for component in strongly_connected(folders):
        if len(component) < 2:
            continue
        members = set(component)
        lines = sorted(line for a in component for b in folders[a]
                       if b in members for line in edges[(a, b)])
        out.append(f'circle between the folders {", ".join(component)}:'
                   '\n    ' + '\n    '.join(lines))
    return out


def library_cli_imports(root: Path, top: str = 'mmlesion',
                        cli: str = 'mmlesion_cli') -> List[str]:
    """Imports of the command-line package ``cli`` by the library ``top``
    (``mmlesion/testing`` included): the tools join the two."""
    out = []
    for path in _sources(root / top):
        for line, name, _ in iter_imports(path, root):
            if name == cli or name.startswith(cli + '.'):
                out.append(f'{path}:{line}: imports {name} (the library '
                           'does not import the command line: the tool '
                           'passes what it parsed)')
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


def projects_imports(
        root: Path,
        folders: Tuple[str, ...] = ('mmlesion', 'mmlesion_cli', 'tools',
                                    'configs')) -> List[str]:
    """Imports of ``projects`` (the laboratory, not installed) from the
    library, its tools or its configs."""
    out = []
    for folder in folders:
        for path in _sources(root / folder):
            for line, name, _ in iter_imports(path, root):
                if name == 'projects' or name.startswith('projects.'):
                    out.append(f'{path}:{line}: imports {name}')
    return out


def long_files(root: Path,
               folders: Tuple[str, ...] = ('mmlesion', 'tools', 'projects'),
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


def test_no_import_circles():
    assert import_circles(repo_root()) == []


def test_no_import_circles_in_the_laboratory():
    assert import_circles(repo_root(), ('mmlesion', 'projects')) == []


def test_no_circle_between_folders():
    assert folder_circles(repo_root()) == []


def test_library_does_not_import_the_cli():
    assert library_cli_imports(repo_root()) == []


def test_cli_imports_the_stack_only_through_the_library():
    assert cli_violations(repo_root()) == []


def test_testing_is_used_by_tests_only():
    assert runtime_testing_imports(repo_root()) == []


def test_library_does_not_import_the_laboratory():
    assert projects_imports(repo_root()) == []


def test_projects_import_is_reported(tmp_path):
    _write(tmp_path, 'mmlesion/__init__.py', '')
    _write(tmp_path, 'mmlesion/apis/run.py',
           'def f():\n    from projects.lens.lens_demo import x\n')
    _write(tmp_path, 'tools/t.py', 'import projects.study_demo\n')
    _write(tmp_path, 'projects/lens/lens_demo.py', 'import mmlesion\n')
    found = projects_imports(tmp_path)
    assert len(found) == 2
    assert any('apis/run.py:2' in f for f in found)
    assert any('tools/t.py:1' in f for f in found)


def test_no_file_over_600_lines():
    assert long_files(repo_root()) == []


def test_one_class_per_name():
    """No two classes of the package share a name (an import, a docstring
    link or a reader of the code would mean one and get the other)."""
    homes: Dict[str, List[str]] = {}
    for path in _sources(repo_root() / 'mmlesion'):
        for node in ast.parse(path.read_text(encoding='utf-8')).body:
            if isinstance(node, ast.ClassDef):
                homes.setdefault(node.name, []).append(
                    path.relative_to(repo_root()).as_posix())
    assert {name: files for name, files in homes.items()
            if len(files) > 1} == {}


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def fake_repo(tmp_path):
    """A clean miniature of the layout (no violation)."""
    for pkg in ('structures', 'utils', 'datasets', 'evaluation', 'apis',
                'testing'):
        _write(tmp_path, f'mmlesion/{pkg}/__init__.py', '')
    _write(tmp_path, 'mmlesion/__init__.py',
           'from . import datasets, evaluation, structures, utils\n')
    _write(tmp_path, 'mmlesion/datasets/__init__.py',
           'from .loader import x\nfrom .reader import r\n')
    # a package __init__ importing its submodules, a submodule importing a
    # sibling through the package (`from . import reader`): no circle
    _write(tmp_path, 'mmlesion/datasets/loader.py',
           'from ..structures import geometry\nfrom . import reader\n')
    _write(tmp_path, 'mmlesion/datasets/reader.py',
           'from typing import TYPE_CHECKING\n'
           'if TYPE_CHECKING:\n    from mmlesion.utils import io\n')
    _write(tmp_path, 'mmlesion/evaluation/metric.py',
           'from mmlesion.structures import geometry\n')
    _write(tmp_path, 'mmlesion/apis/run.py',
           'from ..datasets.loader import x\nfrom ..evaluation import m\n')
    _write(tmp_path, 'mmlesion/testing/helpers.py',
           'import mmlesion\nfrom mmlesion.apis.run import y\n')
    _write(tmp_path, 'mmlesion_cli/__init__.py', 'from .defaults import D\n')
    _write(tmp_path, 'mmlesion_cli/defaults.py',
           'import argparse\nfrom mmengine.config import DictAction\n')
    _write(tmp_path, 'tools/train.py',
           'import mmlesion\nfrom mmlesion.apis import run\n')
    _write(tmp_path, 'configs/a.py', "_base_ = ['b.py']\n")
    assert layer_violations(tmp_path) == []
    assert cli_violations(tmp_path) == []
    assert import_circles(tmp_path) == []
    assert folder_circles(tmp_path) == []
    assert library_cli_imports(tmp_path) == []
    assert runtime_testing_imports(tmp_path) == []
    assert long_files(tmp_path) == []
    return tmp_path


def test_circle_between_folders_is_caught(fake_repo):
    # modules that form no module circle, folders that do (the lazy import
    # counts), whatever the layers say
    _write(fake_repo, 'mmlesion/datasets/writer.py',
           'def f():\n    from mmlesion.evaluation.metric import m\n')
    _write(fake_repo, 'mmlesion/evaluation/reads.py',
           'from mmlesion.datasets.reader import r\n')
    assert import_circles(fake_repo) == []
    found = folder_circles(fake_repo)
    assert len(found) == 1
    assert 'folders datasets, evaluation' in found[0]
    assert 'writer.py:2: mmlesion.datasets.writer -> ' \
        'mmlesion.evaluation.metric' in found[0]
    assert 'reads.py:1' in found[0]


@pytest.mark.parametrize('line', [
    'import mmlesion_cli\n', 'from mmlesion_cli.defaults import D\n',
    'def f():\n    from mmlesion_cli import defaults\n'])
def test_library_importing_the_cli_is_caught(fake_repo, line):
    _write(fake_repo, 'mmlesion/utils/bad.py', line)
    found = library_cli_imports(fake_repo)
    assert len(found) == 1 and 'utils/bad.py' in found[0]


def test_upward_import_is_caught(fake_repo):
    _write(fake_repo, 'mmlesion/datasets/bad.py',
           'def f():\n    from ..apis.run import y  # lazy, still upward\n')
    found = layer_violations(fake_repo)
    assert len(found) == 1 and 'datasets (layer 5) imports mmlesion.apis.run (layer 10)' \
        in found[0] and 'bad.py:2' in found[0]


def test_evaluation_importing_datasets_is_caught(fake_repo):
    _write(fake_repo, 'mmlesion/evaluation/bad.py',
           'from mmlesion.datasets.loader import x\n')
    found = layer_violations(fake_repo)
    assert len(found) == 1 and 'evaluation (layer 4) imports ' \
        'mmlesion.datasets.loader (layer 5)' in found[0]


def test_unknown_subpackage_and_root_names_are_caught(fake_repo):
    _write(fake_repo, 'mmlesion/newpkg/__init__.py', '')
    _write(fake_repo, 'mmlesion/utils/bad.py', 'from mmlesion import apis\n')
    found = layer_violations(fake_repo)
    assert len(found) == 2
    assert any("'newpkg' has no layer" in f for f in found)
    assert any('from mmlesion import ...' in f for f in found)


def test_type_checking_import_counts(fake_repo):
    _write(fake_repo, 'mmlesion/utils/bad.py',
           'from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
           '    from mmlesion.datasets.loader import x\n')
    found = layer_violations(fake_repo)
    assert len(found) == 1 and 'bad.py:3' in found[0]


@pytest.mark.parametrize('pkg', ['utils', 'structures', 'apis'])
def test_import_mmlesion_inside_the_package_is_caught(fake_repo, pkg):
    _write(fake_repo, f'mmlesion/{pkg}/bad.py',
           'def f():\n    import mmlesion  # registers the datasets\n')
    found = layer_violations(fake_repo)
    assert len(found) == 1 and 'bad.py:2: import mmlesion runs' in found[0]
    # ... and where the subpackage imports the module, it is a circle too
    _write(fake_repo, f'mmlesion/{pkg}/__init__.py', 'from .bad import f\n')
    _write(fake_repo, 'mmlesion/__init__.py',
           f'from . import {pkg}\n')
    found = import_circles(fake_repo)
    assert len(found) == 1
    assert f'mmlesion, mmlesion.{pkg}, mmlesion.{pkg}.bad' in found[0]
    assert f'bad.py:2: mmlesion.{pkg}.bad -> mmlesion' in found[0]


def test_import_circle_is_caught(fake_repo):
    _write(fake_repo, 'mmlesion/datasets/a.py', 'from . import b\n')
    _write(fake_repo, 'mmlesion/datasets/b.py',
           'def f():\n    from mmlesion.datasets.c import g  # lazy\n')
    _write(fake_repo, 'mmlesion/datasets/c.py',
           'from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n'
           '    from .a import A\n')
    _write(fake_repo, 'mmlesion/evaluation/d.py', 'from . import e\n')
    _write(fake_repo, 'mmlesion/evaluation/e.py', 'from .d import x\n')
    found = import_circles(fake_repo)
    assert len(found) == 2
    abc = next(f for f in found if 'datasets.a' in f)
    assert 'circle of 3 modules' in abc
    assert 'a.py:1: mmlesion.datasets.a -> mmlesion.datasets.b' in abc
    assert 'b.py:2: mmlesion.datasets.b -> mmlesion.datasets.c' in abc
    assert 'c.py:3: mmlesion.datasets.c -> mmlesion.datasets.a' in abc
    assert layer_violations(fake_repo) == []  # same layer: only a circle


def test_name_from_own_package_init_is_a_circle(fake_repo):
    # `from . import x` takes the name x from datasets/__init__.py, which
    # imports reader: reader needs its own package half-imported.
    _write(fake_repo, 'mmlesion/datasets/reader.py', 'from . import x\n')
    found = import_circles(fake_repo)
    assert len(found) == 1
    assert any(line.endswith('reader.py:1: mmlesion.datasets.reader -> '
                             'mmlesion.datasets')
               for line in found[0].splitlines()), found


def test_circle_between_the_packages_is_caught(fake_repo):
    # (the library importing the CLI is reported on its own as well)
    _write(fake_repo, 'mmlesion/datasets/loader.py',
           'from mmlesion_cli.defaults import D\n')
    _write(fake_repo, 'mmlesion_cli/defaults.py',
           'def run():\n    from mmlesion.datasets import loader\n')
    found = import_circles(fake_repo)
    assert len(found) == 1 and ('mmlesion.datasets.loader, '
                                'mmlesion_cli.defaults') in found[0]
    assert len(library_cli_imports(fake_repo)) == 1
    assert cli_violations(fake_repo) == []  # the CLI may import mmlesion


def test_cli_importing_the_stack_is_caught(fake_repo):
    _write(fake_repo, 'mmlesion_cli/bad.py',
           'import torch\nfrom typing import TYPE_CHECKING\n'
           'if TYPE_CHECKING:\n    from mmdet.registry import MODELS\n'
           'def f():\n    import mmcv.ops\n'
           '    from mmlesion.datasets import loader\n'
           '    import mmlesion_cli.defaults\n    from . import defaults\n')
    found = sorted(cli_violations(fake_repo),
                   key=lambda f: int(f.split(': ')[0].rsplit(':', 1)[1]))
    assert [f.split(': ')[0].rsplit(':', 1)[1] for f in found] == \
        ['1', '4', '6'], found
    assert 'mmlesion_cli imports mmcv.ops' in found[2]


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
