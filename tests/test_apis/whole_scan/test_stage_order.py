# Copyright (c) mmlesion contributors. All rights reserved.
"""The modules of ``mmlesion/apis/whole_scan`` follow a scan's path: each
imports only the modules before it in :data:`STAGES` (the order of the
package's docstring), so the imports point one way; and the path names no
method: it imports none of the other modules of ``mmlesion.apis`` (a
method's steps reach it as objects its caller hands in) but the one
detector loader every path shares (:data:`SHARED`). Every import counts,
also those inside functions and under ``if TYPE_CHECKING:``."""
import ast
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import pytest

from mmlesion.testing import repo_root

PACKAGE = 'mmlesion.apis.whole_scan'
#: The package the path lies in.
PARENT = PACKAGE.rsplit('.', 1)[0]
#: The modules of :data:`PARENT` the path may import: the detector loader
#: of every path (no method's).
SHARED = ('detector_loader', )
#: The modules in the order a scan passes them (types first, the runners
#: on top).
STAGES = ('settings', 'method_steps', 'results', 'model', 'backend', 'read',
          'resample', 'slices', 'detect', 'stack', 'measure', 'infer',
          'dicom_sources', 'write_dicom', 'write', 'run', 'calibrate')
#: The applications on the path (many scans, shards, DICOM servers), in
#: their package's docstring order: each imports the one-scan path and the
#: applications before it.
APPS = 'mmlesion.apps.whole_scan'
APP_STAGES = ('scan_list', 'batch', 'shard_summary', 'shards',
              'server_source', 'dicomweb_source', 'dimse_source',
              'store_back', 'dicomweb_batch', 'server_shards')


def _imported_stages(source: str,
                     package: str = PACKAGE,
                     depth: int = 0) -> Iterator[Tuple[int, str]]:
    """``(line, module)`` of every import of a sibling module (relative
    or absolute, at any depth of the file) by a module ``depth``
    subpackages below the package (a subpackage's imports of its own
    modules are not the path's)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 + depth:
                base = node.module
                names = [] if node.module else [a.name for a in node.names]
            elif node.level == 0 and (node.module or '').startswith(
                    package):
                rest = node.module[len(package):].lstrip('.')
                base = rest or None
                names = [] if rest else [a.name for a in node.names]
            else:
                continue
            if base:
                yield node.lineno, base.split('.')[0]
            for name in names:  # from . import x, from PACKAGE import x
                yield node.lineno, name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(package + '.'):
                    yield node.lineno, alias.name[len(package) + 1:].split(
                        '.')[0]


def _parent_imports(source: str,
                    depth: int = 0) -> Iterator[Tuple[int, str]]:
    """``(line, module)`` of every import of a module of :data:`PARENT`
    outside the package (relative or absolute, at any depth of the
    file) by a module ``depth`` subpackages below the package."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 2 + depth or (node.level == 0
                                           and node.module == PARENT):
                rest = node.module if node.level else None
            elif node.level == 0 and (node.module or '').startswith(
                    PARENT + '.'):
                rest = node.module[len(PARENT) + 1:]
            elif node.level > 2 + depth:
                yield node.lineno, ('.' * (node.level - depth)
                                    + (node.module or ''))
                continue
            else:
                continue
            names = [rest] if rest else [a.name for a in node.names]
            for name in names:  # from .. import x, from PARENT import x
                yield node.lineno, name.split('.')[0]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PARENT + '.'):
                    yield node.lineno, alias.name[len(PARENT) + 1:].split(
                        '.')[0]


def method_imports(sources: Sequence[Tuple[str, str]],
                   shared: Sequence[str] = SHARED) -> List[str]:
    """``module:line imports PARENT.other`` for every import of a module
    of :data:`PARENT` other than the package itself and ``shared``."""
    package = PACKAGE.rsplit('.', 1)[1]
    return [f'{module}.py:{line} imports {PARENT}.{other}'
            for module, source in sources
            for line, other in _parent_imports(source, module.count('/'))
            if other not in (package, ) + tuple(shared)]


