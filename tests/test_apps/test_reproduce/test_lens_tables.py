# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py`` LENS Tables II-IV at plan level: each row is Table
I's steps with its one change (the configs, the mining strategies, the
mined file the configs name), Table III counts what each row trains on,
the quoted row runs nothing, each table prints its paper's columns; and
the counting tool on a tiny mined set."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from mmlesion.apps.reproduce import TABLES, PlanContext, build_rows
from mmlesion.methods.lens.paper import LENS_DOMAIN_ADAPT, lens_map
from mmlesion.methods.lens.tables import COUNT_COLUMNS
from mmlesion.apps.reproduce.execute import stage_id, summarise, table_markdown
from mmlesion.apps.reproduce.paper_results import PAPER_RESULTS, QUOTED_MODELS
from tests.helpers.tool_modules import load_tool


def _ctx(tmp_path, **kw):
    return PlanContext(work_dir=str(tmp_path / 'w'), python='python', **kw)


def _row(table, key, ctx, seed=0):
    (row, ) = build_rows(table, ctx, [key], [seed])
    return row


def _ids(row):
    return [stage_id(s) for s in row.stages]


def _opt(argv, key):
    """The value of ``key=`` among a command's ``--cfg-options``."""
    (value, ) = [a.split('=', 1)[1] for a in argv if a.startswith(f'{key}=')]
    return value


def test_table2_rows_are_row_d_with_another_proposal_network(tmp_path):
    """Steps 1-3 as row (d) (the same stages: one mining for the table),
    then row (d)'s training with the row's config; AFP is row (d)."""
    ctx = _ctx(tmp_path)
    d = _row('lens/table1', 'd', ctx)
    afp = _row('lens/table2', 'afp', ctx)
    assert _ids(afp) == _ids(d) and afp.model == d.model
    assert afp.label.startswith('AFP, two stages')
    for key, head in (('rpn', 'lens-rpn-'), ('centernet', 'lens-centernet-'),
                      ('fcos', 'lens-fcos-multi'),
                      ('fcos_one_stage', 'lens-fcos-onestage-')):
        row = _row('lens/table2', key, ctx)
        assert _ids(row)[:-2] == _ids(d)[:-2]  # exports, (c), mining
        train, ev = row.stages[-2:]
        config = train.argv[2]
        assert osp.basename(config).startswith(head) and row.model in config
        mined = d.stages[-3].outputs[0]
        assert _opt(train.argv, 'train_dataloader.dataset.datasets.0.'
                    'mined_ann_file') == mined
        assert ev.name == f'eval_3d_{key}' and ev.argv[2] == config
        assert PAPER_RESULTS[row.model]['froc3d/mean@0.125-8'] > 40


#: Table III: row -> the strategies its mining stage names (None: no
#: mining; () the stage of row (d))
TABLE3 = {'no_mining': None, 'cross_slice': ['propagation'],
          'intra_patient': ['propagation', 'intra_patient'],
          'cross_dataset': (), 'unlabeled': ()}


@pytest.mark.parametrize('key', sorted(TABLE3))
def test_table3_mines_one_strategy_more_and_counts(key, tmp_path):
    """Each row's mining runs its strategies (``--strategies``) into the
    file its config names; the last stage counts what the row trained on
    with the training's data options and adds it to the 3D metrics."""
    ctx = _ctx(tmp_path, data_root=str(tmp_path / 'data' / 'DeepLesion'))
    row = _row('lens/table3', key, ctx)
    d = _row('lens/table1', 'd', ctx)
    names = [s.name for s in row.stages]
    train, ev, counts = row.stages[-3:]
    assert names[-1] == 'training_counts' and ev.name.startswith('eval_3d')
    assert row.metrics_file == counts.outputs[0]
    argv = counts.argv
    assert argv[1] == 'tools/analysis_tools/lens_training_counts.py'
    assert argv[2] == train.argv[2]  # the row's config
    assert argv[argv.index('--metrics') + 1] == ev.outputs[0]
    train_opts = train.argv[train.argv.index('--cfg-options') + 1:]
    assert argv[argv.index('--cfg-options') + 1:] == [
        o for o in train_opts if not o.startswith('randomness.seed=')]
    want = TABLE3[key]
    mining = [s for s in row.stages if s.name.startswith('mine')]
    if want is None:
        a = _row('lens/table1', 'a', ctx)
        assert mining == [] and row.model == a.model
        assert _ids(row)[:2] == _ids(a)
        return
    (mine, ) = mining
    strategies = mine.argv[mine.argv.index('--strategies') + 1:
                           mine.argv.index('--overwrite')] \
        if '--strategies' in mine.argv else []
    assert strategies == list(want)
    if not want:
        assert stage_id(mine) == stage_id(d.stages[-3])
    mined = mine.outputs[0]
    assert _opt(train.argv, 'train_dataloader.dataset.datasets.0.'
                'mined_ann_file') == mined
    # one definition: the file the config reads is the file mined for it
    cfg = Config.fromfile(train.argv[2])
    ds = cfg.train_dataloader.dataset.datasets[0]
    assert osp.basename(mined) == ds.mined_ann_file
    assert ds.use_negatives == (key == 'unlabeled')


