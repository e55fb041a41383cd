# Copyright (c) mmlesion contributors. All rights reserved.
"""Read mmdet's metafiles once per test process, not once per base config.

mmengine resolves a base ``mmdet::<path>`` by parsing every metafile of
mmdet's model index (over 100 YAML files) in ``_get_cfg_metainfo``; for a
base that is no model (``mmdet::_base_/...``, all of ours) it then raises
``ValueError`` and mmengine takes the path as written. Profiled: 23 of the
29 s of one ``tools/reproduce.py elixirnet/table5 --dry-run`` on the busy
2-core machine. The files do not change during a test run, so the suite
keeps each (package, config) outcome, value or error, and each parsed
metafile (:func:`memoize_metafile_lookup`, installed by
``tests/conftest.py`` and the zygote, which parses mmdet's metafiles before
it forks: a forked tool run parses none); mmengine's own function computes
each outcome once, from the files as parsed by mmengine's ``load``, so
every path resolved is the one mmengine finds. mmengine's check that the
package of such a base is installed (``is_installed``, which reloads
``pkg_resources``: 20 ms a base) answers a package found once from memory
(one not found is looked up again). The tools and the library are
unchanged.
"""
import functools
from typing import Optional, Tuple


def memoize_metafile_lookup(parse_now: bool = False) -> None:
    """Keep mmengine's ``_get_cfg_metainfo`` outcomes per (package,
    config), its parsed metafiles and the packages found installed in this
    process (idempotent).

    Args:
        parse_now (bool): parse mmdet's metafiles and find it installed at
            once (a process that forks: its children inherit them), not at
            the first lookup.
    """
    from mmengine.config import utils
    if not getattr(utils._get_cfg_metainfo, 'memoized', False):
        _install(utils)
    if parse_now:
        from mmengine.config import config
        from mmengine.utils import get_installed_path
        config.is_installed('mmdet')
        # no such config: every file is read
        utils._get_cfg_metainfo.outcome(get_installed_path('mmdet'), '')


def _install(utils) -> None:
    """Replace mmengine's ``is_installed`` (in its config module) and
    ``_get_cfg_metainfo`` (in ``utils``) by their memoized forms."""
    from mmengine.config import config
    installed = set()
    is_installed = config.is_installed

    def found(package: str) -> bool:
        if package not in installed and is_installed(package):
            installed.add(package)
        return package in installed

    config.is_installed = found
    original = utils._get_cfg_metainfo
    parsed = functools.lru_cache(maxsize=None)(utils.load)

    @functools.lru_cache(maxsize=None)
    def outcome(package_path: str,
                cfg_path: str) -> Tuple[Optional[dict], Optional[str]]:
        real_load, utils.load = utils.load, parsed  # read-only: shared
        try:
            return original(package_path, cfg_path), None
        except ValueError as err:  # not a model: mmengine falls back
            return None, str(err)
        finally:
            utils.load = real_load

    def lookup(package_path: str, cfg_path: str) -> dict:
        value, error = outcome(package_path, cfg_path)
        if error is not None:
            raise ValueError(error)
        return value

    lookup.memoized = True
    lookup.original = original
    lookup.outcome = outcome
    utils._get_cfg_metainfo = lookup
