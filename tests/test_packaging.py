# Copyright (c) mmlesion contributors. All rights reserved.
"""What a wheel installs, and what the laboratory needs to run from a clone.

* ``setup.py`` packages ``mmlesion`` and ``mmlesion_cli`` (every
  subpackage of each) and nothing else: not ``tests`` (nor
  ``tests.helpers``), not ``projects``. Read from the arguments
  ``setup.py`` gives ``setup()``, without building (a wheel takes a
  minute; ``test_user_config_inherits_installed_configs`` builds one).
* A script under ``projects/`` or ``tools/`` that imports ``projects`` or
  ``tests`` (itself or through a module beside it) puts the clone's root on
  ``sys.path`` at module level, before any such import: ``python
  <script>`` puts only the script's folder there (pytest adds the root,
  which hides the fault). Read from the source: running every script would
  take a second or more each.
* The library knows no folder of our laboratory: the real data is the
  folder ``MMLESION_SHARED_DATA`` names; the suite names ours.
* The wheel holds no module that only the laboratory uses: every module of
  ``mmlesion`` and of ``mmlesion_cli`` is reached from what a user runs or
  imports (the packages themselves, whose ``__init__`` chain registers the
  components, ``tools/`` and ``configs/``, through imports or a string
  naming the module such as ``custom_imports`` or ``type='mmlesion.x.Y'``),
  or is in :data:`LAB_USED_ON_PURPOSE` with its reason. A module only
  ``tests/`` or ``projects/`` import belongs there (a reference
  implementation, a study's analysis, a benchmark's timing). Read from the
  imports: cheap.
"""
import ast
import runpy
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest
import setuptools

from mmlesion.testing import repo_root
from mmlesion.utils.data_roots import SHARED_DATA_ENV, shared_data_root
from tests.helpers.data_roots import LAB_SHARED_DATA, name_lab_shared_data

#: The top-level packages a wheel may hold.
INSTALLED = ('mmlesion', 'mmlesion_cli')
#: The laboratory's packages: never installed, never imported by the library.
LABORATORY = ('projects', 'tests')
#: What a user runs from a clone or an install, beside the package itself.
USER_FOLDERS = ('tools', 'configs')
#: Modules (with their submodules) of the package that only the laboratory
#: imports, by design, and why they ship.
LAB_USED_ON_PURPOSE = {
    'mmlesion.testing': "what a user's own tests import, as mmdet.testing",
}


def setup_arguments(root: Path, monkeypatch) -> dict:
    """The keyword arguments ``root/setup.py`` gives ``setup()``, read
    without running it (no command: nothing is written)."""
    seen: Dict[str, dict] = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kw: seen.update(kw))
    monkeypatch.setattr(sys, 'argv', ['setup.py'])
    monkeypatch.chdir(root)
    runpy.run_path(str(root / 'setup.py'), run_name='__main__')
    return seen


def source_packages(root: Path, top: str) -> Set[str]:
    """Every package (folder with ``__init__.py``) under ``root/top``."""
    return {
        '.'.join(p.parent.relative_to(root).parts)
        for p in (root / top).rglob('__init__.py')
        if '.mim' not in p.parts and '__pycache__' not in p.parts
    }


