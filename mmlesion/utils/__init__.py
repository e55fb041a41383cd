# Copyright (c) mmlesion contributors. All rights reserved.
from .checkpoint_loader import (load_local_checkpoint, mmengine_safe_globals,
                                register_checkpoint_loader)

__all__ = [
    'load_local_checkpoint', 'mmengine_safe_globals',
    'register_checkpoint_loader'
]
from .dist_utils import setup_cpu_distributed  # noqa: E402

__all__ += ['setup_cpu_distributed']
from .pretrained import (register_torchvision_loader,  # noqa: E402
                         resolve_checkpoint_source)

__all__ += ['register_torchvision_loader', 'resolve_checkpoint_source']
