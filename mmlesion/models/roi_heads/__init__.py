# Copyright (c) mmlesion contributors. All rights reserved.
from .roi_extractors import RowsRoIExtractor

__all__ = ['RowsRoIExtractor']