def _imported(node: ast.AST) -> List[str]:
    """The absolute module names an import statement names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level:
        return [node.module or '']
    return []


def lab_imports(path: Path) -> List[str]:
    """The modules of :data:`LABORATORY` a file imports, anywhere in it."""
    return [
        name for node in ast.walk(ast.parse(path.read_text(), str(path)))
        for name in _imported(node) if name.split('.')[0] in LABORATORY
    ]


def _sources(folder: Path) -> List[Path]:
    """The ``.py`` files under ``folder`` (no hidden folder such as
    ``mmlesion/.mim``, no ``__pycache__``)."""
    return sorted(p for p in folder.rglob('*.py') if not any(
        part.startswith('.') or part == '__pycache__'
        for part in p.relative_to(folder).parts))


def _module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def module_refs(path: Path, root: Path, known: Set[str]) -> Set[str]:
    """The modules of ``known`` a file refers to: every import (relative
    ones resolved; ``from a import b`` names ``a.b`` too) and every string
    naming a module or a name in one (``'mmlesion.x.Y'``), with the
    packages above each (Python runs their ``__init__`` on the way); a
    package's ``__init__`` that imports what ``pkgutil.iter_modules``
    finds (``mmlesion/methods``) refers to each of its subpackages."""
    module = _module_of(path, root)
    package = module.split('.')
    if path.name != '__init__.py':
        package = package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                base = '.'.join(package[:len(package) - node.level + 1] +
                                ([node.module] if node.module else []))
            names.add(base)
            names.update(f'{base}.{a.name}' for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
        elif (isinstance(node, ast.Attribute) and node.attr == 'iter_modules'
              and path.name == '__init__.py'):
            names.update(f'{module}.{sub.name}'
                         for sub in path.parent.iterdir()
                         if (sub / '__init__.py').is_file())
    found = set()
    for name in names:
        parts = name.split('.')
        found.update('.'.join(parts[:i]) for i in range(1, len(parts) + 1)
                     if '.'.join(parts[:i]) in known)
    return found


def lab_only_modules(root: Path, top: str = 'mmlesion',
                     allowed=LAB_USED_ON_PURPOSE) -> Dict[str, List[str]]:
    """The modules of package ``top`` that nothing a user runs reaches
    (-> the laboratory files that import them; none: dead code).

    Reached: the installed packages themselves (a user imports them), the
    files of :data:`USER_FOLDERS`, and what those import, transitively
    through the installed packages."""
    paths = {_module_of(p, root): p for pkg in INSTALLED
             for p in _sources(root / pkg)}
    known = set(paths)
    reached: Set[str] = set()
    todo = [pkg for pkg in INSTALLED if pkg in known]
    for folder in USER_FOLDERS:
        for path in _sources(root / folder):
            todo.extend(module_refs(path, root, known))
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(module_refs(paths[name], root, known))
    unreached = {
        name for name in known - reached
        if name.split('.')[0] == top and not any(
            name == a or name.startswith(a + '.') for a in allowed)
    }
    users: Dict[str, List[str]] = {name: [] for name in unreached}
    for folder in LABORATORY if unreached else ():
        for path in _sources(root / folder):
            for name in module_refs(path, root, known) & unreached:
                users[name].append(str(path.relative_to(root)))
    return users


@pytest.mark.parametrize('top', INSTALLED)
def test_wheel_holds_no_laboratory_only_module(top):
    """Move such a module to ``tests/helpers/`` or beside its project under
    ``projects/`` (benchmarks included); delete one nothing imports."""
    assert lab_only_modules(repo_root(), top) == {}


def test_laboratory_only_module_is_reported(tmp_path):
    files = {
        'mmlesion/__init__.py': 'from . import evaluation\n',
        'mmlesion/evaluation/__init__.py': 'from .metric import M\n',
        'mmlesion/evaluation/metric.py': 'from . import _fast\n',
        'mmlesion/evaluation/_fast.py': '',
        'mmlesion/evaluation/reference.py': '',  # tests and benchmark
        'mmlesion/evaluation/by_tool.py': '',
        'mmlesion/evaluation/by_config.py': '',
        'mmlesion/evaluation/dead.py': '',
        'mmlesion/testing/__init__.py': 'from .batches import b\n',
        'mmlesion/testing/batches.py': '',
        'mmlesion_cli/__init__.py': '',
        'mmlesion_cli/args.py': 'from mmlesion.evaluation import by_tool\n',
        'mmlesion_cli/timing.py': '',  # the benchmark's only
        'tools/train.py': 'def main():\n    import mmlesion_cli.args\n',
        'configs/a.py': "m = dict(type='mmlesion.evaluation.by_config.B')\n",
        'tests/test_metric.py': 'from mmlesion.evaluation.reference import r'
                                '\nfrom mmlesion.testing import b\n',
        'projects/benchmarks/bench.py':
            'import mmlesion.evaluation.reference\n'
            'from mmlesion_cli.timing import t\n',
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert lab_only_modules(tmp_path) == {
        'mmlesion.evaluation.reference': [
            'projects/benchmarks/bench.py', 'tests/test_metric.py'],
        'mmlesion.evaluation.dead': []}
    assert lab_only_modules(tmp_path, 'mmlesion_cli') == {
        'mmlesion_cli.timing': ['projects/benchmarks/bench.py']}
    assert set(lab_only_modules(tmp_path, allowed={})) == {
        'mmlesion.evaluation.reference', 'mmlesion.evaluation.dead',
        'mmlesion.testing', 'mmlesion.testing.batches'}


def test_wheel_holds_the_library_only(monkeypatch):
    root = repo_root()
    args = setup_arguments(root, monkeypatch)
    packages = set(args['packages'])
    assert {p.split('.')[0] for p in packages} <= set(INSTALLED), packages
    expected = set().union(
        *(source_packages(root, top) for top in INSTALLED))
    assert packages == expected
    assert set(args['package_data']) <= set(INSTALLED)
    # the configs and tools travel inside the package (mmlesion/.mim)
    assert '.mim/configs/**/*.py' in args['package_data']['mmlesion']


def test_setup_leaves_out_a_laboratory_package(tmp_path, monkeypatch):
    """The check above fails on a clone whose ``tests`` has a
    subpackage (what ``exclude=('tests',)`` let through)."""
    for pkg in ('mmlesion', 'mmlesion/utils', 'tests', 'tests/helpers',
                'projects/lens', 'data/some'):
        (tmp_path / pkg).mkdir(parents=True)
        (tmp_path / pkg / '__init__.py').write_text('')
    (tmp_path / 'setup.py').write_text(
        (repo_root() / 'setup.py').read_text().replace(
            'version=get_version()', "version='0'"))
    (tmp_path / 'requirements').mkdir()
    for name in ('runtime', 'tests', 'optional', 'dicom'):
        (tmp_path / 'requirements' / f'{name}.txt').write_text('')
    args = setup_arguments(tmp_path, monkeypatch)
    assert sorted(args['packages']) == ['mmlesion', 'mmlesion.utils']


def test_library_imports_no_laboratory():
    root = repo_root()
    found = {
        str(path.relative_to(root)): lab_imports(path)
        for top in INSTALLED for path in (root / top).rglob('*.py')
        if '.mim' not in path.parts
    }
    assert {k: v for k, v in found.items() if v} == {}


def is_script(tree: ast.Module) -> bool:
    """Whether a module has ``if __name__ == '__main__':``."""
    return any(
        isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == '__name__' for node in tree.body)


def needs_root(path: Path, seen: Optional[Set[Path]] = None) -> bool:
    """Whether running ``path`` imports the laboratory: itself, or a module
    beside it that it imports by name (found on ``sys.path[0]``)."""
    seen = set() if seen is None else seen
    seen.add(path)
    if lab_imports(path):
        return True
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        for name in _imported(node):
            sibling = path.parent / f'{name.split(".")[0]}.py'
            if (sibling.is_file() and sibling not in seen
                    and needs_root(sibling, seen)):
                return True
    return False


def _runs_lab_import(stmt: ast.stmt) -> bool:
    """Whether a module-level statement imports the laboratory as it runs
    (a function's body runs later)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    return any(
        name.split('.')[0] in LABORATORY for node in ast.walk(stmt)
        for name in _imported(node))


