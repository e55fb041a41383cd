# Copyright (c) mmlesion contributors. All rights reserved.
"""Every stored slice of every series of a DeepLesion-layout dataset.

Defined in :mod:`mmlesion.utils.series_slices` (below mining, which uses
it too); this path is kept for slice-by-slice inference and older code.
"""
from mmlesion.utils.series_slices import iter_series_slices

__all__ = ['iter_series_slices']
