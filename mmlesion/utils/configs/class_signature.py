# Copyright (c) mmlesion contributors. All rights reserved.
"""What a registered class accepts as config keys: its ``__init__``'s
arguments, and its bases' where it passes ``**kwargs`` on to them
(:func:`signature_of`, read by :mod:`.whole_config` and
:mod:`.cfg_options`)."""
import ast
import functools
import inspect
import textwrap
import typing
from typing import (Any, Callable, Dict, FrozenSet, Iterator, Mapping,
                    NamedTuple, Optional, Set)


class ClassSignature(NamedTuple):
    """What a registered class (or function) takes as keyword arguments."""
    names: FrozenSet[str]  #: accepted argument names
    open_ended: bool  #: takes more that go where nothing can check
    params: Mapping[str, inspect.Parameter]  #: names -> first declaration
    hints: Mapping[str, Any]  #: names -> resolved annotation


class _KwargsUse(NamedTuple):
    """How an ``__init__`` uses its ``**kwargs``."""
    read: FrozenSet[str]  #: keys it reads itself (``kwargs.get('x')``)
    forwarded: bool  #: passed on as ``super().__init__(**kwargs)``


_KWARGS_READERS = frozenset({'get', 'pop', 'setdefault'})


def _constant(node: ast.AST) -> Optional[str]:
    return node.value if isinstance(node, ast.Constant) and isinstance(
        node.value, str) else None


def _kwargs_reads(tree: ast.AST) -> Dict[int, str]:
    """Followed uses of names in ``tree``: id of the Name node -> the key
    read there, or '' for ``**name`` given to an ``__init__``."""
    uses: Dict[int, str] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)):
            func = node.func
            if func.attr == '__init__':
                uses.update({id(kw.value): '' for kw in node.keywords
                             if kw.arg is None})
            elif (func.attr in _KWARGS_READERS and node.args
                  and _constant(node.args[0]) is not None):
                uses[id(func.value)] = _constant(node.args[0])
        elif isinstance(node, ast.Subscript) and _constant(
                node.slice) is not None:
            uses[id(node.value)] = _constant(node.slice)
        elif (isinstance(node, ast.Compare) and len(node.ops) == 1
              and isinstance(node.ops[0], (ast.In, ast.NotIn))
              and _constant(node.left) is not None):
            uses[id(node.comparators[0])] = _constant(node.left)
    return uses


@functools.lru_cache(maxsize=None)
def _kwargs_use(init: Callable, name: str) -> Optional[_KwargsUse]:
    """How ``init`` uses its ``**name``: passed to a base ``__init__`` and
    reads of constant keys (None: any other use, or no readable source).
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return None
    reads = _kwargs_reads(tree)
    uses = [
        reads.get(id(node)) for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id == name
    ]
    if any(use is None for use in uses):
        return None
    return _KwargsUse(frozenset(u for u in uses if u), '' in uses)


def _hints(func: Callable) -> Mapping[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # names that do not resolve: no annotations used
        return {}


def _parameters(func: Callable) -> Optional[Mapping[str, inspect.Parameter]]:
    try:
        return inspect.signature(func).parameters
    except (TypeError, ValueError):
        return None


def _constructors(obj: Any) -> Iterator[Callable]:
    """The functions that take a component's arguments: a function itself,
    or a class's ``__init__`` methods along its MRO, most derived first
    (the caller stops where ``**kwargs`` are not passed on)."""
    import torch.nn as nn
    if not inspect.isclass(obj):
        yield obj
        return
    for base in obj.__mro__:
        if base is object or base is nn.Module:
            return
        if '__init__' in vars(base):
            yield vars(base)['__init__']


@functools.lru_cache(maxsize=None)
def signature_of(obj: Any) -> ClassSignature:
    """Keyword arguments a registered class or function accepts (cached):
    its bases' too where ``**kwargs`` are passed on to them, open-ended
    where they go where nothing can check them.

    Args:
        obj (type | callable): what a config ``type`` names.

    Returns:
        ClassSignature: names, open-endedness, parameters and annotations.
    """
    params: Dict[str, inspect.Parameter] = {}
    hints: Dict[str, Any] = {}
    read: Set[str] = set()
    open_ended = False
    for func in _constructors(obj):
        found = _parameters(func)
        if found is None:
            open_ended = True
            break
        func_hints = _hints(func)
        for name, param in found.items():
            if name != 'self' and name not in params and param.kind not in (
                    param.VAR_POSITIONAL, param.VAR_KEYWORD):
                params[name] = param
                if name in func_hints:
                    hints[name] = func_hints[name]
        kwargs = next((p.name for p in found.values()
                       if p.kind is p.VAR_KEYWORD), None)
        use = _kwargs_use(func, kwargs) if kwargs and inspect.isclass(
            obj) else None
        if kwargs is not None and use is None:
            open_ended = True
        if use is None:
            break
        read |= use.read
        if not use.forwarded:
            break
    return ClassSignature(frozenset(params) | read, open_ended, params, hints)
