# Copyright (c) mmlesion contributors. All rights reserved.
"""The Improved RetinaNet (Zlocha et al., MICCAI 2019): its table, paper
numbers, step time and config keys, registered for the shared engines.
Models: ``mmlesion/models`` (``ImprovedRetinaNet``, the dense FPN, the
attention gate); configs: ``configs/retinanet_lesion/``."""
from mmlesion.registry import METHODS
from mmlesion.reproduce.table_index import table_specs
from mmlesion.utils.configs.whole_config import SINGLE_STAGE_KEYS
from mmlesion.utils.method_spec import MethodSpec
from .paper import PAPER_RESULTS, PRINTED
from .tables import BUILDERS


@METHODS.register_module(name='retinanet_lesion')
def retinanet_lesion_method() -> MethodSpec:
    """The Improved RetinaNet's
    :class:`~mmlesion.utils.method_spec.MethodSpec`."""
    return MethodSpec(
        name='retinanet_lesion',
        tables=table_specs(__file__, BUILDERS),
        paper_results=PAPER_RESULTS,
        config_prefixes=('retinanet', 'improved'),
        printed=PRINTED,
        # projects/benchmarks/benchmark_retinanet_lesion.py measured
        # inference only (9.6 ms for the full Improved RetinaNet); training
        # taken as 3.03x inference, the ratio benchmark_elixirnet.py
        # measured for Faster R-CNN (50.9 / 16.8)
        step_times={'retinanet': 0.0096 * 3.03},
        config_keys={
            'ImprovedRetinaNet': {
                **SINGLE_STAGE_KEYS,
                'score_calibration': frozenset({'mask_thr', 'connectivity',
                                                'min_area'}),
            }
        })
