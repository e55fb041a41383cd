# Copyright (c) mmlesion contributors. All rights reserved.
"""Choices that reach the library through an environment variable.

Some choices must reach code the tools do not call directly (mmengine's
checkpoint loader, a dataset inside the Runner, distributed workers). A
tool's switch (``--trust-checkpoint``) sets its variable to ``1``, which
can also be set by hand; the library reads it here.
"""
import os

__all__ = ['env_switch_on']


def env_switch_on(env: str) -> bool:
    """Whether the switch's environment variable ``env`` is ``1``."""
    return os.environ.get(env) == '1'
