# Copyright (c) mmlesion contributors. All rights reserved.
"""The ElixirNet demo comparison tool."""
import importlib.util
import json

import pytest

from mmlesion.datasets.demo import generate_demo_deeplesion
from mmlesion.nas import dump_genotypes
from mmlesion.testing import repo_root


def _load_tool():
    path = (
        repo_root() / 'projects' / 'elixirnet' / 'tools' / 'eval_elixirnet_demo.py')
    spec = importlib.util.spec_from_file_location('eval_elixirnet', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SEARCHED = dict(
    normal=dict(
        ops=[('non_local', 0), ('sep_conv_5x5', 0), ('skip_connect', 1),
             ('avg_pool_3x3', 0), ('sep_conv_3x3', 2), ('skip_connect', 0),
             ('dil_conv_3x3_d5', 3), ('skip_connect', 1)],
        concat=[1, 2, 3, 4]),
    reduce=dict(
        ops=[('avg_pool_3x3', 0), ('sep_conv_3x3', 0), ('skip_connect', 1),
             ('sep_conv_5x5', 0), ('skip_connect', 2), ('avg_pool_3x3', 0),
             ('sep_conv_1x3_3x1', 3), ('skip_connect', 1)],
        concat=[1, 2, 3, 4]))


def test_rows_share_schedule_and_build(tmp_path):
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    tool = _load_tool()
    snippet = str(tmp_path / 'genotype.py')
    dump_genotypes(SEARCHED, snippet)
    cfgs = {
        key: tool.prepare_cfg(
            key,
            str(tmp_path / tool.row_dir_name(key)),
            seed=3,
            max_epochs=2,
            searched_genotype=snippet)
        for key in tool.DEMO_ROWS
    }
    single = [k for k in cfgs if not k.startswith('multitype')]
    for key, cfg in cfgs.items():
        assert cfg.train_cfg.max_epochs == 2 and cfg.randomness.seed == 3
        assert cfg.default_hooks.checkpoint.interval == 2
        with DefaultScope.overwrite_default_scope('mmdet'):
            MODELS.build(cfg.model)  # every row of the table builds
        if key in single:
            assert cfg.param_scheduler == cfgs['fpn'].param_scheduler
            assert cfg.optim_wrapper == cfgs['fpn'].optim_wrapper
    assert cfgs['trpn'].train_dataloader == cfgs['fpn'].train_dataloader
    head = cfgs['searched'].model.roi_head.bbox_head
    assert [tuple(o) for o in head.genotypes['normal']['ops']] == \
        SEARCHED['normal']['ops']
    random_head = cfgs['random'].model.roi_head.bbox_head
    assert random_head.genotypes != head.genotypes
    assert cfgs['trpn_alb'].model.roi_head.bbox_head.genotypes != \
        head.genotypes
    assert cfgs['focal_rpn'].model.rpn_head.loss_cls.type == 'FocalLoss'
    assert cfgs['focal_rpn'].model.train_cfg.rpn.sampler is None
    assert cfgs['elixirnet_9slice'].train_dataloader.dataset.pipeline[
        0].num_slices == 9
    # the typed-train multi-type rows differ from the val-split ones only
    # in the fine-tuning split (same start, heads, schedule, test split)
    for rtm in ('multitype_wo_rtm', 'multitype_rtm'):
        typed = rtm.replace('type_', 'type_train_')
        val_cfg, train_cfg = cfgs[rtm], cfgs[typed]
        assert val_cfg.train_dataloader.dataset.split == 'val'
        assert train_cfg.train_dataloader.dataset.split == 'train'
        train_cfg.train_dataloader.dataset.split = 'val'
        assert train_cfg.train_dataloader == val_cfg.train_dataloader
        assert train_cfg.model == val_cfg.model
        assert train_cfg.test_dataloader == val_cfg.test_dataloader
        assert tool.STARTS_FROM[typed] == 'trpn_alb'
    assert tool.row_label('searched', snippet).endswith('(given genotype)')
    assert len({tool.row_dir_name(k) for k in tool.DEMO_ROWS}) == len(
        tool.DEMO_ROWS)


def test_search_epochs_enter_the_search_and_the_fingerprint(tmp_path):
    from projects.study_demo.study import RowContext, StudySettings
    tool = _load_tool()
    assert 'search_epochs' not in tool.study_row('searched').fingerprint
    row = tool.study_row('searched', search_epochs=15)
    assert row.fingerprint['search_epochs'] == 15
    settings = StudySettings(str(tmp_path), (2, ), data_root='d/',
                             max_epochs=4)
    ctx = RowContext(row, 2, str(tmp_path), settings)
    assert tool.search_options(ctx, 15) == [
        'randomness.seed=2', 'train_dataloader.dataset.data_root=d/',
        'train_cfg.max_epochs=15']
    assert tool.search_options(ctx)[-1] == 'train_cfg.max_epochs=4'
    settings.max_epochs = None
    assert len(tool.search_options(ctx)) == 2  # the config's own epochs


def test_table6_search_rows_search_their_own_space_per_seed(tmp_path):
    """Table 6's "random ALB" and "w/o our search space" rows search from
    the FPN row of the same seed with the searched row's budget, each with
    its own search config and folder, into the same TRPN+ALB config."""
    from mmengine.config import Config

    from projects.study_demo.study import RowContext, StudySettings
    tool = _load_tool()
    settings = StudySettings(str(tmp_path), (1, ), data_root='d/')
    folders, configs = set(), set()
    for key in ('searched', 'random_search', 'dartsspace'):
        assert tool.STARTS_FROM[key] == 'fpn'
        assert tool.DEMO_ROWS[key][1] == tool.DEMO_ROWS['trpn_alb'][1]
        row = tool.study_row(key, search_epochs=15)
        assert row.fingerprint['search_epochs'] == 15
        ctx = RowContext(row, 1, str(tmp_path), settings)
        args = tool.search_tool_args(key, ctx, 'fpn.pth', 15)
        assert args[1:5] == ['--work-dir', args[2], '--load-from', 'fpn.pth']
        assert args[2].startswith(ctx.row_dir)
        assert args[-3:] == ['randomness.seed=1',
                             'train_dataloader.dataset.data_root=d/',
                             'train_cfg.max_epochs=15']
        assert args[args.index('--target-config') + 1].endswith(
            tool.DEMO_ROWS['trpn_alb'][1])
        folders.add(args[2])
        configs.add(args[0])
        search_cfg = Config.fromfile(args[0])
        if key == 'random_search':
            assert search_cfg.train_cfg.strategy == 'random'
        else:
            assert search_cfg.train_cfg.get('strategy',
                                            'differentiable') != 'random'
        ops = search_cfg.model.roi_head.bbox_head.get('op_names') or []
        assert ('darts_sep_conv_3x3' in ops) == (key == 'dartsspace')
    assert len(folders) == 3 and len(configs) == 3
    fingerprints = {tool.study_row(k).fingerprint['genotype']
                    for k in ('searched', 'random_search', 'dartsspace')}
    assert len(fingerprints) == 3
    # a given genotype is the searched row's alone
    snippet = str(tmp_path / 'genotype.py')
    dump_genotypes(SEARCHED, snippet)
    assert 'genotype_sha1' in tool.study_row('searched', snippet).fingerprint
    assert 'genotype' in tool.study_row('random_search', snippet).fingerprint
    steps = {(b, a) for b, a, _ in tool.STEPS}
    assert {('random_search', 'searched'), ('dartsspace', 'searched')} <= steps


def test_rows_needing_an_earlier_row_say_so(tmp_path):
    tool = _load_tool()
    data_root = tmp_path / 'demo'
    generate_demo_deeplesion(
        data_root, num_train=2, num_val=1, num_test=1, image_size=128)
    with pytest.raises(FileNotFoundError, match="row 'trpn_alb'"):
        tool.main(['--rows', 'multitype_rtm', '--max-epochs', '1',
                   '--work-dir', str(tmp_path / 'work'), '--data-root',
                   str(data_root)])


def test_table_format():
    tool = _load_tool()
    metrics = {f'froc/sens@{r}': 0.5 for r in tool.FP_RATES}
    metrics['froc/mean@0.5-4'] = 0.5
    metrics[tool.MAP_KEY] = 0.25
    table = tool.format_table({'FPN baseline': metrics})
    assert '50.00' in table and '25.00' in table
    assert '86.63' in table and '81.84' in table  # the paper's rows


def test_missing_demo_data_is_reported(tmp_path):
    tool = _load_tool()
    with pytest.raises(FileNotFoundError, match='--generate-data'):
        tool.main(['--data-root', str(tmp_path), '--rows', 'fpn'])


def test_train_and_test_two_rows_on_tiny_demo_data(tmp_path, capsys):
    tool = _load_tool()
    data_root = tmp_path / 'demo'
    generate_demo_deeplesion(
        data_root, num_train=4, num_val=2, num_test=2, image_size=128)
    results = tool.main([
        '--rows', 'fpn', 'elixirnet', '--max-epochs', '1', '--work-dir',
        str(tmp_path / 'work'), '--data-root',
        str(data_root), '--cfg-options', 'train_dataloader.batch_size=2'
    ])
    assert list(results) == ['FPN baseline', 'ElixirNet (TRPN+ALB+RTM)']
    for metrics in results.values():
        for rate in tool.FP_RATES:
            assert 0.0 <= metrics[f'froc/sens@{rate}'] <= 1.0
        assert tool.MAP_KEY in metrics
    summary = json.loads((tmp_path / 'work' / 'summary.json').read_text())
    saved = summary['rows']['FPN baseline']
    for rate in tool.FP_RATES:  # (breakdown keys may be NaN: skip them)
        key = f'froc/sens@{rate}'
        assert saved[key] == results['FPN baseline'][key]
    assert 'ElixirNet (TRPN+ALB+RTM)' in capsys.readouterr().out
