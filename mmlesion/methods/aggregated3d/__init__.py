# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN (Sun et al. 2021): its workflow in one
package: tables, paper numbers, step times, training input and config keys
registered for the shared engines (this file), and the hard regions of
Anchor Based Sampling (``hard_regions.py``). Models: ``mmlesion/models``
(``AggregatedFasterRCNN3D`` and its 3D heads); configs:
``configs/aggregated3d/``."""
from mmlesion.registry import METHODS
from mmlesion.apps.reproduce.table_index import table_specs
from mmlesion.utils.method_spec import MethodSpec
from .paper import (MERGED_MODELS, PAPER_RESULTS, PRINTED, QUOTED_MODELS,
                    RESULT_ROWS, VARIANTS)
from .step_time import crop_batch, crop_input
from .tables import A3D_BUILDERS, deeplesion3d_data

#: each table's title and rows, in the paper's order (read with ast by
#: ``tools/reproduce.py --help``: keep it a plain literal)
TABLE_INDEX = {
    'aggregated3d/table2': {
        'title': ('3D Aggregated Faster R-CNN Table II: RPN variants (f: d '
                  'after an ABS round), LUNA16 10-fold CV pooled; Res18, '
                  'DualPath, ResBlock quoted, not run'),
        'rows': ['res18', 'dualpath', 'resblock', 'resblock_abs', 'a', 'b',
                 'c', 'd', 'e', 'f'],
    },
    'aggregated3d/table3': {
        'title': ('3D Aggregated Faster R-CNN Table III: second stage, ABS '
                  'round and merged rows, LUNA16 10-fold CV pooled'),
        'rows': ['crop96_da', 'crop96_da_magnify', 'alternating', '3dag_lm',
                 '3dag', 'wo_da_abs', '3dag_lm_abs', '3dag_abs',
                 'merged_intersection', 'merged_union'],
    },
    'aggregated3d/table4': {
        'title': ('3D Aggregated Faster R-CNN Table IV: single-model '
                  'solutions, FROC score, LUNA16 10-fold CV pooled (3D-AG: '
                  "Table III's 3D-AG-LM† run; the others quoted, not run)"),
        'rows': ['res18', 'dualpath', 'resblock_abs', '3dag'],
    },
    'aggregated3d/tnp': {
        'title': ('3D Aggregated Faster R-CNN Fig. 4c: TNP (scans without '
                  'nodules and no candidate above the 0.95-sensitivity '
                  'threshold), read from the runs of Table II row f and the '
                  'Table III † and merged rows'),
        'rows': ['rpn', 'merged_union', '3dag', '3dag_lm',
                 'merged_intersection'],
    },
    'aggregated3d/table5-6': {
        'title': ('3D Aggregated Faster R-CNN Tables V and VI: DeepLesion as '
                  '3D, LUNA16 hit rule, sensitivity at 0.5-16 FPs per chunk, '
                  'Avg., FROC score, and at 4 FPs per lesion type and size '
                  '(* = without lesions >= 48 mm; 3DCE quoted, not run)'),
        'rows': ['3dce', 'rpn', '3dag', 'rpn_lt48mm', '3dag_lt48mm'],
    },
}

_RPN_3D = frozenset({'nms_pre', 'score_thr', 'iou_thr', 'max_per_img'})
_A3 = 'configs/aggregated3d'
_DATA_ROOT = 'data/LUNA16'


def _data_folders(table: str, ctx) -> list:
    """Tables V/VI read DeepLesion and its 3D chunks; the others LUNA16."""
    if table == 'aggregated3d/table5-6':
        return list(deeplesion3d_data(ctx).values())
    return [ctx.data_root or _DATA_ROOT]


@METHODS.register_module(name='aggregated3d')
def aggregated3d_method() -> MethodSpec:
    """The 3D Aggregated Faster R-CNN's
    :class:`~mmlesion.utils.method_spec.MethodSpec`."""
    return MethodSpec(
        name='aggregated3d',
        tables=table_specs(__file__, A3D_BUILDERS, TABLE_INDEX),
        paper_results=PAPER_RESULTS,
        config_prefixes=('aggregated3d', 'rpn3d'),
        quoted_models=QUOTED_MODELS,
        merged_models=MERGED_MODELS,
        variants=VARIANTS,
        printed=PRINTED,
        result_rows=RESULT_ROWS,
        # projects/benchmarks/benchmark_aggregated3d.py --cases train_full:
        # 0.105 s per 128^3 crop (full model), train_rpn 0.039 s; one H100
        step_times={'aggregated3d': 0.105, 'rpn3d': 0.039},
        # the models whose 128^3 crops those step times were measured on,
        # timed for a stage named by its family (the LUNA16 folds)
        family_configs={
            'aggregated3d': f'{_A3}/aggregated3d_denseunet3d_anchor1_4xb2-'
            '50e_luna16.py',
            'rpn3d': f'{_A3}/rpn3d-focal_denseunet3d_anchor1_4xb2-50e_'
            'luna16.py',
        },
        training_inputs={'AggregatedFasterRCNN3D': crop_input},
        synthetic_batches={'3d': crop_batch},
        config_keys={
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
        },
        data_root=_DATA_ROOT,
        data_folders=_data_folders)