def test_table4_rows(tmp_path):
    """Single dataset and proposed are Table I's (a) and (d); the pools and
    the separate models need the exports only; "Ignored as GT" trains on
    row (d)'s mined file; domain adaptation is quoted, never run."""
    ctx = _ctx(tmp_path, data_root=str(tmp_path / 'data' / 'DeepLesion'))
    a, d = _row('lens/table1', 'a', ctx), _row('lens/table1', 'd', ctx)
    assert _ids(_row('lens/table4', 'single', ctx)) == _ids(a)
    assert _ids(_row('lens/table4', 'proposed', ctx)) == _ids(d)
    for key in ('pooling', 'positive_pooling', 'separate'):
        row = _row('lens/table4', key, ctx)
        assert [s.name for s in row.stages] == [
            'export_luna16', 'export_lits', 'export_nih_ln', 'train',
            f'eval_3d_{key}']
        train = row.stages[3]
        # every data path of the (nested) pools moves to --data-root's
        # folders, none stays under data/
        paths = [o for o in train.argv
                 if o.startswith('train_') and '.data_root=' in o]
        assert len(paths) == 4
        assert all(str(tmp_path / 'data') in p for p in paths)
    gt = _row('lens/table4', 'uncertain_as_gt', ctx)
    assert _ids(gt)[:-2] == _ids(d)[:-2]
    assert 'uncertain-gt' in gt.stages[-2].argv[2]
    quoted = _row('lens/table4', 'domain_adapt', ctx)
    assert quoted.stages == [] and quoted.model == LENS_DOMAIN_ADAPT
    assert QUOTED_MODELS[quoted.model] == 'lens'
    assert 'quoted' in quoted.label and 'not run' in quoted.label


def test_row_e_fpr_training_takes_its_own_options(tmp_path):
    """``--config-cfg-options lens-fpr ...`` replace ``--cfg-options`` for
    the 3D FPR training and its network in the 3D evaluation alone (row
    (d)'s detector is built with the 2.5D options everywhere else);
    without them it takes ``--cfg-options`` too."""
    dense = 'model.backbone.growth_rate=8'
    ctx = _ctx(tmp_path, cfg_options=[dense], config_cfg_options={
        'lens-fpr': ['train_cfg.max_epochs=1']})
    stages = _row('lens/table1', 'e', ctx).stages
    trains = [s.argv for s in stages if s.name == 'train']
    assert len(trains) == 3  # (c), (d), then the FPR network
    assert [any('lens-fpr_' in a for a in t) for t in trains] == [
        False, False, True]
    assert [dense in t for t in trains] == [True, True, False]
    assert ['train_cfg.max_epochs=1' in t for t in trains] == [
        False, False, True]
    assert all(dense in s.argv for s in stages
               if s.name in ('mine', 'fpr_proposals', 'eval_3d_e'))
    (ev, ) = [s.argv for s in stages if s.name == 'eval_3d_e']
    # the 3D evaluation builds the FPR network as it was trained
    assert ev[ev.index('--fpr-cfg-options') + 1:ev.index(
        '--cfg-options')] == ['train_cfg.max_epochs=1']
    plain = _row('lens/table1', 'e', _ctx(tmp_path, cfg_options=[dense]))
    assert dense in [s.argv for s in plain.stages if s.name == 'train'][-1]


