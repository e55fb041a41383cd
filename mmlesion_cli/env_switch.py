# Copyright (c) mmlesion contributors. All rights reserved.
"""Command-line switches that act through an environment variable.

Some choices must reach code that the tools do not call directly:
mmengine's checkpoint loader (``--trust-checkpoint``), the scan reader of a
dataset inside the Runner (``--force-ct``), and the worker processes of a
distributed run. A switch of this kind sets its environment variable to
``1`` when given; the library reads it (``mmlesion.utils.env_switch``). The
same variable can be set by hand instead of the flag.
"""
import argparse
import os


class _EnvSwitchAction(argparse.Action):
    """Store True and set ``self.const`` (the variable) to ``1``."""

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ[self.const] = '1'
        setattr(namespace, self.dest, True)


def add_env_switch(parser: argparse.ArgumentParser, flag: str, env: str,
                   help: str) -> None:
    """Add a ``--flag`` that sets ``env=1`` when given.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        flag (str): e.g. ``--trust-checkpoint``.
        env (str): e.g. ``MMLESION_TRUST_CHECKPOINTS``.
        help (str): the help text (the variable is appended).
    """
    parser.add_argument(
        flag, action=_EnvSwitchAction, nargs=0, const=env, default=False,
        help=f'{help} (same as {env}=1)')
