# Copyright (c) mmlesion contributors. All rights reserved.
"""The public functions of the package (``mmlesion/``) return typed
results (dataclasses, named tuples), not dicts passed around: no public
function's return annotation is a record kept in a dict (``dict``,
``Dict``, ``Mapping``, ``OrderedDict``, ... bare or with ``Any``,
``object`` or another such dict as its values) or a tuple of
heterogeneous things (a bare ``tuple`` / ``Tuple``, ``Tuple[A, B]``), also
behind ``Optional`` / ``Union`` / ``X | None`` or in quotes; and every
public function of ``mmlesion/apis`` and of the whole-scan applications
has a return annotation, so the check sees them all there.

Public: a module-level function or a method of a class whose name has no
leading underscore (dunder methods excluded). A tuple of one type
(``Tuple[int, int, int]``: a shape; ``Tuple[str, ...]``) is typed, and so
is a mapping whose values have one declared type (``Dict[str,
List[Finding3D]]``: findings by the data's own series names, as a
``List[Finding3D]`` is typed). A method named as in :data:`SERIALISERS` is
the dict a file is written from (``findings.json``, ``scans.csv``); one
named as in :data:`LIBRARY_API` implements an mmengine / mmcv / mmdet /
torch interface whose dict the library reads (a transform's results, a
loss dict), so its return type is the library's. Anything else goes in
:data:`ALLOWED` (at most 8), its reason beside it; :data:`PENDING` lists
those still to be typed or made private (it only shrinks).
"""
import ast
from typing import Iterator, List, Optional, Tuple

import pytest

from mmlesion.testing import repo_root

#: The folders whose public functions all carry a return annotation.
ANNOTATED = (('apis', ), ('apps', 'whole_scan'))
#: Return types that are a mapping.
DICT_TYPES = frozenset({'dict', 'Dict', 'Mapping', 'MutableMapping',
                        'OrderedDict', 'DefaultDict', 'defaultdict'})
TUPLE_TYPES = frozenset({'tuple', 'Tuple'})
#: Value types that leave a mapping a record of anything.
LOOSE_VALUES = DICT_TYPES | {'Any', 'object'}
#: Methods that give the dict a file is written from.
SERIALISERS = frozenset({'to_dict', 'to_json'})
#: Methods of the libraries' interfaces that return their dict or tuple:
#: name -> the interface (checked to have it by
#: :func:`test_library_api_names_are_the_libraries`).
LIBRARY_API = {
    'transform': 'mmcv.transforms.BaseTransform',
    'forward': 'torch.nn.Module',
    'loss': 'mmdet.models.dense_heads.base_dense_head.BaseDenseHead',
    'loss_by_feat': 'mmdet.models.dense_heads.base_dense_head.BaseDenseHead',
    'get_targets': 'mmdet.models.dense_heads.AnchorHead',
    'compute_metrics': 'mmengine.evaluator.BaseMetric',
    'get_data_info': 'mmengine.dataset.BaseDataset',
    'metainfo': 'mmengine.dataset.BaseDataset',
    'prepare_data': 'mmengine.dataset.BaseDataset',
    'get_log_after_epoch': 'mmengine.runner.LogProcessor',
    'pred2dict': 'mmdet.apis.DetInferencer',
}
#: ``module:qualified name`` -> why it may return a dict or tuple.
#: Still to be typed or made private (only shrinks: a new one fails, and
#: so does an entry that is typed now).
PENDING = frozenset({
})
ALLOWED = {
    'apis.whole_scan.settings:DetectionSettings.lesion_steps':
    "the stacking's lesion steps by field name: the keyword arguments "
    'dataclasses.replace takes back and the mapping a per-scan record '
    "stores (OperatingPoints.lesion_steps, findings.json's settings)",
    'apis.detector_loader:config_metainfo':
    "mmengine's dataset_meta (classes, palette) of a config: the mapping "
    'mmengine and mmdet read as model.dataset_meta and the visualizer\'s; '
    'the inferencer uses it, so it cannot be private',
    'apis.whole_scan.settings:ModelAdjustment.record':
    "the protocol of a method's model adjustment: a JSON record "
    'findings.json embeds verbatim (keys the method names)',
    'apis.whole_scan.model:checkpoint_meta':
    "a checkpoint's meta as mmengine wrote it (a dict of the trainer's "
    'own keys), taken from the checkpoint read once before the model is '
    'built, for the operating point and the data convention; read by '
    'run.py and the tests',
    'apis.whole_scan.model:read_checkpoint':
    'a checkpoint as mmengine wrote it (the dict torch.load gives), read '
    "once per run for its meta and handed to the model's load "
    '(init_lesion_detector(preloaded=)); read by run.py and the tests',
    'apis.whole_scan.model:checkpoint_data_convention':
    "the record a checkpoint's meta holds (DataConventionHook's JSON-like "
    'dict, possibly with invalid values that are warned about), returned '
    'verbatim for volume_settings_from_config(trained=Mapping); read by '
    'run.py and the tests',
    'utils.checkpoints.loader:load_model_checkpoint':
    "mmengine's load_checkpoint contract, which it wraps (the checks "
    'added): the checkpoint dict it loaded (state_dict, meta, ...), as '
    "mmengine's runner and mmdet's init_detector take it",
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


def _typed_mapping(node: ast.expr) -> bool:
    """``Dict[K, V]`` whose values ``V`` have one declared type (neither
    ``Any`` / ``object`` nor a dict that is no typed mapping itself)."""
    if not (isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Tuple)
            and len(node.slice.elts) == 2):
        return False
    value = _unquoted(node.slice.elts[1])
    return all(
        _name(v) not in LOOSE_VALUES or (_name(v) in DICT_TYPES
                                         and _typed_mapping(v))
        for v in _alternatives(value))


