# Copyright (c) mmlesion contributors. All rights reserved.
"""Choices that reach code taking no settings (mmengine's checkpoint
loader) through an environment variable set to ``1`` by a tool's switch
(``--trust-checkpoint``) or by hand.
"""
import os


def env_switch_on(env: str) -> bool:
    """Whether the switch's environment variable ``env`` is ``1``."""
    return os.environ.get(env) == '1'
