# Copyright (c) mmlesion contributors. All rights reserved.
"""Every distinct row of ``tools/reproduce.py`` runs end to end in the
suite. A row is distinct when one of its stages (named by its command,
:func:`~mmlesion.reproduce.execute.stage_id`) is in no row that an
end-to-end test runs: its config, its options or its stage differ. A row
added to a table fails here until a test runs it (and is listed below).
"""
from mmlesion.reproduce import PlanContext, build_rows
from mmlesion.reproduce.execute import stage_id
from mmlesion.reproduce.table_index import TABLE_INDEX

#: the rows each end-to-end test runs (``tools/reproduce.py --rows``)
E2E_ROWS = {
    # tests/test_reproduce/test_e2e_aggregated3d.py
    'aggregated3d/table2': ['d', 'f', 'a', 'b', 'c', 'e'],
    'aggregated3d/table3': [
        '3dag', '3dag_lm_abs', '3dag_abs', 'merged_intersection',
        'merged_union', 'crop96_da', 'crop96_da_magnify', 'alternating',
        '3dag_lm', 'wo_da_abs'
    ],
    'aggregated3d/table4': ['3dag'],
    'aggregated3d/tnp': ['rpn'],
    # tests/test_reproduce/test_e2e_aggregated3d_deeplesion.py
    'aggregated3d/table5-6': ['rpn_lt48mm', 'rpn', '3dag', '3dag_lt48mm'],
    # tests/test_reproduce/test_e2e_elixirnet.py, test_e2e_elixirnet_rows.py
    # and tests/test_tools/test_reproduce.py
    'elixirnet/table1': ['fpn', 'frcnn', 'elixirnet', 'elixirnet_fpn',
                         'deformv2', 'elixirnet_deformv2'],
    'elixirnet/table2': [
        'fpn_iou', 'fpn_iobb', 'frcnn_iou', 'frcnn_iobb', 'elixirnet_iou',
        'elixirnet_iobb', 'elixirnet_fpn_iou', 'elixirnet_fpn_iobb',
        'deformv2_iou', 'deformv2_iobb', 'elixirnet_deformv2_iou',
        'elixirnet_deformv2_iobb'
    ],
    'elixirnet/table3': ['fpn', 'elixirnet_fpn', 'deformv2',
                         'elixirnet_deformv2'],
    'elixirnet/table4': ['fpn_ft', 'elixirnet_wo_rtm', 'elixirnet'],
    'elixirnet/table5': [
        'fpn', 'trpn', 'elixirnet', 'trpn_noaux', 'alb', 'alb_rtm',
        'focal_rpn', 'trpn_alb', 'trpn_alb_9slice', 'elixirnet_9slice'
    ],
    'elixirnet/table6': ['random', 'elixirnet', 'wo_search_space'],
    # tests/test_reproduce/test_e2e_lens.py
    'lens/table1': ['b', 'c', 'd', 'e', 'baseline', 'a'],
    'lens/table2': ['afp', 'rpn', 'centernet', 'fcos', 'fcos_one_stage'],
    'lens/table3': ['cross_slice', 'intra_patient', 'cross_dataset',
                    'unlabeled', 'no_mining'],
    'lens/table4': ['proposed', 'single', 'pooling', 'positive_pooling',
                    'separate', 'uncertain_as_gt'],
    # tests/test_tools/test_reproduce.py, test_e2e_retinanet.py
    'retinanet_lesion/table1': ['original', 'anchors', 'dense', 'attention'],
}


def test_every_distinct_row_runs_end_to_end(tmp_path):
    ctx = PlanContext(str(tmp_path), data_root='/data/', python='python',
                      gpus=0, folds=[0, 1])
    covered = set()
    for table, keys in E2E_ROWS.items():
        for row in build_rows(table, ctx, keys, [0]):
            covered.update(stage_id(s) for s in row.stages)
    left = [f'{table} {row.key}: ' + ', '.join(
        s.name for s in row.stages if stage_id(s) not in covered)
            for table in TABLE_INDEX
            for row in build_rows(table, ctx, None, [0])
            if any(stage_id(s) not in covered for s in row.stages)]
    assert not left, left
