# Copyright (c) mmlesion contributors. All rights reserved.
"""The command-line layer of mmlesion's tools.

What a tool needs to parse its arguments:

* :func:`tool_parser`: an ``ArgumentParser`` that shows defaults and the
  tool's whole description;
* the options shared by several tools (``--trust-checkpoint``, ``--fold``,
  the scan-check switches, study, converter and training options:
  :mod:`.common_args`, :mod:`.converter_args`, :mod:`.train_args`). An
  option that sets or uses a value of the library (an environment
  variable's name, a default, its choices) takes it from the library, so
  every value has one source: a default or choice the help shows is a
  data file the library's settings read too (:func:`package_json`), a
  switch imports its variable when it is given;
* :func:`package_json`: data of the library (the defaults and choices of
  the settings the tools' options show, ``tool_defaults.json``), read
  without importing it; :func:`add_method_arguments`: the options a method
  adds to the tools that run its steps (its ``flags.py``);
* :func:`silence_known_warnings`, called when this package is imported:
  the one place where the known start-up warnings of the stack are
  silenced. A tool imports this package (``from mmlesion_cli import
  tool_parser``) before anything of ``mmlesion``, so the filters are in
  place before mmcv / mmdet / torch are imported;
* :func:`choose_threads`, called when this package is imported, before
  torch is: OpenMP's wait policy and thread count for a machine others may
  share (:mod:`.threads`; the user's ``OMP_*`` variables win).

These two are the only process-wide changes of this package; ``import
mmlesion`` alone changes neither, and the library never imports this
package (``tests/test_layering.py``).
"""
from .threads import choose_process_threads, choose_threads
from .warnings_filter import silence_known_warnings

silence_known_warnings()
choose_process_threads()  # kept for the tools' line (threads.thread_line)

from .env_switch import add_env_switch  # noqa: E402
from .method_flags import add_method_arguments  # noqa: E402
from .package_data import package_json  # noqa: E402
from .parser import (ToolHelpFormatter, tool_description,  # noqa: E402
                     tool_examples, tool_parser)

__all__ = [
    'choose_threads', 'silence_known_warnings', 'add_env_switch',
    'package_json', 'add_method_arguments',
    'ToolHelpFormatter', 'tool_description',
    'tool_examples', 'tool_parser'
]
