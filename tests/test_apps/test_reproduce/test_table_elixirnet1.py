# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py elixirnet/table1`` as a plan: ElixirNet's Table 1,
every detector of its 3-slice rows (FRCNN on C4, FPN, Deformv2) and
ElixirNet on each, one training and the test of its last epoch per row,
compared with the paper's sensitivities at 0.5-16 FPs and mAP."""
import os.path as osp

from mmlesion.apps.reproduce import TABLES, PlanContext, build_rows
from mmlesion.apps.reproduce.execute import froc_map, repo_root
from mmlesion.apps.reproduce.paper_results import PAPER_RESULTS

#: row -> config stem (the same configs as Tables 2 and 5 and the
#: metafile's "Table 1" models)
ROWS = {
    'frcnn': 'faster-rcnn_r50_c4_4xb2-1x_deeplesion-3slice',
    'elixirnet': 'elixirnet-fig3geno_r50_c4_4xb2-1x_deeplesion-3slice',
    'fpn': 'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice',
    'elixirnet_fpn': 'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice',
    'deformv2': 'faster-rcnn_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice',
    'elixirnet_deformv2':
    'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice',
}
RATES = ('0.5', '1', '2', '3', '4', '8', '16')


def test_rows_train_and_test_the_table1_configs(tmp_path):
    spec = TABLES['elixirnet/table1']
    assert spec.row_keys == list(ROWS)
    assert spec.columns == list(froc_map())
    ctx = PlanContext(str(tmp_path / 'w'), data_root='/d/DeepLesion',
                      cfg_options=['train_cfg.max_epochs=2'])
    for row in build_rows('elixirnet/table1', ctx, None, [3]):
        config = f'configs/elixirnet/{ROWS[row.key]}.py'
        assert osp.isfile(osp.join(repo_root(), config))
        assert row.model == ROWS[row.key]
        train, test = row.stages
        assert (train.name, test.name) == ('train', 'test_iou')
        assert train.argv[2] == config and test.argv[2] == config
        assert 'randomness.seed=3' in train.argv
        assert 'data_root=/d/DeepLesion' in train.argv
        # the last epoch (the paper trains 12 epochs and selects nothing),
        # with the paper's IoU overlap (the test config's default)
        work = train.argv[train.argv.index('--work-dir') + 1]
        assert test.argv[3] == f'@last:{work}'
        assert not any(a.startswith('test_evaluator.overlap')
                       for a in test.argv)
        assert row.metrics_file == test.outputs[0]
        assert row.metric_map == froc_map()


def test_paper_numbers_of_every_row():
    """Every row is compared at all seven FP rates of Table 1 and on
    mAP; a baseline is ElixirNet's number minus the gain printed beside
    it (sens@3 of FPN: Table 5's, its README says why)."""
    for key, model in ROWS.items():
        paper = PAPER_RESULTS[model]
        assert set(paper) == {f'sens@{r}' for r in RATES} | {'bbox_mAP'}
    gains = {  # Table 1: ElixirNet row -> its baseline, the printed gains
        'elixirnet': ('frcnn', (4.49, 3.13, 2.51, 1.35, 2.85, 3.9, 3.9),
                      2.9),
        'elixirnet_fpn': ('fpn', (5.82, 5.07, 4.4, 4.12, 4.2, 2.69, 2.69),
                          3.7),
        'elixirnet_deformv2': ('deformv2', (2.48, 3.49, 2.66, 2.45, 2.39,
                                            3.61, 3.61), 2.0)}
    for ours, (base, sens_gains, map_gain) in gains.items():
        top, low = PAPER_RESULTS[ROWS[ours]], PAPER_RESULTS[ROWS[base]]
        for rate, gain in zip(RATES, sens_gains):
            if (base, rate) == ('fpn', '3'):
                assert low['sens@3'] == 81.51  # Table 5
                continue
            assert abs(top[f'sens@{rate}'] - gain - low[f'sens@{rate}']) \
                < 1e-6, (ours, rate)
        assert abs(top['bbox_mAP'] - map_gain - low['bbox_mAP']) < 1e-6
