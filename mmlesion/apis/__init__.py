# Copyright (c) mmlesion contributors. All rights reserved.
from .hard_region_mining import (find_hard_regions,  # noqa: F401
                                 training_scans_cfg)

__all__ = ['find_hard_regions', 'training_scans_cfg']
