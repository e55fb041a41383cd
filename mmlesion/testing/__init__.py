# Copyright (c) mmlesion contributors. All rights reserved.
from ._utils import (demo_data_root, get_config, get_model_cfg, repo_root,
                     shared_data_root)

__all__ = [
    'demo_data_root', 'get_config', 'get_model_cfg', 'repo_root',
    'shared_data_root'
]
