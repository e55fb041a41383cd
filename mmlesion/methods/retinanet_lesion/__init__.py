# Copyright (c) mmlesion contributors. All rights reserved.
"""The Improved RetinaNet (Zlocha et al., MICCAI 2019): the config keys its
detector reads, registered for the whole-config check (this file); its
table, paper numbers and step time for the paper harness (``tables.py``,
``paper.py``). Its components live here too and register when it is
imported (its configs' ``custom_imports``): ``models/``
(``ImprovedRetinaNet``, the dense FPN, the attention gate, the
segmentation head, VGG-19); configs: ``configs/retinanet_lesion/``."""
from mmlesion.utils.configs.whole_config import (CONFIG_KEYS,
                                                 SINGLE_STAGE_KEYS, ConfigKeys)

from . import models  # noqa: F401  (registers them)

#: its part of the paper harness, imported by the harness only
PAPER_TABLES_MODULE = 'mmlesion.methods.retinanet_lesion.tables'

CONFIG_KEYS.register(ConfigKeys(
    name='retinanet_lesion',
    keys={
        'ImprovedRetinaNet': {
            **SINGLE_STAGE_KEYS,
            'score_calibration': frozenset({'mask_thr', 'connectivity',
                                            'min_area'}),
        }
    }))
