# Copyright (c) mmlesion contributors. All rights reserved.
"""The public functions of ``mmlesion/apis/`` and of the whole-scan
applications (``mmlesion/apps/whole_scan/``) return typed results
(dataclasses), not dicts passed around: no public function's return
annotation is a dict type (``dict``, ``Dict``, ``Mapping``,
``OrderedDict``, ...) or a tuple of heterogeneous things (a bare
``tuple`` / ``Tuple``, ``Tuple[A, B]``), also behind ``Optional`` /
``Union`` / ``X | None`` or in quotes; and every public function has a
return annotation, so the check sees them all.

Public: a module-level function or a method of a class whose name has no
leading underscore (dunder methods excluded). A tuple of one type
(``Tuple[int, int, int]``: a shape; ``Tuple[str, ...]``) is typed. A
method named as in :data:`SERIALISERS` is the dict a file is written from
(``findings.json``, ``scans.csv``). Anything else goes in
:data:`ALLOWED`, its reason beside it.
"""
import ast
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

from mmlesion.testing import repo_root

PACKAGE = ('mmlesion', 'apis')
#: The applications checked with it (their modules named from ``mmlesion``).
APPS = ('mmlesion', 'apps', 'whole_scan')
#: Return types that are a mapping.
DICT_TYPES = frozenset({'dict', 'Dict', 'Mapping', 'MutableMapping',
                        'OrderedDict', 'DefaultDict', 'defaultdict'})
TUPLE_TYPES = frozenset({'tuple', 'Tuple'})
#: Methods that give the dict a file is written from.
SERIALISERS = frozenset({'to_dict', 'to_json'})
#: ``module:qualified name`` -> why it may return a dict or tuple.
ALLOWED = {
    'whole_scan.settings:DetectionSettings.lesion_steps':
    "the stacking's lesion steps by field name: the keyword arguments "
    'dataclasses.replace takes back and the mapping a per-scan record '
    "stores (OperatingPoints.lesion_steps, findings.json's settings)",
    'detector_loader:config_metainfo':
    "mmengine's dataset_meta (classes, palette) of a config: the mapping "
    'mmengine and mmdet read as model.dataset_meta and the visualizer\'s; '
    'the inferencer uses it, so it cannot be private',
    'det_inferencer:LesionDetInferencer.pred2dict':
    "overrides mmdet's DetInferencer.pred2dict, whose dict mmdet itself "
    'dumps as the prediction JSON',
    'series_inference:predict_series_3d':
    'series name -> findings (Finding3D): a mapping of the data\'s own '
    'names (the series folders the dataset holds)',
    'whole_scan.settings:ModelAdjustment.record':
    "the protocol of a method's model adjustment: a JSON record "
    'findings.json embeds verbatim (keys the method names)',
    'whole_scan.settings:RunSettings.rescorer_files':
    "role -> file of the run's re-scorer (FindingRescorer.files: roles the "
    "re-scorer names), spread into run_provenance's **files; read by "
    'run.py and batch.py',
    'whole_scan.model:checkpoint_meta':
    "a checkpoint's meta as mmengine wrote it (a dict of the trainer's "
    'own keys), taken from the checkpoint read once before the model is '
    'built, for the operating point and the data convention; read by '
    'run.py and the tests',
    'whole_scan.model:read_checkpoint':
    'a checkpoint as mmengine wrote it (the dict torch.load gives), read '
    "once per run for its meta and handed to the model's load "
    '(init_lesion_detector(preloaded=)); read by run.py and the tests',
    'whole_scan.model:checkpoint_data_convention':
    "the record a checkpoint's meta holds (DataConventionHook's JSON-like "
    'dict, possibly with invalid values that are warned about), returned '
    'verbatim for volume_settings_from_config(trained=Mapping); read by '
    'run.py and the tests',
    'apps.whole_scan.shards:ShardWork.reasons':
    "work item -> its one-line failure reason: a mapping of the data's own "
    'names (scan folders), merged into the sharded run\'s scans.csv',
    'apps.whole_scan.server_shards:SeriesWork.reasons':
    "series UID -> its one-line failure reason (the data's own names), as "
    'ShardWork.reasons',
    'apps.whole_scan.batch:read_csv_rows':
    'a CSV\'s rows by one of its columns (the rows csv.DictReader gives, '
    'keyed by scan folder or series UID), read back from a shard\'s tables',
}


