# Copyright (c) mmlesion contributors. All rights reserved.
"""The Improved RetinaNet (Zlocha et al., MICCAI 2019): its table, paper
numbers, step time and config keys, registered for the shared engines.
Models: ``mmlesion/models`` (``ImprovedRetinaNet``, the dense FPN, the
attention gate); configs: ``configs/retinanet_lesion/``."""
from typing import Dict

from mmlesion.registry import METHODS
from mmlesion.apps.reproduce.paper_results import froc_row as _froc
from mmlesion.apps.reproduce.paper_text import Printed, ResultRow
from mmlesion.apps.reproduce.table_index import table_specs
from mmlesion.utils.configs.whole_config import SINGLE_STAGE_KEYS
from mmlesion.utils.method_spec import MethodSpec
from .tables import BUILDERS

#: each table's title and rows, in the paper's order (read with ast by
#: ``tools/reproduce.py --help``: keep it a plain literal)
TABLE_INDEX = {
    'retinanet_lesion/table1': {
        'title': 'Improved RetinaNet Table 1: DeepLesion test split',
        'rows': ['original', 'anchors', 'dense', 'attention'],
    },
}

#: Table 1's FP rates per image
_R6 = (0.5, 1, 2, 4, 8, 16)

#: model -> metric -> the paper's number
PAPER_RESULTS: Dict[str, Dict[str, float]] = {
    # Table 1, original RetinaNet
    'retinanet_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion':
    _froc((45.8, 54.17, 62.5, 69.8, 75.34, 79.48), rates=_R6),
    # Table 1, + anchor optimization
    'retinanet-optanchors_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion':
    _froc((64.82, 74.98, 82.29, 87.87, 92.2, 94.9), rates=_R6),
    # Table 1, + dense supervision
    'improved-retinanet_vgg19_densefpn_1xb4-adam-plateau-50e_deeplesion':
    _froc((70.24, 78.28, 85.1, 90.39, 93.81, 96.01), rates=_R6),
    # Table 1, + attention gate
    'improved-retinanet_vgg19_densefpn-ag_1xb4-adam-plateau-50e_deeplesion':
    _froc((72.15, 80.07, 86.4, 90.77, 94.09, 96.32), rates=_R6),
}

#: model -> where its numbers stand in the paper
RESULT_ROWS: Dict[str, tuple] = {
    stem + '_1xb4-adam-plateau-50e_deeplesion': (
        ResultRow('Table 1', row, names), )
    for stem, row, names in (
        ('retinanet_vgg19_fpn', 'original RetinaNet', (
            'original RetinaNet', 'original', 'RetinaNet')),
        ('retinanet-optanchors_vgg19_fpn', '+ anchor optimization', (
            'anchor optimization', 'optimised anchors', 'optanchors')),
        ('improved-retinanet_vgg19_densefpn', '+ dense supervision', (
            'dense supervision', )),
        ('improved-retinanet_vgg19_densefpn-ag', '+ attention gate', (
            'attention gate', 'attention gates', 'Improved RetinaNet')))}

#: numbers the paper prints outside the compared metrics that the
#: documents quote: name -> where it is printed
PRINTED: Dict[str, Printed] = {
    'ms_original': Printed(28, 'Table 1', 'original RetinaNet',
                           'inference time (ms)',
                           ('original RetinaNet', 'original'), 'ms'),
    'ms_improved': Printed(41, 'Sec. 3', 'improved RetinaNet',
                           '"about 41 ms for each image"',
                           ('improved', 'dense supervision',
                            'attention'), 'ms'),
    **{f'scale_bound_{end}': Printed(
        v, 'Sec. 2.1', 'anchor search', f'{end} bound of every scale',
        ('scale', 'scales', 'scale_bounds')) for end, v in (('low', 0.4),
                                                             ('high', 1.6))},
    'ms_ratio': Printed(round(41 / 28, 2), 'Table 1 and Sec. 3',
                        'improved over original RetinaNet',
                        'the two times above, 41 / 28', printed=False),
}


@METHODS.register_module(name='retinanet_lesion')
def retinanet_lesion_method() -> MethodSpec:
    """The Improved RetinaNet's
    :class:`~mmlesion.utils.method_spec.MethodSpec`."""
    return MethodSpec(
        name='retinanet_lesion',
        tables=table_specs(__file__, BUILDERS, TABLE_INDEX),
        paper_results=PAPER_RESULTS,
        config_prefixes=('retinanet', 'improved'),
        printed=PRINTED,
        result_rows=RESULT_ROWS,
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
