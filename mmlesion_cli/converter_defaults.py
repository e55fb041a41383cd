# Copyright (c) mmlesion contributors. All rights reserved.
"""Defaults shared by the converters' options and the conversion code.

Constants only (no import): :mod:`mmlesion_cli.converter_args` shows them
in ``--help``, :mod:`mmlesion.datasets.converters` uses them as the
defaults of its ``convert_*`` functions. Both import them from here, so the
arrow points from ``mmlesion`` to ``mmlesion_cli`` only.
"""

#: Default share of scans in the val split: LENS (Sec. VI-A) "randomly used
#: 80% of each dataset for training and 20% for validation" (LUNA, LiTS,
#: NIH-LN). No test split by default (LENS tests on DeepLesion); set
#: ``test_fraction`` for one.
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_TEST_FRACTION = 0.0
