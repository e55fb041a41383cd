# Copyright (c) mmlesion contributors. All rights reserved.
from .rows_roi_extractor import RowsRoIExtractor

__all__ = ['RowsRoIExtractor']
