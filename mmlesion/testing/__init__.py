# Copyright (c) mmlesion contributors. All rights reserved.
"""Test support, used only by ``tests/`` (nothing at run time imports it).

Config lookup and data-root discovery live in :mod:`mmlesion.utils`; they
are re-exported here for the tests that import them from this package.
"""
from mmlesion.utils.config_lookup import get_config, get_model_cfg, repo_root
from mmlesion.utils.data_roots import demo_data_root, shared_data_root

__all__ = [
    'demo_data_root', 'get_config', 'get_model_cfg', 'repo_root',
    'shared_data_root'
]
