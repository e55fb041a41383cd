# Copyright (c) mmlesion contributors. All rights reserved.
"""Reading a config file; a mistake in it or in its ``_base_`` chain is
one line naming the file, the base as written and the nearest existing
name (mmengine fails deep inside its parser, or after seconds of a
circular chain). A ``_base_`` must name a ``.py`` config: mmengine would
merge a JSON file's fields into the config silently.
"""
import ast
import os
import os.path as osp
from typing import Optional, Tuple

from mmengine.config import Config

from .cfg_options import ConfigOptionError
from .known_keys import closest

#: The file types mmengine reads as configs.
CONFIG_EXTENSIONS = ('.py', '.json', '.yaml', '.yml')
#: The file type a ``_base_`` entry may name (mmlesion's configs).
BASE_EXTENSION = '.py'


class ConfigFileError(ConfigOptionError):
    """A config file, or one of its bases, that mmengine cannot read."""


def load_config(path: str) -> Config:
    """``Config.fromfile(path)``, a mistake in the files as one line.

    Args:
        path (str): the config file.

    Returns:
        Config: the merged config.

    Raises:
        ConfigFileError: the first mistake of the ``_base_`` chain (see
            the module), else mmengine's error, after the file's name.
    """
    circle = _file_error(osp.abspath(path), path, (), circles_only=True)
    # (a circle, or a _base_ that is no .py file: before mmengine merges it)
    if circle is not None:
        raise ConfigFileError(circle)
    try:
        return Config.fromfile(path)
    except Exception as err:  # any mistake in the files: said in one line
        line = _file_error(osp.abspath(path), path, ()) or (
            f'{path}: {type(err).__name__}: {_first_line(err)}')
        raise ConfigFileError(line) from None


def _first_line(err: BaseException) -> str:
    """The first line of an error's message."""
    return (str(err).strip().splitlines() or [''])[0]


def _not_a_config(path: str) -> Optional[str]:
    """Why the file ``path`` cannot be a config, else None."""
    if not osp.isfile(path):
        return 'is a folder' if osp.isdir(path) else 'does not exist'
    if osp.splitext(path)[1] not in CONFIG_EXTENSIONS:
        return ('is not a config (mmengine reads ' +
                ', '.join(CONFIG_EXTENSIONS) + ' files)')
    if path.endswith('.py'):
        try:
            with open(path, encoding='utf-8') as f:
                ast.parse(f.read(), filename=path)
        except SyntaxError as err:
            return f'is not Python: line {err.lineno}: {err.msg}'
        except (UnicodeDecodeError, ValueError):
            return 'is not a text file'
    return None


def _nearest(base: str, path: str) -> Optional[str]:
    """The existing config closest to the missing ``path``, written as the
    ``_base_`` entry ``base`` was: each missing folder and the file name
    replaced by the closest name there."""
    head, rest = path, []
    while not osp.isdir(head):
        head, tail = osp.split(head)
        if not tail:
            return None
        rest.insert(0, tail)
    fixed = []
    for i, part in enumerate(rest):
        last = i == len(rest) - 1
        names = [n for n in os.listdir(head)
                 if (n.endswith(CONFIG_EXTENSIONS) if last else
                     osp.isdir(osp.join(head, n)))]
        close = closest(part, names)
        if close is None:
            return None
        head = osp.join(head, close)
        fixed.append(close)
    return '/'.join(base.split('/')[:-len(fixed)] + fixed)


def _resolve(base: str, named_by: str) -> Tuple[str, Optional[str]]:
    """``(path, why it cannot be found)`` of a ``_base_`` entry, as mmengine
    resolves it."""
    if '::' not in base:
        return osp.join(osp.dirname(named_by), base), None
    from mmengine.config import config as config_module
    from mmengine.config.utils import MODULE2PACKAGE
    scope, _, rel = base.partition('::')
    if scope not in MODULE2PACKAGE:
        near = closest(scope, MODULE2PACKAGE)
        return '', (f'no package {scope!r} has configs for mmengine' + (
            f'; did you mean {near}::?' if near else ''))
    try:
        return Config._get_cfg_path(base, named_by)[0], None
    except FileNotFoundError:
        return osp.join(config_module.get_installed_path(
            MODULE2PACKAGE[scope]), '.mim', 'configs', rel), None
    except Exception as err:  # not installed, a broken model index
        return '', _first_line(err)


def _file_error(path: str, shown: str, chain: Tuple[str, ...],
                circles_only: bool = False) -> Optional[str]:
    """The first mistake of the config ``path`` (shown as ``shown``) and of
    its ``_base_`` chain, depth first; ``chain``: the files naming it;
    ``circles_only``: only a circular chain and a base that is no ``.py``
    file (the other mistakes are left to mmengine, and a branch ends at
    one)."""
    if circles_only and not osp.isfile(path):
        return None  # mmengine says why
    why = None if circles_only else _not_a_config(path)
    if why is not None:
        return f'{shown} {why}'
    try:
        bases = Config._get_base_files(path)
    except Exception as err:  # an expression that fails
        return None if circles_only else (
            f'{path}: its _base_ cannot be read: {_first_line(err)}')
    seen = {}
    for base in bases:
        if circles_only and '::' in str(base):
            continue  # a package's configs (slow to find) name their own
        where = f'{path}: _base_ {base!r}'
        found, why = _resolve(str(base), path)
        if why is not None:
            return f'{where}: {why}'
        found = osp.normpath(found)
        if osp.splitext(found)[1] != BASE_EXTENSION:
            ext = osp.splitext(found)[1]
            kind = f'a {ext} file' if ext else 'a file without extension'
            return (f'{where} ({found}): _base_ must name a config '
                    f'({BASE_EXTENSION}), not {kind}')
        if found in seen:
            return (f'{where}: names {found} a second time (first as '
                    f'{seen[found]!r}); list each base once')
        seen[found] = base
        if found in chain + (path, ):
            loop = ' -> '.join(osp.basename(p) for p in chain + (path, found))
            return f'{where}: circular _base_ chain ({loop})'
        if not osp.exists(found) and not circles_only:
            near = _nearest(str(base), found)
            hint = f'; did you mean {near!r}?' if near else ''
            return f'{where}: no such file ({found}){hint}'
        error = _file_error(found, f'{where} ({found})', chain + (path, ),
                            circles_only)
        if error is not None:
            return error
    return None
