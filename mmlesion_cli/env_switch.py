# Copyright (c) mmlesion contributors. All rights reserved.
"""Command-line switches that act through an environment variable.

A choice that must reach code the tools do not call, and that takes no
settings, is an environment variable: mmengine's checkpoint loader
(``--trust-checkpoint``), in this process and the worker processes of a
distributed run. A switch of this kind sets its environment variable to
``1`` when given; the library reads it (``mmlesion.utils.env_switch``). The
same variable can be set by hand instead of the flag: :data:`ENV_DOC` lists
every one. Choices the library can take as settings are not switches of
this kind (the scan checks: ``common_args.add_scan_check_arguments``).

The variable's name is the library's: a switch takes a function that
imports it (``from mmlesion... import NAME``) and calls it only when the
flag is given, so building a tool's parser (``--help``) imports nothing of
the library.
"""
import argparse
import os
from typing import Callable

#: Where the variables of the switches are listed (the "opt in" column).
ENV_DOC = 'docs/security.md'


class _EnvSwitchAction(argparse.Action):
    """Store True and set the variable ``self.const()`` names to ``1``."""

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ[self.const()] = '1'
        setattr(namespace, self.dest, True)


def add_env_switch(parser: argparse.ArgumentParser, flag: str,
                   variable: Callable[[], str], help: str) -> None:
    """Add a ``--flag`` that sets the library's variable to ``1`` when
    given.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        flag (str): e.g. ``--trust-checkpoint``.
        variable (callable): returns the variable's name, imported from the
            library's module that reads it (e.g.
            ``mmlesion.utils.checkpoints.loader.TRUST_ENV``); called when the
            flag is given, never when the parser is built.
        help (str): the help text (where the variable is listed is
            appended: :data:`ENV_DOC`).
    """
    parser.add_argument(
        flag, action=_EnvSwitchAction, nargs=0, const=variable,
        default=False,
        help=f'{help} (or set its environment variable to 1: {ENV_DOC})')