def _inserts_root(stmt: ast.stmt, depth: int,
                  assigned: Dict[str, ast.expr]) -> bool:
    """Whether a module-level statement runs ``sys.path.insert(0, ROOT)``
    with ``ROOT`` the clone's root (``Path(__file__)...parents[depth]``,
    directly or through a name assigned before)."""
    for node in ast.walk(stmt):
        if not (isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == 'insert' and len(node.args) == 2
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == 'path'):
            continue
        todo, parents = [node.args[1]], []
        while todo:
            for sub in ast.walk(todo.pop()):
                if isinstance(sub, ast.Name) and sub.id in assigned:
                    todo.append(assigned.pop(sub.id))
                elif (isinstance(sub, ast.Subscript)
                      and isinstance(sub.value, ast.Attribute)
                      and sub.value.attr == 'parents'
                      and isinstance(sub.slice, ast.Constant)):
                    parents.append(sub.slice.value)
        if parents == [depth]:
            return True
    return False


def root_path_fault(path: Path, root: Path) -> Optional[str]:
    """Why ``python path`` run from the clone cannot import the laboratory
    (None where it can, or where it needs not)."""
    tree = ast.parse(path.read_text(), str(path))
    if not is_script(tree) or not needs_root(path):
        return None
    depth = len(path.relative_to(root).parts) - 1
    assigned: Dict[str, ast.expr] = {}
    for stmt in tree.body:
        if _inserts_root(stmt, depth, dict(assigned)):
            return None
        if _runs_lab_import(stmt):
            return f'line {stmt.lineno} imports the laboratory first'
        if isinstance(stmt, ast.Assign):
            assigned.update((t.id, stmt.value) for t in stmt.targets
                            if isinstance(t, ast.Name))
    return 'imports the laboratory, never puts the root on sys.path'


