# Copyright (c) mmlesion contributors. All rights reserved.
"""What a method tells one engine, typed and checked when it registers, so
that no engine names a method (docs/adding_a_method.md).

Each engine keeps its own registry of its own :class:`MethodPart`: the
paper harness its ``PaperTables``
(:mod:`mmlesion.apps.reproduce.paper_tables`), the whole-scan API its
``WholeScanMethod`` (:mod:`mmlesion.apis.whole_scan.method_steps`), the
whole-config check its ``ConfigKeys``
(:mod:`mmlesion.utils.configs.whole_config`). A method's home
(``mmlesion/methods/<name>/``, or a package of its own imported through
mmengine's ``custom_imports``) makes one part for each engine it plugs into
and registers it: a field of the wrong type, or a required one left out,
fails there, naming the method, the part and the field.
"""
import collections.abc as abc
import dataclasses
import importlib
import typing
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from mmengine.registry import Registry

#: the default of a field a method must give
_REQUIRED: Any = type('Required', (), {'__repr__': lambda self: 'REQUIRED'})()

#: where every method home lives (its ``import_methods()`` imports them)
METHODS_PACKAGE = 'mmlesion.methods'


def required() -> Any:
    """A dataclass field a method must give (checked by
    :meth:`MethodPart.__post_init__`, naming the method)."""
    return dataclasses.field(default=_REQUIRED)


def _is(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the type hint ``hint`` (the hints a
    :class:`MethodPart` uses: classes, ``Any``, ``Optional``/``Union``,
    ``Callable``, ``Tuple``, ``FrozenSet``, ``List``, ``Mapping``)."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return any(_is(value, a) for a in args)
    if origin is None:
        if hint is float:
            return isinstance(value, (int, float)) and not isinstance(
                value, bool)
        return isinstance(value, hint)
    if origin is abc.Callable:
        return callable(value)
    if not isinstance(value, origin):
        return False
    if origin in (abc.Mapping, dict):
        return all(_is(k, args[0]) and _is(v, args[1])
                   for k, v in value.items())
    if origin is tuple and args and args[-1] is not Ellipsis:
        return len(value) == len(args) and all(map(_is, value, args))
    return all(_is(v, args[0]) for v in value) if args else True


@dataclasses.dataclass(frozen=True)
class MethodPart:
    """What one method tells one engine; each engine subclasses it with its
    fields (type hints are checked when the part is made).

    Args:
        name (str): the method's name (its folder under ``configs/`` or
            ``projects/``, the prefix of its tables).

    Raises:
        TypeError: a field left out that the method must give, or of the
            wrong type, naming the part, the method and the field.
    """
    name: str

    def __post_init__(self) -> None:
        kind = type(self).__name__
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f'{kind}: name must be a non-empty str, not '
                            f'{self.name!r}')
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is _REQUIRED:
                raise TypeError(f'{kind} of method {self.name!r}: field '
                                f'{f.name!r} is required')
            if not _is(value, hints[f.name]):
                raise TypeError(
                    f'{kind} of method {self.name!r}: field {f.name!r} must '
                    f'be {_hint_text(hints[f.name])}, not '
                    f'{type(value).__name__} {str(value)[:80]}')



def _hint_text(hint: Any) -> str:
    return getattr(hint, '__name__', None) or str(hint).replace(
        'typing.', '')


#: The kind of :class:`MethodPart` a :class:`MethodRegistry` holds.
Part = typing.TypeVar('Part', bound=MethodPart)


class MethodRegistry(Registry, typing.Generic[Part]):
    """An engine's registry of one kind of :class:`MethodPart`, by method
    name: mmengine's :class:`~mmengine.registry.Registry`, holding a part
    (an instance) where others hold a class.

    Looking the parts up (:meth:`parts`) imports every method home of
    ``mmlesion/methods/`` first (and, with ``locator``, the module each
    home names in that attribute: the paper harness's parts live beside
    the harness imports, not in the home's ``__init__.py``); a method
    registered from elsewhere (mmengine's ``custom_imports``) is there once
    imported.

    Args:
        name (str): the registry's name, as errors give it.
        kind (type): the :class:`MethodPart` subclass it holds.
        locator (str, optional): the attribute of a method home (its
            ``__init__.py``) naming the module that registers its part here
            (None: the home itself).
    """

    def __init__(self, name: str, kind: type,
                 locator: Optional[str] = None) -> None:
        super().__init__(name, scope='mmlesion')
        self.kind = kind
        self.locator = locator

    def _register_module(self, module: Any, module_name: Any = None,
                         force: bool = False) -> None:
        if not isinstance(module, self.kind):
            raise TypeError(f'{self.name}: a method registers a '
                            f'{self.kind.__name__} here, not '
                            f'{type(module).__name__}')
        if module_name not in (None, module.name):
            raise TypeError(f'{self.name}: {module.name!r} registered as '
                            f'{module_name!r}: the names must agree')
        if not force and module.name in self._module_dict:
            raise KeyError(f'{self.name}: method {module.name!r} is already '
                           f'registered ({self._module_dict[module.name]!r})')
        self._module_dict[module.name] = module

    def register(self, part: Part) -> Part:
        """Register ``part`` (a :attr:`kind`); returns it."""
        self._register_module(part)
        return part

    def import_from_location(self) -> None:
        """Import every method home (``import_methods()`` of
        :data:`METHODS_PACKAGE`) and, with :attr:`locator`, the module each
        names there; once."""
        if self._imported:
            return
        for home in importlib.import_module(METHODS_PACKAGE).import_methods():
            if self.locator is not None and getattr(home, self.locator, None):
                importlib.import_module(getattr(home, self.locator))
        self._imported = True

    def parts(self) -> Dict[str, Part]:
        """Every registered part, by method name (sorted)."""
        self.import_from_location()
        return dict(sorted(self._module_dict.items()))

    def part(self, name: str) -> Part:
        """One method's part.

        Raises:
            KeyError: a method that registered none here, naming those
                that did.
        """
        parts = self.parts()
        if name not in parts:
            raise KeyError(f'unknown method {name!r} in {self.name}; '
                           f'registered: {sorted(parts)}')
        return parts[name]


class MethodView(Mapping):
    """The union of one field of every part of a registry (plus ``base``),
    merged on use (a tuple of names maps each to its method's).

    Args:
        registry (MethodRegistry): where the parts are.
        attr (str): the field (a mapping or a tuple).
        base (Mapping, optional): entries of no method (the engine's own).

    Raises:
        ValueError: (on use) two methods, or a method and ``base``, giving
            the same key.
    """

    def __init__(self, registry: MethodRegistry, attr: str,
                 base: Optional[Mapping] = None) -> None:
        self.registry = registry
        self.attr = attr
        self.base = dict(base or {})
        self._key: Tuple = ()
        self._merged: Dict[Any, Any] = {}

    def _data(self) -> Dict[Any, Any]:
        parts = self.registry.parts()
        key = tuple(id(p) for p in parts.values())
        if key != self._key:
            merged, owner = dict(self.base), dict.fromkeys(self.base, 'base')
            for name, part in parts.items():
                value = getattr(part, self.attr)
                items = (value.items() if isinstance(value, Mapping) else
                         ((k, name) for k in value))
                for k, v in items:
                    if k in merged:
                        raise ValueError(
                            f'{self.attr} {k!r} is given by both '
                            f'{owner[k]!r} and {name!r}: rename one')
                    merged[k], owner[k] = v, name
            self._merged, self._key = merged, key
        return self._merged

    def __getitem__(self, key: Any) -> Any:
        return self._data()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return f'MethodView({self.attr!r}, {len(self)} entries)'
