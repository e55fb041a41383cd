# Copyright (c) mmlesion contributors. All rights reserved.
"""The Improved RetinaNet's paper numbers (Zlocha et al., MICCAI 2019):
Table 1's FROC rows, where each stands in the paper and the other numbers
the documents quote."""
from typing import Dict

from mmlesion.apps.reproduce.paper_results import froc_row as _froc
from mmlesion.apps.reproduce.paper_tables import Printed, ResultRow

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
