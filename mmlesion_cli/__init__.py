# Copyright (c) mmlesion contributors. All rights reserved.
"""The command-line layer of mmlesion's tools, importable without torch.

Importing any ``mmlesion`` submodule runs ``mmlesion/__init__.py``, which
registers every component into mmdet's registries (the contract of
``custom_imports=dict(imports=['mmlesion'])``) and so imports torch, mmcv
and mmdet: about 6 s on a 2-core machine. A tool's ``--help`` must not wait
for that, so everything a tool needs *before* its arguments are parsed lives
here, in a separate top-level package that imports only the standard
library (and ``mmengine.config`` for ``DictAction``, which does not import
torch):

* :func:`tool_parser`: an ``ArgumentParser`` that shows defaults and the
  tool's whole description;
* the options shared by several tools (``--trust-checkpoint``, ``--fold``,
  the scan-check switches, benchmark timing, study and converter options);
* :func:`silence_known_warnings`: the one place where the known start-up
  warnings of the stack are silenced, called when this package is imported:
  a tool imports it (``from mmlesion_cli import tool_parser``) before
  ``mmlesion``, so the filters are in place before mmcv / mmdet / torch are
  imported. ``import mmlesion`` alone installs no filter (the library
  changes no global state beyond its registrations).

The tools import ``mmlesion`` (and torch, mmdet) inside ``main()``, after
parsing; ``projects/benchmarks/benchmark_tool_help.py`` measures the time
of every tool's ``--help``. This package never imports ``mmlesion``, nor
``mmlesion`` this one: where both need a value (an environment variable's
name, a default), each holds it and ``tests/test_cli/test_library_copies.py``
checks that the two agree.
"""
from .warnings_filter import silence_known_warnings

silence_known_warnings()

from .env_switch import add_env_switch  # noqa: E402
from .parser import (ToolHelpFormatter, tool_description,  # noqa: E402
                     tool_examples, tool_parser)

__all__ = [
    'silence_known_warnings', 'add_env_switch', 'ToolHelpFormatter',
    'tool_description', 'tool_examples', 'tool_parser'
]
