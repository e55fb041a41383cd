# Copyright (c) mmlesion contributors. All rights reserved.
"""A dataclass written to a file as the dict of its fields, in their order:
:class:`FieldRecord` (``findings.json``'s records, the training-data files'
entries)."""
from dataclasses import asdict, fields
from typing import Any, Mapping, Type, TypeVar

_R = TypeVar('_R', bound='FieldRecord')


class FieldRecord:
    """A dataclass that a file writes as the dict of its fields (in their
    order) and that is built from such a dict."""

    @classmethod
    def from_dict(cls: Type[_R], record: Mapping[str, Any]) -> _R:
        """The record of a dict of its fields (:meth:`to_dict`'s)."""
        return cls(**record)

    def to_dict(self) -> dict:
        """The record as a file writes it: ``dataclasses.asdict``'s dict,
        made without its deep copies where the fields are numbers, strings
        and lists of them (the same dict, faster)."""
        out = {}
        for item in fields(self):
            value = _plain_copy(getattr(self, item.name))
            if value is _NOT_PLAIN:
                return asdict(self)
            out[item.name] = value
        return out


#: The types :func:`_plain_copy` copies (``copy.deepcopy`` returns them).
_ATOMS = frozenset((int, float, str, bool, type(None)))
#: :func:`_plain_copy` of a value of another type.
_NOT_PLAIN = object()


def _plain_copy(value: Any) -> Any:
    """``asdict``'s copy of a field's value where it is a number, a string,
    None or a list of them (lists nested), else :data:`_NOT_PLAIN`."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is list:
        out = [_plain_copy(v) for v in value]
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in out) else out
    return _NOT_PLAIN
