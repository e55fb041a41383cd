# Copyright (c) mmlesion contributors. All rights reserved.
"""The settings that relax :func:`load_ct_volume`'s input checks: an
argument of :func:`load_ct_volume`, a ``scan_checks`` key of the CT datasets
and loading transforms, and what the tools' flags fill. A switch not given
is off unless the user set its environment variable (``docs/security.md``):
the defaults of :class:`ScanChecks` are the one place these are read.
"""
from dataclasses import dataclass, field, fields
from typing import Dict, Mapping, Union

from mmlesion.utils.env_switch import env_switch_on

#: The environment variables a user may set instead of the settings.
FORCE_CT_ENV = 'MMLESION_FORCE_CT'
RESAMPLE_NONUNIFORM_ENV = 'MMLESION_RESAMPLE_NONUNIFORM'
ALLOW_OUTSIDE_DATA_ENV = 'MMLESION_ALLOW_OUTSIDE_DATA'


def _user_default(env: str):
    """A field off unless the user set ``env`` to ``1``."""
    return field(default_factory=lambda: env_switch_on(env))


@dataclass(frozen=True)
class ScanChecks:
    """Which input checks of :func:`load_ct_volume` are relaxed.

    Attributes:
        force_ct (bool): read a scan that does not look like a CT in HU
            (``--force-ct``).
        resample_nonuniform (bool): interpolate a DICOM series with uneven
            slices onto a uniform grid (``--resample-nonuniform``).
        allow_outside_data (bool): read data files and scans outside their
            folder or data root (``--allow-outside-data``).
    """
    force_ct: bool = _user_default(FORCE_CT_ENV)
    resample_nonuniform: bool = _user_default(RESAMPLE_NONUNIFORM_ENV)
    allow_outside_data: bool = _user_default(ALLOW_OUTSIDE_DATA_ENV)

    @classmethod
    def of(cls, value: Union[None, 'ScanChecks', Mapping]) -> 'ScanChecks':
        """The settings of a ``scan_checks`` argument or config key.

        Args:
            value: None (the defaults), a :class:`ScanChecks`, or a dict of
                its fields (a config's ``scan_checks=dict(force_ct=True)``).

        Returns:
            ScanChecks: the settings.

        Raises:
            ValueError: a key that is no switch, or a value not a bool.
        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(
                f'scan_checks={value!r}: give a dict of '
                f'{", ".join(_NAMES)} (True or False)')
        wrong = [k for k in value if k not in _NAMES]
        if wrong:
            raise ValueError(
                f'scan_checks: unknown key(s) {", ".join(map(str, wrong))}; '
                f'the switches are {", ".join(_NAMES)}')
        for key, on in value.items():
            if not isinstance(on, bool):
                raise ValueError(f'scan_checks.{key}={on!r}: give True or '
                                 'False')
        return cls(**value)


_NAMES = tuple(f.name for f in fields(ScanChecks))


def switches_given(args: object) -> Dict[str, bool]:
    """The switches a tool's flags (``--force-ct`` and the like, parsed as
    ``args.force_ct`` ...) turn on: ``ScanChecks(**switches)``, or
    :func:`set_scan_checks` for a config.

    Args:
        args (argparse.Namespace): the parsed arguments.

    Returns:
        dict: e.g. ``{'force_ct': True}``; empty when none was given.
    """
    return {name: True for name in _NAMES if getattr(args, name, False)}


def _takes_scan_checks(kind: object, registries) -> bool:
    """Whether the registered ``type`` of a config dict (a name or a class)
    takes a ``scan_checks`` argument (its own or a base class's)."""
    import inspect
    cls = kind
    if isinstance(kind, str):
        cls = next((r.get(kind) for r in registries if r.get(kind)), None)
    if not inspect.isclass(cls):
        return False
    return any('scan_checks' in inspect.signature(c.__init__).parameters
               for c in cls.__mro__ if '__init__' in vars(c))


def set_scan_checks(cfg, switches: Mapping[str, bool]) -> int:
    """Set ``switches`` in the ``scan_checks`` of every dataset and
    transform of a config that takes it (how the tools' flags reach the
    Runner's datasets); the config's other switches are kept.

    Args:
        cfg (mmengine.Config | dict): the config, changed in place.
        switches (dict): e.g. ``dict(force_ct=True)`` (checked by
            :meth:`ScanChecks.of`).

    Returns:
        int: how many datasets and transforms got them.
    """
    from mmdet.registry import DATASETS, TRANSFORMS
    from mmengine.config import Config
    ScanChecks.of(switches)  # the keys and values checked
    if not switches:
        return 0
    registries = (DATASETS, TRANSFORMS)
    count = 0

    def visit(node) -> None:
        nonlocal count
        if isinstance(node, Mapping):
            if 'type' in node and _takes_scan_checks(node['type'],
                                                     registries):
                node['scan_checks'] = {**(node.get('scan_checks') or {}),
                                       **switches}
                count += 1
            for value in list(node.values()):
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    visit(cfg._cfg_dict if isinstance(cfg, Config) else cfg)
    return count
