# Copyright (c) mmlesion contributors. All rights reserved.
"""Read mmdet's metafiles once per test process, not once per base config.

mmengine resolves a base ``mmdet::<path>`` by parsing every metafile of
mmdet's model index (over 100 YAML files) in ``_get_cfg_metainfo``; for a
base that is no model (``mmdet::_base_/...``, all of ours) it then raises
``ValueError`` and mmengine takes the path as written. Profiled: 23 of the
29 s of one ``tools/reproduce.py elixirnet/table5 --dry-run`` on the busy
2-core machine. The files do not change during a test run, so the suite
keeps each (package, config) outcome, value or error
(:func:`memoize_metafile_lookup`, installed by ``tests/conftest.py`` and
the zygote); mmengine's own function computes each outcome once, so every
path resolved is the one mmengine finds. The tools and the library are
unchanged.
"""
import functools
from typing import Optional, Tuple


def memoize_metafile_lookup() -> None:
    """Keep mmengine's ``_get_cfg_metainfo`` outcomes per (package,
    config) in this process (idempotent)."""
    from mmengine.config import utils
    if getattr(utils._get_cfg_metainfo, 'memoized', False):
        return
    original = utils._get_cfg_metainfo

    @functools.lru_cache(maxsize=None)
    def outcome(package_path: str,
                cfg_path: str) -> Tuple[Optional[dict], Optional[str]]:
        try:
            return original(package_path, cfg_path), None
        except ValueError as err:  # not a model: mmengine falls back
            return None, str(err)

    def lookup(package_path: str, cfg_path: str) -> dict:
        value, error = outcome(package_path, cfg_path)
        if error is not None:
            raise ValueError(error)
        return value

    lookup.memoized = True
    lookup.original = original
    utils._get_cfg_metainfo = lookup
