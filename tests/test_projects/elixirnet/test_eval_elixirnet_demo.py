# Copyright (c) mmlesion contributors. All rights reserved.
"""The ElixirNet demo comparison tool."""
import importlib.util
import json

import pytest

from mmlesion.apps.demo import generate_demo_deeplesion
from mmlesion.methods.elixirnet.nas import dump_genotypes
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
    its own search config and folder, into the same + ALB config."""
    from mmengine.config import Config

    from projects.study_demo.study import RowContext, StudySettings
    tool = _load_tool()
    settings = StudySettings(str(tmp_path), (1, ), data_root='d/')
    folders, configs = set(), set()
    for key in ('searched', 'random_search', 'dartsspace'):
        assert tool.STARTS_FROM[key] == 'fpn'
        assert tool.DEMO_ROWS[key][1] == tool.DEMO_ROWS['alb'][1]
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
            tool.DEMO_ROWS['alb'][1])
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


def _reproduce_config(table: str, key: str, flag: str):
    """The config ``tools/reproduce.py`` trains for a row: the argument
    after ``flag`` of the row's training stage (``--target-config`` of
    Table 6's search-and-train, else the config of ``tools/train.py``)."""
    from mmengine.config import Config

    from mmlesion.apps.reproduce.plan import PlanContext
    from mmlesion.apps.reproduce.tables import build_rows
    ctx = PlanContext(work_dir='w', python='python')
    (row, ) = build_rows(table, ctx, [key], [0])
    argv = next(s.argv for s in row.stages
                if s.name in ('train', 'search_and_train'))
    config = argv[argv.index(flag) + 1]
    return Config.fromfile(str(repo_root() / config))


def _changed_components(cfg, baseline) -> list:
    """The top-level parts of ``cfg.model`` that differ from the FPN
    baseline's (a row of an ablation table changes only these)."""
    a, b = cfg.model.to_dict(), baseline.model.to_dict()
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def test_focal_rpn_row_is_one_model_in_study_and_reproduce(tmp_path):
    """Issue 48, item 4: Table 5's focal-loss RPN row ("TRPN ... outperforms
    focal loss (Lin et al. 2017b) with replacing the cross-entropy loss in
    RPN", 82.66) is the same model in the study and in tools/reproduce.py:
    the FPN baseline whose RPN loss is the sigmoid focal loss over every
    anchor (no sampler), nothing else changed."""
    tool = _load_tool()
    study = {
        key: tool.prepare_cfg(key, str(tmp_path / key), seed=0)
        for key in ('fpn', 'focal_rpn')
    }
    ours = _reproduce_config('elixirnet/table5', 'focal_rpn', 'tools/train.py')
    fpn = _reproduce_config('elixirnet/table5', 'fpn', 'tools/train.py')
    for cfg, baseline in ((study['focal_rpn'], study['fpn']), (ours, fpn)):
        rpn = cfg.model.rpn_head
        assert rpn.type == 'RPNHead'
        assert rpn.loss_cls == dict(type='FocalLoss', use_sigmoid=True,
                                    gamma=2.0, alpha=0.25, loss_weight=1.0)
        assert cfg.model.train_cfg.rpn.sampler is None
        # nothing but the RPN's classification loss (and with it the
        # sampler) differs from the FPN row
        assert _changed_components(cfg, baseline) == ['rpn_head',
                                                      'train_cfg']
        rpn_base = baseline.model.rpn_head
        assert sorted(k for k in set(rpn) | set(rpn_base)
                      if rpn.get(k) != rpn_base.get(k)) == ['loss_cls']
        assert cfg.model.train_cfg.rcnn == baseline.model.train_cfg.rcnn
        train_rpn = dict(cfg.model.train_cfg.rpn, sampler=None)
        assert train_rpn == dict(baseline.model.train_cfg.rpn, sampler=None)


def test_table6_rows_are_one_model_in_study_and_reproduce(tmp_path):
    """Issue 48, item 5: Table 6's three genotypes (ours, "ALB w/o our
    search space", "random ALB") go into one model, the paper's "ElixirNet"
    of Table 6 (83.88 / 34.1 = Table 5's + ALB row): FPN + ALB, mmdet's
    RPN, no RTM; in the study (its rows and its searches' target) and in
    tools/reproduce.py alike."""
    from mmengine.config import Config

    from projects.study_demo.study import RowContext, StudySettings
    tool = _load_tool()
    snippet = str(tmp_path / 'genotype.py')
    dump_genotypes(SEARCHED, snippet)
    fpn_study = tool.prepare_cfg('fpn', str(tmp_path / 'fpn'), seed=0)
    fpn = _reproduce_config('elixirnet/table5', 'fpn', 'tools/train.py')
    settings = StudySettings(str(tmp_path), (0, ))
    models = []
    for key, study_key in (('elixirnet', 'searched'),
                           ('wo_search_space', 'dartsspace'),
                           ('random', 'random_search')):
        ours = _reproduce_config('elixirnet/table6', key, '--target-config')
        row = tool.prepare_cfg(study_key, str(tmp_path / study_key), seed=0,
                               searched_genotype=snippet)
        ctx = RowContext(tool.study_row(study_key), 0, str(tmp_path),
                         settings)
        args = tool.search_tool_args(study_key, ctx, 'fpn.pth')
        target = Config.fromfile(args[args.index('--target-config') + 1])
        for cfg, baseline in ((ours, fpn), (row, fpn_study),
                              (target, fpn_study)):
            model = cfg.model
            models.append((model.rpn_head.type, model.roi_head.type,
                           model.roi_head.bbox_head.type))
            assert _changed_components(cfg, baseline) == ['roi_head']
    assert set(models) == {('RPNHead', 'ALBRoIHead', 'ALBBBoxHead')}
    # the fixed random genotype (a control of the searched row) is the
    # same model with another genotype
    random = tool.prepare_cfg('random', str(tmp_path / 'random'), seed=0)
    searched = tool.prepare_cfg('searched', str(tmp_path / 's'), seed=0,
                                searched_genotype=snippet)
    for cfg in (random, searched):
        cfg.model.roi_head.bbox_head.genotypes = None
        cfg.model.roi_head.bbox_head.pop('search', None)  # set by the genotype
    assert random.model == searched.model
