# Copyright (c) mmlesion contributors. All rights reserved.
"""What a user's own tests import, as ``mmdet.testing``: the repository's
configs, tiny detection batches and small CT files.

The suite's own builders, fakes and runners live in ``tests/helpers/``
(not installed).
"""
from mmlesion.utils.configs.lookup import get_config, get_model_cfg, repo_root
from mmlesion.utils.data_roots import demo_data_root, shared_data_root

from .det_batches import bright_box_batch, det_sample
from .volume_files import SeriesLayout, write_dicom_series, write_volume

__all__ = [
    'demo_data_root', 'get_config', 'get_model_cfg', 'repo_root',
    'shared_data_root', 'bright_box_batch', 'det_sample',
    'SeriesLayout', 'write_dicom_series', 'write_volume'
]
