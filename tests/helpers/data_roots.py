# Copyright (c) mmlesion contributors. All rights reserved.
"""The laboratory's real-data folder, for the suite.

The library reads the real data from the folder ``MMLESION_SHARED_DATA``
names (:func:`mmlesion.utils.shared_data_root`) and knows no default. Our
clones sit beside the data (``../shared/data``): where the variable names
no folder, the suite names that one (``tests/conftest.py``), so that the
tests, and the tools they run in subprocesses, find it.
"""
import os
from pathlib import Path
from typing import MutableMapping, Optional

from mmlesion.utils.data_roots import SHARED_DATA_ENV

#: Where the real data sits beside a clone of ours.
LAB_SHARED_DATA = Path(__file__).resolve().parents[3] / 'shared' / 'data'


def name_lab_shared_data(
        environ: Optional[MutableMapping[str, str]] = None) -> None:
    """Point ``MMLESION_SHARED_DATA`` at :data:`LAB_SHARED_DATA` where it
    names no folder and that one exists (else leave it as it is).

    Args:
        environ (MutableMapping, optional): the environment to change;
            default ``os.environ``.
    """
    environ = os.environ if environ is None else environ
    named = environ.get(SHARED_DATA_ENV)
    if not (named and Path(named).is_dir()) and LAB_SHARED_DATA.is_dir():
        environ[SHARED_DATA_ENV] = str(LAB_SHARED_DATA.resolve())
