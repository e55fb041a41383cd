# Copyright (c) mmlesion contributors. All rights reserved.
"""The benchmarks' real-data folder.

The library reads the real data from the folder ``MMLESION_SHARED_DATA``
names and knows no default; the benchmarks, run from a clone of ours, also
look where that data sits beside the clone (``../shared/data``).
"""
from pathlib import Path
from typing import Optional

#: Where the real data sits beside a clone of ours.
LAB_SHARED_DATA = Path(__file__).resolve().parents[3] / 'shared' / 'data'


def lab_data_root() -> Optional[Path]:
    """The folder ``MMLESION_SHARED_DATA`` names, else
    :data:`LAB_SHARED_DATA`; None where neither is a folder."""
    from mmlesion.utils.data_roots import shared_data_root
    named = shared_data_root()
    if named is None and LAB_SHARED_DATA.is_dir():
        return LAB_SHARED_DATA.resolve()
    return named
