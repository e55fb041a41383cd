# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper tables :mod:`mmlesion.reproduce.tables` plans: the title of
each and its rows, in the paper's order (the stages of each row are in
``tables.py``). ``tools/reproduce.py`` shows this index in its
``--help``."""
from typing import Dict, List, NamedTuple


class TableIndex(NamedTuple):
    title: str
    rows: List[str]


_T2_MODELS = ['fpn', 'deformv2', 'elixirnet_fpn', 'elixirnet_deformv2']

TABLE_INDEX: Dict[str, TableIndex] = {
    'elixirnet/table1': TableIndex(
        'ElixirNet Table 1: sensitivity at 0.5-16 FPs (IoU) and mAP, '
        'DeepLesion test split, 3 slices: FRCNN (C4), FPN, Deformv2 and '
        'ElixirNet on each',
        ['frcnn', 'elixirnet', 'fpn', 'elixirnet_fpn', 'deformv2',
         'elixirnet_deformv2']),
    'elixirnet/table2': TableIndex(
        'ElixirNet Table 2: sensitivity with IoBB (and IoU) overlap, '
        'DeepLesion test split: FRCNN (C4), FPN, Deformv2 and ElixirNet on '
        'each',
        [f'{m}_{o}' for m in ['frcnn', 'elixirnet'] + _T2_MODELS
         for o in ('iou', 'iobb')]),
    'elixirnet/table3': TableIndex(
        'ElixirNet Table 3: KiTS19, 3 slices', list(_T2_MODELS)),
    'elixirnet/table4': TableIndex(
        'ElixirNet Table 4: multi-type fine-tuning (sensitivity at 3 FPs '
        'per lesion type)', ['fpn_ft', 'elixirnet_wo_rtm', 'elixirnet']),
    'elixirnet/table5': TableIndex(
        'ElixirNet Table 5: ablation, DeepLesion test split',
        ['fpn', 'trpn', 'trpn_noaux', 'alb', 'alb_rtm', 'focal_rpn',
         'trpn_alb', 'trpn_alb_9slice', 'elixirnet', 'elixirnet_9slice']),
    'elixirnet/table6': TableIndex(
        'ElixirNet Table 6: search space and strategy of the ALB',
        ['elixirnet', 'wo_search_space', 'random']),
    'retinanet_lesion/table1': TableIndex(
        'Improved RetinaNet Table 1: DeepLesion test split',
        ['original', 'anchors', 'dense', 'attention']),
    'aggregated3d/table2': TableIndex(
        '3D Aggregated Faster R-CNN Table II: RPN variants (f: d after an '
        'ABS round), LUNA16 10-fold CV pooled; Res18, DualPath, ResBlock '
        'quoted, not run',
        ['res18', 'dualpath', 'resblock', 'resblock_abs', 'a', 'b', 'c', 'd',
         'e', 'f']),
    'aggregated3d/table3': TableIndex(
        '3D Aggregated Faster R-CNN Table III: second stage, ABS round and '
        'merged rows, LUNA16 10-fold CV pooled',
        ['crop96_da', 'crop96_da_magnify', 'alternating', '3dag_lm', '3dag',
         'wo_da_abs', '3dag_lm_abs', '3dag_abs', 'merged_intersection',
         'merged_union']),
    'aggregated3d/table4': TableIndex(
        '3D Aggregated Faster R-CNN Table IV: single-model solutions, FROC '
        "score, LUNA16 10-fold CV pooled (3D-AG: Table III's 3D-AG-LM† "
        'run; the others quoted, not run)',
        ['res18', 'dualpath', 'resblock_abs', '3dag']),
    'aggregated3d/tnp': TableIndex(
        '3D Aggregated Faster R-CNN Fig. 4c: TNP (scans without nodules and '
        'no candidate above the 0.95-sensitivity threshold), read from the '
        'runs of Table II row f and the Table III † and merged rows',
        ['rpn', 'merged_union', '3dag', '3dag_lm', 'merged_intersection']),
    'aggregated3d/table5-6': TableIndex(
        '3D Aggregated Faster R-CNN Tables V and VI: DeepLesion as 3D, '
        'LUNA16 hit rule, sensitivity at 0.5-16 FPs per chunk, Avg., FROC '
        'score, and at 4 FPs per lesion type and size (* = without lesions '
        '>= 48 mm; 3DCE quoted, not run)',
        ['3dce', 'rpn', '3dag', 'rpn_lt48mm', '3dag_lt48mm']),
    'lens/table1': TableIndex(
        'LENS Table I: DeepLesion manual 1K 3D test set, sensitivity at '
        '1/8..8 FPs per sub-volume', ['baseline', 'a', 'b', 'c', 'd', 'e']),
    'lens/table2': TableIndex(
        'LENS Table II: proposal networks in row (d) (RPN, CenterNet, FCOS '
        'in two stages and one, AFP), average sensitivity on the manual 1K '
        '3D test set; inference ms per slice quoted',
        ['rpn', 'centernet', 'fcos_one_stage', 'fcos', 'afp']),
    'lens/table3': TableIndex(
        'LENS Table III: the mining strategies on DeepLesion alone, average '
        'sensitivity (manual 1K 3D test set) and what each trains on (3D '
        'and 2D GT, 2D uncertain, slices; thousands)',
        ['no_mining', 'cross_slice', 'intra_patient', 'cross_dataset',
         'unlabeled']),
    'lens/table4': TableIndex(
        'LENS Table IV: ways to combine the datasets, average sensitivity '
        '(manual 1K 3D test set); time and size quoted; domain adaptation '
        'quoted, not run',
        ['single', 'pooling', 'positive_pooling', 'separate', 'proposed',
         'uncertain_as_gt', 'domain_adapt']),
}

