# Copyright (c) mmlesion contributors. All rights reserved.
from .checkpoint_loader import (load_local_checkpoint, mmengine_safe_globals,
                                register_checkpoint_loader)

__all__ = [
    'load_local_checkpoint', 'mmengine_safe_globals',
    'register_checkpoint_loader'
]
