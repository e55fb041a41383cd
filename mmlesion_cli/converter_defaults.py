# Copyright (c) mmlesion contributors. All rights reserved.
"""The converters' defaults, as the options show them.

Constants only (no import): :mod:`mmlesion_cli.converter_args` shows them
in ``--help``. They are copies of the defaults of the ``convert_*``
functions (:mod:`mmlesion.datasets.converters.common`, which owns them;
this package does not import ``mmlesion``);
``tests/test_cli/test_library_copies.py`` checks that the two agree.
"""

#: Default share of scans in the val split: LENS (Sec. VI-A) "randomly used
#: 80% of each dataset for training and 20% for validation" (LUNA, LiTS,
#: NIH-LN). No test split by default (LENS tests on DeepLesion); set
#: ``test_fraction`` for one.
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_TEST_FRACTION = 0.0