def test_each_table_prints_its_columns(tmp_path):
    """Table I keeps its columns; II adds the inference time, III the
    counts (thousands, from our counts), IV time and size; the paper's
    numbers of a quoted row are shown beside no result of ours."""
    assert TABLES['lens/table1'].columns == list(lens_map())
    assert 'lens/infer_ms' in TABLES['lens/table2'].columns
    assert set(COUNT_COLUMNS) <= set(TABLES['lens/table3'].columns)
    assert {'lens/infer_time_x', 'lens/model_size_x'} <= set(
        TABLES['lens/table4'].columns)
    ctx = _ctx(tmp_path)
    spec = TABLES['lens/table3']
    rows = build_rows('lens/table3', ctx, ['no_mining', 'cross_slice'], [0])
    for row, lesions in zip(rows, (22919, 23012)):
        counts = {'training_set/lesions_3d': lesions,
                  'training_set/boxes_2d': 186000,
                  'training_set/uncertain_2d': 0,
                  'training_set/slices': 163000, 'average': 0.4}
        with open(_mkdir(row.metrics_file), 'w') as f:
            json.dump(counts, f)
    md = table_markdown(spec, summarise(spec, rows, PAPER_RESULTS))
    assert '| + Cross-slice | ' in md
    assert '22.8 / 23.01' in md and '186 / 186.00' in md
    assert '37.7 / 40.00' in md
    spec4 = TABLES['lens/table4']
    rows4 = build_rows('lens/table4', ctx, ['domain_adapt'], [0])
    md4 = table_markdown(spec4, summarise(spec4, rows4, PAPER_RESULTS))
    assert '47.1 / -' in md4 and '1.9 / -' in md4


def _mkdir(path):
    import os
    os.makedirs(osp.dirname(path), exist_ok=True)
    return path


def _write_mined(path, series, key, box):
    from mmlesion.datasets.deeplesion.mined_file import write_mined_file
    write_mined_file(path, [
        # a key slice: one uncertain box
        dict(series_dir=series, slice=key, mined=[],
             uncertain=[[5, 5, 15, 15]]),
        # a propagated box (its annotation's lesion: the annotated box on
        # the next slice) and an uncertain one
        dict(series_dir=series, slice=key + 1, mined=[box],
             mined_sources=['propagation'], uncertain=[[60, 60, 70, 70]]),
        # a slice with an uncertain box only, and an empty one
        dict(series_dir=series, slice=key + 5, mined=[],
             uncertain=[[90, 90, 99, 99]]),
        dict(series_dir=series, slice=key - 5, mined=[], uncertain=[]),
    ], dict(iou_thr=0.5))


def test_training_counts_tool(tiny_demo_root, tmp_path, capsys):
    """lens_training_counts.py: Table III's counts of the set a config
    builds, added to a metrics file; with negatives or without; the
    uncertain lesions counted as ground truth where the config says so
    (Table IV, Ignored as GT)."""
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope
    tool = load_tool('analysis_tools/lens_training_counts.py')
    ds = dict(type='DeepLesionMinedDataset', data_root=str(tiny_demo_root),
              ann_file='DL_info.csv', data_prefix=dict(img='Images_png/'),
              split='train', pipeline=[])
    with DefaultScope.overwrite_default_scope('mmdet'):
        plain = DATASETS.build(ds)
    info = plain.get_data_info(0)
    series = info['series_dir'].rstrip('/').split('/')[-1]
    lesions = sum(len(plain.get_data_info(i)['instances'])
                  for i in range(len(plain)))
    mined = str(tmp_path / 'lens_mined.json')
    _write_mined(mined, series, int(info['key_slice']),
                 [float(v) for v in info['instances'][0]['bbox']])
    config = tmp_path / 'cfg.py'
    config.write_text(
        'custom_imports = dict(imports=["mmlesion"])\n'
        f'train_dataloader = dict(dataset=dict(type="LENSMultiDataset", '
        f'datasets=[{ds!r}], dataset_names=["deeplesion"]))\n')
    metrics = tmp_path / 'metrics.json'
    metrics.write_text(json.dumps({'average': 0.5}))
    out = tmp_path / 'out.json'

    def counts(*options):
        assert tool.main([str(config), '--metrics', str(metrics), '--out',
                          str(out), '--overwrite', '--cfg-options',
                          *options]) == 0
        got = json.loads(out.read_text())
        assert got['average'] == 0.5
        return [got[k] for k in COUNT_COLUMNS.values()]

    key = 'train_dataloader.dataset.datasets.0'
    assert counts(f'{key}.mined_ann_file=None') == [
        lesions, lesions, 0, len(plain)]
    # the propagated box joins its annotation's lesion: no new 3D lesion
    assert counts(f'{key}.mined_ann_file={mined}') == [
        lesions, lesions + 1, 3, len(plain) + 3]
    assert counts(f'{key}.mined_ann_file={mined}',
                  f'{key}.use_negatives=False') == [
        lesions, lesions + 1, 2, len(plain) + 1]
    as_gt = counts(f'{key}.mined_ann_file={mined}',
                   f'{key}.uncertain_as_gt=True')
    assert as_gt[1:] == [lesions + 4, 0, len(plain) + 3]
    assert as_gt[0] > lesions
    assert 'deeplesion: lesions_3d' in capsys.readouterr().out
    assert tool.main([str(config), '--out', str(out)]) == 1  # exists
    assert 'exists' in capsys.readouterr().err
