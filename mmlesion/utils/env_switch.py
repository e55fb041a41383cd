# Copyright (c) mmlesion contributors. All rights reserved.
"""Command-line switches that act through an environment variable.

Defined in :mod:`mmlesion_cli.env_switch` (importable without torch, for
the tools' fast ``--help``); re-exported here for the package's users.
"""
from mmlesion_cli.env_switch import add_env_switch, env_switch_on

__all__ = ['add_env_switch', 'env_switch_on']
