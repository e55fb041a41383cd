# Copyright (c) mmlesion contributors. All rights reserved.
"""Choices that reach the library through an environment variable.

Some choices must reach code that the tools do not call directly:
mmengine's checkpoint loader (``MMLESION_TRUST_CHECKPOINTS``), the scan
reader of a dataset inside the Runner (``MMLESION_FORCE_CT``), and the
worker processes of a distributed run. A tool's switch sets its variable to
``1`` (the ``--trust-checkpoint`` kind of option, made by
``mmlesion_cli.env_switch.add_env_switch``); the library reads it here. The
same variable can be set by hand instead of the flag.
"""
import os

__all__ = ['env_switch_on']


def env_switch_on(env: str) -> bool:
    """Whether the switch's environment variable is ``1``.

    Args:
        env (str): the variable.

    Returns:
        bool: True if set to ``1``.
    """
    return os.environ.get(env) == '1'
