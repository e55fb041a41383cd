# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN (Sun et al. 2021): the config keys its
detector reads, registered for the whole-config check (this file); its
tables, paper numbers, step times and training input for the paper harness
(``tables.py``, ``paper.py``, ``step_time.py``); the hard regions of Anchor
Based Sampling (``hard_regions.py``). Its components live here too and
register when it is imported (its configs' ``custom_imports``):
``models/`` (``AggregatedFasterRCNN3D``, its backbone, 3D heads and
losses); configs: ``configs/aggregated3d/``."""
from mmlesion.utils.configs.whole_config import CONFIG_KEYS, ConfigKeys

from . import models  # noqa: F401  (registers them)

#: its part of the paper harness, imported by the harness only
PAPER_TABLES_MODULE = 'mmlesion.methods.aggregated3d.tables'

_RPN_3D = frozenset({'nms_pre', 'score_thr', 'iou_thr', 'max_per_img'})

CONFIG_KEYS.register(ConfigKeys(
    name='aggregated3d',
    keys={
        'AggregatedFasterRCNN3D': {
            'train_cfg': frozenset({'rpn', 'rpn_proposal', 'fprn',
                                    'mode', 'rpn_only_iters',
                                    'alternate_interval'}),
            'train_cfg.rpn': frozenset({'assigner'}),
            'train_cfg.rpn_proposal': _RPN_3D,
            'train_cfg.fprn': frozenset({'assigner', 'sampler'}),
            'test_cfg': frozenset({'rpn', 'window_size', 'overlap',
                                   'pad_value', 'window_batch_size',
                                   'show_progress', 'score_thr',
                                   'merge_iou_thr', 'max_per_img'}),
            'test_cfg.rpn': _RPN_3D,
        }
    }))