def _unquoted(node: Optional[ast.expr]) -> Optional[ast.expr]:
    """A string annotation parsed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ast.parse(node.value, mode='eval').body
    return node


def _name(node: ast.expr) -> str:
    """``Dict`` of ``Dict``, ``typing.Dict``, ``Dict[...]``."""
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ''


def _alternatives(node: ast.expr) -> Iterator[ast.expr]:
    """The types of ``Optional[X]``, ``Union[X, Y]``, ``X | Y``."""
    node = _unquoted(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        yield from _alternatives(node.left)
        yield from _alternatives(node.right)
    elif isinstance(node, ast.Subscript) and _name(node) in ('Optional',
                                                             'Union'):
        inner = node.slice
        items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        for item in items:
            yield from _alternatives(item)
    else:
        yield node


def untyped_return(annotation: Optional[ast.expr]) -> Optional[str]:
    """Why a return annotation is no typed result, or None."""
    for node in _alternatives(annotation) if annotation else ():
        name = _name(node)
        if name in DICT_TYPES:
            return f'a dict ({ast.unparse(node)})'
        if name in TUPLE_TYPES:
            if not isinstance(node, ast.Subscript):
                return f'a bare tuple ({ast.unparse(node)})'
            items = (node.slice.elts if isinstance(node.slice, ast.Tuple)
                     else [node.slice])
            kinds = {ast.dump(i) for i in items
                     if not (isinstance(i, ast.Constant)
                             and i.value is Ellipsis)}
            if len(kinds) > 1:
                return f'a tuple of different things ({ast.unparse(node)})'
    return None


def public_functions(source: str) -> Iterator[Tuple[str, ast.FunctionDef]]:
    """``(qualified name, node)`` of the module's functions and of the
    methods of its classes, neither named with a leading underscore."""
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not node.name.startswith('_'):
                yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith(
                '_'):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)
                              ) and not item.name.startswith('_'):
                    yield f'{node.name}.{item.name}', item


def untyped_results(sources: List[Tuple[str, str]],
                    allowed=ALLOWED) -> List[str]:
    """``module:name returns ...`` for every public function whose return
    annotation is a dict or a heterogeneous tuple, but the serialisers
    and ``allowed``."""
    out = []
    for module, source in sources:
        for name, node in public_functions(source):
            why = untyped_return(node.returns)
            key = f'{module}:{name}'
            if why and key not in allowed and name.rsplit(
                    '.', 1)[-1] not in SERIALISERS:
                out.append(f'{key} returns {why}')
    return out


def unannotated(sources: List[Tuple[str, str]]) -> List[str]:
    """``module:name:line`` of every public function without a return
    annotation."""
    return [f'{module}:{name}:{node.lineno}' for module, source in sources
            for name, node in public_functions(source)
            if node.returns is None]


def _package_sources() -> List[Tuple[str, str]]:
    out = []
    for package, start in ((PACKAGE, PACKAGE), (APPS, APPS[:1])):
        root, named_from = (repo_root() / Path(*package),
                            repo_root() / Path(*start))
        out += [('.'.join(p.relative_to(named_from).with_suffix('').parts),
                 p.read_text()) for p in sorted(root.rglob('*.py'))]
    return out


def test_public_functions_return_typed_results():
    assert untyped_results(_package_sources()) == []


def test_every_public_function_has_a_return_annotation():
    assert unannotated(_package_sources()) == []


def test_every_allowed_entry_names_a_public_dict_return():
    """An entry whose function went away or became typed is removed."""
    sources = _package_sources()
    left = untyped_results(sources, allowed={})
    assert sorted(ALLOWED) == sorted(line.split(' returns ')[0]
                                     for line in left)
    assert all(reason.strip() for reason in ALLOWED.values())


def test_a_dict_or_a_mixed_tuple_is_reported():
    source = '''
import typing
from typing import Dict, Mapping, Optional, Tuple, Union


def plain() -> dict:
    ...


def optional() -> Optional[Dict[str, int]]:
    ...


def quoted() -> 'Mapping[str, int]':
    ...


def union() -> Union[None, typing.OrderedDict]:
    ...


def pipe() -> 'int | dict':
    ...


def bare() -> tuple:
    ...


def mixed() -> Tuple[int, str]:
    ...


def shape() -> Tuple[int, int, int]:
    ...


def many() -> Tuple[str, ...]:
    ...


def rows() -> 'list[dict]':
    ...


def _private() -> dict:
    ...


def unannotated():
    ...


class Result:
    def to_dict(self) -> dict:
        ...

    def pair(self) -> Tuple[int, dict]:
        ...

    def _record(self) -> dict:
        ...


class _Hidden:
    def record(self) -> dict:
        ...
'''
    sources = [('mod', source)]
    assert untyped_results(sources) == [
        'mod:plain returns a dict (dict)',
        'mod:optional returns a dict (Dict[str, int])',
        'mod:quoted returns a dict (Mapping[str, int])',
        'mod:union returns a dict (typing.OrderedDict)',
        'mod:pipe returns a dict (dict)',
        'mod:bare returns a bare tuple (tuple)',
        'mod:mixed returns a tuple of different things (Tuple[int, str])',
        'mod:Result.pair returns a tuple of different things '
        '(Tuple[int, dict])']
    assert untyped_results(sources, allowed={'mod:plain': 'why'})[0] == (
        'mod:optional returns a dict (Dict[str, int])')
    assert unannotated(sources) == ['mod:unannotated:50']


@pytest.mark.parametrize('annotation', ['Dict[str, Path]', 'tuple',
                                        "Optional['OrderedDict']"])
def test_the_package_check_fails_on_a_new_dict_function(annotation):
    """The check over the real package, with one function added."""
    extra = f'\n\ndef paths() -> {annotation}:\n    ...\n'
    sources = _package_sources() + [('whole_scan.extra', extra)]
    left = untyped_results(sources)
    assert len(left) == 1
    assert left[0].startswith('whole_scan.extra:paths returns a ')
