# Copyright (c) mmlesion contributors. All rights reserved.
"""ElixirNet (Jiang et al., AAAI 2020): its tables, paper numbers and step
times, registered for the shared engines. Models: ``mmlesion/models``
(the TRPN head, the ALB cells and RoI head, the RTM bbox head); configs:
``configs/elixirnet/``."""
from mmlesion.registry import METHODS
from mmlesion.apps.reproduce.table_index import table_specs
from mmlesion.utils.method_spec import MethodSpec
from .paper import (GAINS, PAPER_RESULTS, PRINTED, READ_ROWS, RESULT_ROWS,
                    VARIANTS)
from .tables import BUILDERS

#: each table's title and rows, in the paper's order (read with ast by
#: ``tools/reproduce.py --help``: keep it a plain literal)
TABLE_INDEX = {
    'elixirnet/table1': {
        'title': ('ElixirNet Table 1: sensitivity at 0.5-16 FPs (IoU) and '
                  'mAP, DeepLesion test split, 3 slices: FRCNN (C4), FPN, '
                  'Deformv2 and ElixirNet on each'),
        'rows': ['frcnn', 'elixirnet', 'fpn', 'elixirnet_fpn', 'deformv2',
                 'elixirnet_deformv2'],
    },
    'elixirnet/table2': {
        'title': ('ElixirNet Table 2: sensitivity with IoBB (and IoU) '
                  'overlap, DeepLesion test split: FRCNN (C4), FPN, Deformv2 '
                  'and ElixirNet on each'),
        'rows': ['frcnn_iou', 'frcnn_iobb', 'elixirnet_iou',
                 'elixirnet_iobb', 'fpn_iou', 'fpn_iobb', 'deformv2_iou',
                 'deformv2_iobb', 'elixirnet_fpn_iou', 'elixirnet_fpn_iobb',
                 'elixirnet_deformv2_iou', 'elixirnet_deformv2_iobb'],
    },
    'elixirnet/table3': {
        'title': 'ElixirNet Table 3: KiTS19, 3 slices',
        'rows': ['fpn', 'deformv2', 'elixirnet_fpn', 'elixirnet_deformv2'],
    },
    'elixirnet/table4': {
        'title': ('ElixirNet Table 4: multi-type fine-tuning (sensitivity at '
                  '3 FPs per lesion type)'),
        'rows': ['fpn_ft', 'elixirnet_wo_rtm', 'elixirnet'],
    },
    'elixirnet/table5': {
        'title': 'ElixirNet Table 5: ablation, DeepLesion test split',
        'rows': ['fpn', 'trpn', 'trpn_noaux', 'alb', 'alb_rtm', 'focal_rpn',
                 'trpn_alb', 'trpn_alb_9slice', 'elixirnet',
                 'elixirnet_9slice'],
    },
    'elixirnet/table6': {
        'title': 'ElixirNet Table 6: search space and strategy of the ALB',
        'rows': ['elixirnet', 'wo_search_space', 'random'],
    },
}


@METHODS.register_module(name='elixirnet')
def elixirnet_method() -> MethodSpec:
    """ElixirNet's :class:`~mmlesion.utils.method_spec.MethodSpec`."""
    return MethodSpec(
        name='elixirnet',
        tables=table_specs(__file__, BUILDERS, TABLE_INDEX),
        paper_results=PAPER_RESULTS,
        config_prefixes=('elixirnet', 'faster'),
        variants=VARIANTS,
        read_rows=READ_ROWS,
        printed=PRINTED,
        gains=GAINS,
        result_rows=RESULT_ROWS,
        # projects/benchmarks/benchmark_elixirnet.py --device cuda: 77.7 ms
        # (ElixirNet-FPN), 50.9 ms (Faster R-CNN R50-FPN) per training
        # image, 3 x 512 x 512, one H100, fp32
        step_times={'elixirnet': 0.0777, 'faster-rcnn': 0.0509})