def untyped_return(annotation: Optional[ast.expr]) -> Optional[str]:
    """Why a return annotation is no typed result, or None."""
    for node in _alternatives(annotation) if annotation else ():
        name = _name(node)
        if name in DICT_TYPES and not _typed_mapping(node):
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
    annotation is a dict or a heterogeneous tuple, but the serialisers,
    the libraries' interface methods and ``allowed``."""
    out = []
    for module, source in sources:
        for name, node in public_functions(source):
            why = untyped_return(node.returns)
            key = f'{module}:{name}'
            method = name.rsplit('.', 1)[-1] if '.' in name else None
            if why and key not in allowed and method not in SERIALISERS \
                    and method not in LIBRARY_API:
                out.append(f'{key} returns {why}')
    return out


def unannotated(sources: List[Tuple[str, str]]) -> List[str]:
    """``module:name:line`` of every public function without a return
    annotation."""
    return [f'{module}:{name}:{node.lineno}' for module, source in sources
            for name, node in public_functions(source)
            if node.returns is None]


def _known() -> dict:
    """:data:`ALLOWED` and :data:`PENDING`."""
    return {**ALLOWED, **dict.fromkeys(PENDING, 'pending')}


def _package_sources() -> List[Tuple[str, str]]:
    """``(module named from mmlesion, source)`` of every module."""
    root = repo_root() / 'mmlesion'
    return [('.'.join(p.relative_to(root).with_suffix('').parts),
             p.read_text()) for p in sorted(root.rglob('*.py'))]


def test_public_functions_return_typed_results():
    assert untyped_results(_package_sources(), _known()) == []


def test_every_public_function_has_a_return_annotation():
    folders = tuple('.'.join(f) + '.' for f in ANNOTATED)
    sources = [(m, s) for m, s in _package_sources()
               if m.startswith(folders)]
    assert len(sources) > 30
    assert unannotated(sources) == []


def test_every_allowed_entry_names_a_public_dict_return():
    """An entry whose function went away or became typed is removed; the
    allow-list stays within 8 and the pending list only shrinks."""
    sources = _package_sources()
    left = untyped_results(sources, allowed={})
    assert sorted({*ALLOWED, *PENDING}) == sorted(
        line.split(' returns ')[0] for line in left)
    assert all(reason.strip() for reason in ALLOWED.values())
    assert len(ALLOWED) <= 8 and not set(ALLOWED) & PENDING


def test_library_api_names_are_the_libraries():
    """Each exempt method name is a method of the interface named."""
    import importlib
    for name, where in LIBRARY_API.items():
        module, cls = where.rsplit('.', 1)
        assert callable(getattr(getattr(importlib.import_module(module),
                                        cls), name, None)) or isinstance(
            getattr(getattr(importlib.import_module(module), cls), name,
                    None), property), (name, where)


def test_a_dict_or_a_mixed_tuple_is_reported():
    source = '''
import typing
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union


def plain() -> dict:
    ...


def optional() -> Optional[Dict[str, Any]]:
    ...


def quoted() -> 'Mapping[str, object]':
    ...


def records() -> Dict[str, dict]:
    ...


def by_name() -> Dict[str, List[Finding3D]]:
    ...


def nested() -> 'Dict[str, Dict[str, float]]':
    ...


def transform() -> dict:
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

    def transform(self, results: dict) -> dict:
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
        'mod:optional returns a dict (Dict[str, Any])',
        'mod:quoted returns a dict (Mapping[str, object])',
        'mod:records returns a dict (Dict[str, dict])',
        'mod:transform returns a dict (dict)',
        'mod:union returns a dict (typing.OrderedDict)',
        'mod:pipe returns a dict (dict)',
        'mod:bare returns a bare tuple (tuple)',
        'mod:mixed returns a tuple of different things (Tuple[int, str])',
        'mod:Result.pair returns a tuple of different things '
        '(Tuple[int, dict])']
    assert untyped_results(sources, allowed={'mod:plain': 'why'})[0] == (
        'mod:optional returns a dict (Dict[str, Any])')
    assert unannotated(sources) == ['mod:unannotated:66']


@pytest.mark.parametrize('annotation', ['Dict[str, Any]', 'tuple',
                                        "Optional['OrderedDict']"])
def test_the_package_check_fails_on_a_new_dict_function(annotation):
    """The check over the real package, with one function added."""
    extra = f'\n\ndef paths() -> {annotation}:\n    ...\n'
    sources = _package_sources() + [('whole_scan.extra', extra)]
    left = untyped_results(sources, _known())
    assert len(left) == 1
    assert left[0].startswith('whole_scan.extra:paths returns a ')
