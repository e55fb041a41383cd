# Copyright (c) mmlesion contributors. All rights reserved.
"""Choices that reach the library through an environment variable.

Some choices must reach code that takes no settings (mmengine's
checkpoint loader): a tool's switch (``--trust-checkpoint``) sets its
variable to ``1``, which can also be set by hand; the library reads it
here. A user may also set the scan checks' variables by hand, read as the
defaults of :class:`~mmlesion.datasets.volumes.scan_switches.ScanChecks`.
"""
import os

__all__ = ['env_switch_on']


def env_switch_on(env: str) -> bool:
    """Whether the switch's environment variable ``env`` is ``1``."""
    return os.environ.get(env) == '1'
