# Copyright (c) mmlesion contributors. All rights reserved.
"""The modules of ``mmlesion/apis/whole_scan`` follow a scan's path: each
imports only the modules before it in :data:`STAGES` (the order of the
package's docstring), so the imports point one way."""
import ast
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

from mmlesion.testing import repo_root

PACKAGE = 'mmlesion.apis.whole_scan'
#: The modules in the order a scan passes them (types first, the runners
#: on top).
STAGES = ('settings', 'results', 'model', 'read', 'resample', 'slices',
          'detect', 'stack', 'measure', 'infer', 'write_dicom', 'write',
          'run', 'scan_list', 'batch')


def _imported_stages(source: str) -> Iterator[Tuple[int, str]]:
    """``(line, module)`` of every import of a sibling module (relative
    or absolute, at any depth of the file)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module
                names = [] if node.module else [a.name for a in node.names]
            elif node.level == 0 and (node.module or '').startswith(
                    PACKAGE):
                rest = node.module[len(PACKAGE):].lstrip('.')
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
                if alias.name.startswith(PACKAGE + '.'):
                    yield node.lineno, alias.name[len(PACKAGE) + 1:].split(
                        '.')[0]


def backward_imports(sources: Sequence[Tuple[str, str]],
                     stages: Sequence[str] = STAGES) -> List[str]:
    """``module:line imports later`` for every import that points against
    the order, and every module missing from it."""
    out = []
    for module, source in sources:
        if module not in stages:
            out.append(f'{module}: not in STAGES; place it on the path')
            continue
        for line, other in _imported_stages(source):
            if other in stages and stages.index(other) >= stages.index(
                    module):
                out.append(f'{module}.py:{line} imports {other}, a later '
                           'stage')
    return out


def _package_sources() -> List[Tuple[str, str]]:
    folder = repo_root() / Path(*PACKAGE.split('.'))
    return [(p.stem, p.read_text()) for p in sorted(folder.glob('*.py'))
            if p.stem != '__init__']


def test_imports_follow_the_scan_path():
    sources = _package_sources()
    assert {m for m, _ in sources} == set(STAGES)
    assert backward_imports(sources) == []


def test_the_order_is_the_package_docstring_order():
    doc = ast.get_docstring(ast.parse(
        (repo_root() / Path(*PACKAGE.split('.')) / '__init__.py').read_text()))
    listed = [line.split('``')[1] for line in doc.splitlines()
              if line.startswith('``')]
    assert tuple(listed) == STAGES


def test_a_backward_import_is_reported():
    sources = [('detect', 'from .measure import x\n'),
               ('measure', 'def f():\n    from . import infer\n'),
               ('stack', f'import {PACKAGE}.write\n'),
               ('infer', f'from {PACKAGE}.measure import m\n'),
               ('extra', '')]
    assert backward_imports(sources) == [
        'detect.py:1 imports measure, a later stage',
        'measure.py:2 imports infer, a later stage',
        'stack.py:1 imports write, a later stage',
        'extra: not in STAGES; place it on the path']