def test_scripts_put_the_root_on_the_path():
    root = repo_root()
    faults = {
        str(path.relative_to(root)): root_path_fault(path, root)
        for top in ('projects', 'tools') for path in (root / top).rglob(
            '*.py') if '__pycache__' not in path.parts
    }
    assert {k: v for k, v in faults.items() if v} == {}


_BLOCK = ('import sys as _sys\nfrom pathlib import Path as _Path\n'
          '_ROOT = str(_Path(__file__).resolve().parents[{}])\n'
          'if _ROOT not in _sys.path:\n    _sys.path.insert(0, _ROOT)\n')
_MAIN = "\nif __name__ == '__main__':\n    main()\n"


@pytest.mark.parametrize('text, fault', [
    ('def main():\n    from projects.a import b\n' + _MAIN, 'never'),
    ('from tests.helpers import x\n' + _BLOCK.format(2) + _MAIN, 'line 1'),
    (_BLOCK.format(1) + 'import projects.a\n' + _MAIN, 'line 6'),
    ('import sibling\n' + _MAIN, 'never'),
    (_BLOCK.format(2) + 'def main():\n    import projects.a\n' + _MAIN,
     None),
    ('import mmlesion\n' + _MAIN, None),
    ('from projects.a import b\n', None),  # a module, not a script
])
def test_root_path_fault_is_reported(tmp_path, text, fault):
    """The check above on synthetic scripts (the first is the fault of a
    benchmark whose only import of ``projects`` sat in a function)."""
    script = tmp_path / 'projects' / 'bench' / 'script.py'
    script.parent.mkdir(parents=True)
    script.write_text(text)
    (script.parent / 'sibling.py').write_text('import tests.helpers\n')
    found = root_path_fault(script, tmp_path)
    assert found == fault if fault is None else fault in found


def test_library_knows_no_laboratory_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    assert shared_data_root() is None  # even beside our data
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / 'absent'))
    assert shared_data_root() is None
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    assert shared_data_root() == tmp_path.resolve()


def test_suite_names_the_laboratory_folder(tmp_path):
    environ = {SHARED_DATA_ENV: str(tmp_path)}
    name_lab_shared_data(environ)
    assert environ == {SHARED_DATA_ENV: str(tmp_path)}  # a named one stays
    for environ in ({}, {SHARED_DATA_ENV: str(tmp_path / 'absent')}):
        name_lab_shared_data(environ)
        expected = (str(LAB_SHARED_DATA.resolve())
                    if LAB_SHARED_DATA.is_dir() else environ.get(
                        SHARED_DATA_ENV))
        assert environ.get(SHARED_DATA_ENV) == expected