def backward_imports(sources: Sequence[Tuple[str, str]],
                     stages: Sequence[str] = STAGES,
                     package: str = PACKAGE) -> List[str]:
    """``module:line imports later`` for every import that points against
    the order, and every module missing from it."""
    out = []
    for module, source in sources:
        stage = module.split('/')[0]
        if stage not in stages:
            out.append(f'{module}: not in STAGES; place it on the path')
            continue
        for line, other in _imported_stages(source, package,
                                            module.count('/')):
            if other in stages and stages.index(other) >= stages.index(
                    stage):
                out.append(f'{module}.py:{line} imports {other}, a later '
                           'stage')
    return out


def _package_sources(package: str = PACKAGE) -> List[Tuple[str, str]]:
    """``(module, source)`` of each module of ``package`` but its
    ``__init__``; a stage that is a subpackage (``backend/``) gives each of
    its modules, ``__init__`` too, as ``<stage>/<module>``."""
    folder = repo_root() / Path(*package.split('.'))
    return [(p.stem, p.read_text()) for p in sorted(folder.glob('*.py'))
            if p.stem != '__init__'] + [
                (f'{p.parent.name}/{p.stem}', p.read_text())
                for p in sorted(folder.glob('*/*.py'))]


def test_imports_follow_the_scan_path():
    sources = _package_sources()
    assert {m.split('/')[0] for m, _ in sources} == set(STAGES)
    assert backward_imports(sources) == []


def test_the_applications_follow_the_run_path():
    """The applications import the one-scan path (any stage) and the
    applications before them, never a later one."""
    sources = _package_sources(APPS)
    assert {m for m, _ in sources} == set(APP_STAGES)
    assert backward_imports(sources, APP_STAGES, APPS) == []


def test_the_path_imports_no_method():
    assert method_imports(_package_sources()) == []


def test_an_import_of_a_method_is_reported():
    sources = [
        ('run', 'def f():\n    from ..series_inference import x\n'),
        ('stack', 'import os\n\n\ndef g():\n    if True:\n'
         f'        from {PARENT}.lens_fpr_rescore import r\n'),
        ('model', f'from {PARENT} import lens_eval_3d, detector_loader\n'),
        ('infer', 'from .. import whole_scan\nfrom ...utils import u\n'),
        ('batch', f'import {PARENT}.luna16_cv as c\n'),
        ('write', 'from ..detector_loader import init_lesion_detector\n'
         'from .results import Finding\nfrom mmlesion.utils import x\n'),
        ('backend/use', 'from ...lens_eval_3d import e\n'
         'from ..results import r\nfrom .session import s\n'),
    ]
    assert method_imports(sources) == [
        f'run.py:2 imports {PARENT}.series_inference',
        f'stack.py:6 imports {PARENT}.lens_fpr_rescore',
        f'model.py:1 imports {PARENT}.lens_eval_3d',
        f'infer.py:2 imports {PARENT}....utils',
        f'batch.py:1 imports {PARENT}.luna16_cv',
        f'backend/use.py:1 imports {PARENT}.lens_eval_3d']


@pytest.mark.parametrize('package,stages', [(PACKAGE, STAGES),
                                            (APPS, APP_STAGES)])
def test_the_order_is_the_package_docstring_order(package, stages):
    doc = ast.get_docstring(ast.parse(
        (repo_root() / Path(*package.split('.')) / '__init__.py').read_text()))
    listed = [line.split('``')[1] for line in doc.splitlines()
              if line.startswith('``')]
    assert tuple(listed) == stages


def test_a_backward_import_is_reported():
    sources = [('detect', 'from .measure import x\n'),
               ('measure', 'def f():\n    from . import infer\n'),
               ('stack', f'import {PACKAGE}.write\n'),
               ('infer', f'from {PACKAGE}.measure import m\n'),
               ('backend/use', 'from ..detect import d\n'
                'from .results import r\nfrom ..results import r\n'),
               ('extra', '')]
    assert backward_imports(sources) == [
        'detect.py:1 imports measure, a later stage',
        'measure.py:2 imports infer, a later stage',
        'stack.py:1 imports write, a later stage',
        'backend/use.py:1 imports detect, a later stage',
        'extra: not in STAGES; place it on the path']
