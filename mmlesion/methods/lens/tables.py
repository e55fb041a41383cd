# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS's tables for ``tools/reproduce.py`` (Yan et al., TMI 2020): the rows
as stages, the commands of ``configs/lens/README.md`` (what each table
runs: docs/reproduce.md); every row is scored on the 3D protocol of the
manual 1K test set (``tools/analysis_tools/eval_lens_3d.py``).
"""
import os.path as osp
from dataclasses import replace
from typing import Dict, List, Sequence, Tuple

from mmlesion.apps.reproduce.execute import root_options
from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES, PaperTables
from mmlesion.apps.reproduce.plan import MetricMap, PlanContext, Row, Stage
from mmlesion.apps.reproduce.row_stages import device_option as _device
from mmlesion.apps.reproduce.row_stages import Training, train_stage
from mmlesion.apps.reproduce.table_index import table_specs
from .paper import (GAINS, LENS_DOMAIN_ADAPT, LENS_RATES, PAPER_RESULTS,
                    PRINTED, RESULT_COLUMNS, RESULT_ROWS, VARIANTS, lens_map)
from .step_time import fpr_patches, patch_batch, patch_input

L = 'configs/lens'
_FULL = 'densenet121-2.5d_fpn_1xb4-radam-8e'
_MULTI = 'deeplesion-luna16-lits-nihln-9slice'
#: Table III's counts of a training set (``lens_training_counts.py``), in
#: thousands as the paper prints them ("22.8K"): paper key -> our key
COUNT_COLUMNS = {
    'lens/lesions_3d_k': 'training_set/lesions_3d',
    'lens/boxes_2d_k': 'training_set/boxes_2d',
    'lens/uncertain_2d_k': 'training_set/uncertain_2d',
    'lens/slices_k': 'training_set/slices',
}
#: Table II's inference time per slice and Table IV's inference time and
#: model size relative to "Single dataset": the paper's columns, which
#: ``tools/reproduce.py`` does not measure (our keys are never written, the
#: table shows "-"; ``projects/benchmarks/benchmark_lens.py`` times LENS)
SPEED_COLUMNS = {
    'lens/infer_ms': 'inference_ms_per_slice',
    'lens/infer_time_x': 'inference_time_relative',
    'lens/model_size_x': 'model_size_relative',
}


def lens_row_map() -> MetricMap:
    """What a LENS row reads from its metrics file: the 3D FROC
    (:func:`~.paper.lens_map`), Table III's counts and Table II / IV's
    speed and size columns (each table prints its own)."""
    out = lens_map()
    out.update({k: (v, 1e-3) for k, v in COUNT_COLUMNS.items()})
    out.update({k: (v, 1.) for k, v in SPEED_COLUMNS.items()})
    return out


def _config(stem: str) -> str:
    return f'{L}/{stem}.py'


# ---------------------------------------------------------------- Table I
_LENS = {
    'baseline': ('MULAN (baseline)', f'mulan_{_FULL}_deeplesion-9slice'),
    'a': ('(a) AFP', f'lens-afp_{_FULL}_deeplesion-9slice'),
    'b': ('(b) + multi-dataset', f'lens-afp-multi_{_FULL}_{_MULTI}'),
    'c': ('(c) + proposal fusion', f'lens-afp-multi-fusion_{_FULL}_{_MULTI}'),
    'd': ('(d) + mining', f'lens-afp-multi-fusion-mining_{_FULL}_{_MULTI}'),
    'e': ('(e) + 3D FPR', 'lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion'),
}


def lens_data(ctx: PlanContext) -> Dict[str, str]:
    """Where LENS's datasets are: DeepLesion at ``--data-root`` (default
    ``data/DeepLesion``), the other releases beside it under the names of
    the docs (``LUNA16/``, ``LiTS/``, ``NIH-LN/`` holding TCIA's ``CT Lymph
    Nodes/`` and ``MED_ABD_LYMPH_MASKS/``), their 2D exports in ``lens/``
    (the configs' ``data/lens/<dataset>/``)."""
    deeplesion = ctx.data_root or 'data/DeepLesion'
    data = osp.dirname(osp.normpath(deeplesion))
    out = {k: osp.join(data, name) for k, name in (
        ('luna16', 'LUNA16'), ('lits', 'LiTS'), ('nih_ln', 'NIH-LN'),
        ('lens', 'lens'))}
    return dict(out, deeplesion=deeplesion, ann_3d=osp.join(
        deeplesion, 'DeepLesion_manual_1K_test_release.pkl'))


def _lens_roots(ctx: PlanContext, config: str) -> List[str]:
    """The LENS config's data paths moved to :func:`lens_data`'s folders
    (the configs have no ``data_root`` to move them with)."""
    if not ctx.data_root:
        return []
    where = lens_data(ctx)
    return root_options(config, [('data/DeepLesion/', where['deeplesion']),
                                 ('data/lens/', where['lens'])])


#: the mining strategies of Sec. V, in the order the miner runs them
STRATEGIES = ('propagation', 'intra_patient', 'cross_dataset')


def _lens_exports(ctx) -> List[Stage]:
    """Step 0: LUNA16, LiTS and NIH-LN in DeepLesion's layout, as the LENS
    README exports them (run again, an export replaces its own outputs)."""
    w = lens_data(ctx)
    luna, nih = w['luna16'], w['nih_ln']
    sources = {  # the converters' inputs and volume files
        'luna16': [luna, '--annotations', osp.join(luna, 'annotations.csv'),
                   '--excluded', osp.join(luna, 'annotations_excluded.csv'),
                   '--seriesuids', osp.join(luna, 'seriesuids.csv'),
                   '--out', osp.join(luna, 'luna16.json')],
        'lits': [w['lits'], '--out', osp.join(w['lens'], 'lits.json')],
        'nih_ln': [osp.join(nih, 'CT Lymph Nodes'),
                   osp.join(nih, 'MED_ABD_LYMPH_MASKS'), '--out',
                   osp.join(w['lens'], 'nih_ln.json')]}
    return [Stage(f'export_{name}', [
        ctx.python, f'tools/dataset_converters/{name}.py', *args,
        '--export-2d', osp.join(w['lens'], name), '--overwrite'
    ], outputs=[osp.join(w['lens'], name, 'DL_info.csv')])
            for name, args in sources.items()]


def _lens_eval(ctx, config, work, tag, *extra) -> Tuple[Stage, str]:
    """``eval_lens_3d.py`` of the newest checkpoint of ``work``, with the
    options the model was trained with (a model shrunk by ``--cfg-options``
    is built the same way to load its checkpoint)."""
    out = osp.join(work, f'lens_3d_{tag}')
    return Stage(f'eval_3d_{tag}', [
        ctx.python, 'tools/analysis_tools/eval_lens_3d.py', config,
        f'@last:{work}', '--ann-3d', lens_data(ctx)['ann_3d'], '--out-dir',
        out, '--overwrite', *_device(ctx), *extra
    ] + ctx.options(config, *_lens_roots(ctx, config)), outputs=[osp.join(
        out, 'metrics.json')], gpus=min(ctx.gpus, 1)), osp.join(
            out, 'metrics.json')


def _mining(ctx: PlanContext, seed: int,
            strategies: Sequence[str] = STRATEGIES
            ) -> Tuple[List[Stage], str]:
    """Sec. III steps 1-3: the single-type exports, the four-dataset model
    of row (c) and the mining of DeepLesion's training split with its
    experts, with ``strategies`` (all three: the file of row (d); fewer:
    Table III's first rows, written beside it).

    Returns:
        tuple: the stages and the mined file.
    """
    cfg_c = _config(_LENS['c'][1])
    stages = _lens_exports(ctx)
    train_c, work_c = train_stage(
        ctx, Training(cfg_c, seed, options=_lens_roots(ctx, cfg_c)))
    stages.append(train_c)
    folder = osp.join(osp.abspath(ctx.work_dir), 'lens_mining',
                      f'seed_{seed}')
    if tuple(strategies) == STRATEGIES:
        name, extra = 'mine', []
        mined = osp.join(folder, 'lens_mined.json')
    else:  # the configs' names: lens_mined_propagation_intrapatient.json
        tag = '_'.join(s.replace('_', '') for s in strategies)
        name, extra = f'mine_{tag}', ['--strategies', *strategies]
        mined = osp.join(folder, f'lens_mined_{tag}.json')
    # the (c) model predicts once for the files of every strategy
    cache = osp.join(folder, 'lens_proposals.pt')
    stages.append(Stage(name, [
        ctx.python, 'tools/lens_mine_annotations.py', cfg_c,
        f'@last:{work_c}', '--out', mined, '--proposals-cache', cache,
        *extra, '--overwrite'
    ] + ctx.options(cfg_c, *_lens_roots(ctx, cfg_c)), outputs=[mined]))
    return stages, mined


def _mined_options(ctx: PlanContext, config: str, mined: str) -> List[str]:
    """The data options of a config trained with the mined file
    (DeepLesion is its dataset 0)."""
    return _lens_roots(ctx, config) + [
        f'train_dataloader.dataset.datasets.0.mined_ann_file={mined}']


def _lens_table1(ctx, key, seed):
    """Table I: Sec. III's five steps, the 3D protocol on the manual 1K
    test set."""
    label, stem = _LENS[key]
    cfg = {k: _config(v[1]) for k, v in _LENS.items()}
    if key in ('baseline', 'a'):
        train, work = train_stage(ctx, Training(
            cfg[key], seed, options=_lens_roots(ctx, cfg[key])))
        ev, metrics = _lens_eval(ctx, cfg[key], work, key)
        return Row(key, label, stem, [train, ev], metrics, lens_row_map(),
                   seed)
    if key in ('b', 'c'):  # (b): expert 0 of the (c) model
        stages = _lens_exports(ctx)
        train_c, work_c = train_stage(ctx, Training(
            cfg['c'], seed, options=_lens_roots(ctx, cfg['c'])))
        ev, metrics = _lens_eval(ctx, cfg[key], work_c, key)
        return Row(key, label, stem, stages + [train_c, ev], metrics,
                   lens_row_map(), seed)
    stages, mined = _mining(ctx, seed)
    train_d, work_d = train_stage(ctx, Training(
        cfg['d'], seed, options=_mined_options(ctx, cfg['d'], mined)))
    stages.append(train_d)
    if key == 'd':
        ev, metrics = _lens_eval(ctx, cfg['d'], work_d, 'd')
        return Row(key, label, stem, stages + [ev], metrics, lens_row_map(),
                   seed)
    proposals = osp.join(osp.dirname(mined), 'lens_fpr_proposals.json')
    stages.append(Stage('fpr_proposals', [
        ctx.python, 'tools/lens_fpr_proposals.py', cfg['d'],
        f'@last:{work_d}', '--mined', mined, '--out', proposals,
        '--overwrite'
    ] + ctx.options(cfg['d'], *_lens_roots(ctx, cfg['d'])),
                    outputs=[proposals]))
    train_e, work_e = train_stage(ctx, Training(
        cfg['e'], seed, 'deeplesion-fpr', (
            *_lens_roots(ctx, cfg['e']),
            f'train_dataloader.dataset.ann_file={osp.abspath(proposals)}')))
    stages.append(train_e)
    fpr_opts = ctx.user_options(cfg['e'])  # the FPR network's, as trained
    ev, metrics = _lens_eval(
        ctx, cfg['d'], work_d, 'e', '--fpr-config', cfg['e'],
        '--fpr-checkpoint', f'@last:{work_e}',
        *(['--fpr-cfg-options', *fpr_opts] if fpr_opts else []))
    return Row(key, label, _LENS['e'][1], stages + [ev], metrics,
               lens_row_map(), seed)


def _table1_row(ctx, row: str, key: str, label: str, seed: int) -> Row:
    """Table I's row ``row`` (its stages, model and work folders) under
    another table's key and label."""
    return replace(_lens_table1(ctx, row, seed), key=key, label=label)


def _mined_row(ctx, key: str, label: str, stem: str, seed: int,
               strategies: Sequence[str] = STRATEGIES) -> Row:
    """Steps 1-3 (:func:`_mining`), then ``stem`` trained with the mined
    file and scored on the 3D protocol."""
    config = _config(stem)
    stages, mined = _mining(ctx, seed, strategies)
    train, work = train_stage(ctx, Training(
        config, seed, options=_mined_options(ctx, config, mined)))
    ev, metrics = _lens_eval(ctx, config, work, key)
    return Row(key, label, stem, stages + [train, ev], metrics,
               lens_row_map(), seed)


# --------------------------------------------------------------- Table II
#: row -> (label, config stem): Table I row (d) with another proposal
#: network, "other parts unchanged" (the same mined file)
_T2 = {
    'rpn': ('RPN [28], two stages',
            f'lens-rpn-multi-fusion-mining_{_FULL}_{_MULTI}'),
    'centernet': ('CenterNet [41], two stages',
                  f'lens-centernet-multi-fusion-mining_{_FULL}_{_MULTI}'),
    'fcos_one_stage': ('FCOS [40], one stage',
                       f'lens-fcos-onestage-multi-fusion-mining_{_FULL}_'
                       f'{_MULTI}'),
    'fcos': ('FCOS, two stages',
             f'lens-fcos-multi-fusion-mining_{_FULL}_{_MULTI}'),
    'afp': ('AFP, two stages (Table I row (d))', _LENS['d'][1]),
}


def _lens_table2(ctx, key, seed):
    """Table II: Sec. III steps 1-3 as for row (d), then row (d)'s training
    with each proposal network; AFP is row (d) itself."""
    label, stem = _T2[key]
    if key == 'afp':
        return _table1_row(ctx, 'd', key, label, seed)
    return _mined_row(ctx, key, label, stem, seed)


# -------------------------------------------------------------- Table III
#: row -> (label, config stem, mining strategies; None: no mining). Each
#: row adds one step to the row before: "trained LENS on DeepLesion alone"
_T3 = {
    'no_mining': ('No mining (Table I row (a))', _LENS['a'][1], None),
    'cross_slice': ('+ Cross-slice',
                    f'lens-afp-mining-propagation_{_FULL}_deeplesion-9slice',
                    ('propagation', )),
    'intra_patient': ('+ Intra-patient',
                      f'lens-afp-mining-propagation-intrapatient_{_FULL}_'
                      'deeplesion-9slice', ('propagation', 'intra_patient')),
    'cross_dataset': ('+ Cross-dataset',
                      f'lens-afp-mining-lesion-slices_{_FULL}_'
                      'deeplesion-9slice', STRATEGIES),
    'unlabeled': ('+ Unlabeled',
                  f'lens-afp-mining_{_FULL}_deeplesion-9slice', STRATEGIES),
}


def _counts_stage(ctx: PlanContext, config: str, metrics: str,
                  options: Sequence[str]) -> Tuple[Stage, str]:
    """What the row trained on, counted as Table III counts it, added to
    its 3D metrics (``lens_training_counts.py``); returns the stage and
    the row's metrics file."""
    out = osp.join(osp.dirname(metrics), 'metrics_with_training_counts.json')
    return Stage('training_counts', [
        ctx.python, 'tools/analysis_tools/lens_training_counts.py', config,
        '--metrics', metrics, '--out', out, '--overwrite'
    ] + ctx.options(config, *options), outputs=[out]), out


def _lens_table3(ctx, key, seed):
    """Table III: row (a)'s model on DeepLesion alone, with the mined
    annotations of each strategy set (mined with the row (c) model, as for
    row (d)), then what it trained on counted."""
    label, stem, strategies = _T3[key]
    config = _config(stem)
    if strategies is None:
        row = _table1_row(ctx, 'a', key, label, seed)
        options = _lens_roots(ctx, config)
    else:
        row = _mined_row(ctx, key, label, stem, seed, strategies)
        _, mined = _mining(ctx, seed, strategies)  # the file it trained on
        options = _mined_options(ctx, config, mined)
    counts, metrics = _counts_stage(ctx, config, row.metrics_file, options)
    return replace(row, stages=row.stages + [counts], metrics_file=metrics)


# --------------------------------------------------------------- Table IV
#: row -> (label, config stem; None: quoted), "They all used the same
#: backbone and AFP"
_T4 = {
    'single': ('Single dataset (Table I row (a))', _LENS['a'][1]),
    'pooling': ('Data pooling [31]',
                f'lens-afp-pooled_{_FULL}_{_MULTI}'),
    'positive_pooling': ('Positive data pooling',
                         f'lens-afp-pooled-positive_{_FULL}_{_MULTI}'),
    'separate': ('Separate models', f'lens-afp-separate_{_FULL}_{_MULTI}'),
    'proposed': ('Proposed (Table I row (d))', _LENS['d'][1]),
    'uncertain_as_gt': ('Ignored as GT',
                        f'lens-afp-multi-fusion-mining-uncertain-gt_{_FULL}_'
                        f'{_MULTI}'),
    'domain_adapt': ('Proposed + domain adapt. [23] (quoted from the '
                     'paper, not run: domain attention is not in mmlesion)',
                     None),
}


def _lens_table4(ctx, key, seed):
    """Table IV: single dataset and proposed are Table I's (a) and (d);
    the pools and the separate models train on the four exported sets
    without mining, "Ignored as GT" on row (d)'s mined file."""
    label, stem = _T4[key]
    if stem is None:
        return Row(key, label, LENS_DOMAIN_ADAPT, [], '', {}, seed)
    if key in ('single', 'proposed'):
        return _table1_row(ctx, 'a' if key == 'single' else 'd', key, label,
                           seed)
    if key == 'uncertain_as_gt':
        return _mined_row(ctx, key, label, stem, seed)
    config = _config(stem)
    train, work = train_stage(ctx, Training(
        config, seed, options=_lens_roots(ctx, config)))
    ev, metrics = _lens_eval(ctx, config, work, key)
    return Row(key, label, stem, _lens_exports(ctx) + [train, ev], metrics,
               lens_row_map(), seed)


def _columns(*extra: str) -> MetricMap:
    """A table's columns: the 3D FROC and the paper keys ``extra``."""
    full = lens_row_map()
    return dict(lens_map(), **{k: full[k] for k in extra})


#: table -> (row builder, the columns it prints, FROC picture rates, LUNA16
#: folds)
LENS_BUILDERS = {
    f'lens/table{n}': (build, columns, LENS_RATES, False)
    for n, build, columns in (
        (1, _lens_table1, lens_map()),
        (2, _lens_table2, _columns('lens/infer_ms')),
        (3, _lens_table3, _columns(*COUNT_COLUMNS)),
        (4, _lens_table4, _columns('lens/infer_time_x', 'lens/model_size_x')))}

#: each table's title and rows, in the paper's order
TABLE_INDEX = {
    'lens/table1': {
        'title': ('LENS Table I: DeepLesion manual 1K 3D test set, '
                  'sensitivity at 1/8..8 FPs per sub-volume'),
        'rows': ['baseline', 'a', 'b', 'c', 'd', 'e'],
    },
    'lens/table2': {
        'title': ('LENS Table II: proposal networks in row (d) (RPN, '
                  'CenterNet, FCOS in two stages and one, AFP), average '
                  'sensitivity on the manual 1K 3D test set; inference ms '
                  'per slice quoted'),
        'rows': ['rpn', 'centernet', 'fcos_one_stage', 'fcos', 'afp'],
    },
    'lens/table3': {
        'title': ('LENS Table III: the mining strategies on DeepLesion '
                  'alone, average sensitivity (manual 1K 3D test set) and '
                  'what each trains on (3D and 2D GT, 2D uncertain, slices; '
                  'thousands)'),
        'rows': ['no_mining', 'cross_slice', 'intra_patient',
                 'cross_dataset', 'unlabeled'],
    },
    'lens/table4': {
        'title': ('LENS Table IV: ways to combine the datasets, average '
                  'sensitivity (manual 1K 3D test set); time and size '
                  'quoted; domain adaptation quoted, not run'),
        'rows': ['single', 'pooling', 'positive_pooling', 'separate',
                 'proposed', 'uncertain_as_gt', 'domain_adapt'],
    },
}

#: benchmark_lens.py: 28.7 ms per 9-slice image with 4 experts, inference;
#: training taken as 3.03x, the ratio benchmark_elixirnet.py measured for
#: Faster R-CNN (50.9 / 16.8)
_DETECTOR_STEP = 0.0287 * 3.03


def _data_folders(table: str, ctx) -> list:
    """DeepLesion, the other releases beside it and their exports."""
    return [v for k, v in lens_data(ctx).items() if k != 'ann_3d']


#: LENS's part of the paper harness
PAPER_TABLES.register(PaperTables(
    name='lens',
    tables=table_specs(__file__, LENS_BUILDERS, TABLE_INDEX),
    paper_results=PAPER_RESULTS,
    config_prefixes=('lens', 'mulan'),
    quoted_models=(LENS_DOMAIN_ADAPT, ),
    variants=VARIANTS,
    printed=PRINTED,
    gains=GAINS,
    result_columns=RESULT_COLUMNS,
    result_rows=RESULT_ROWS,
    # the 2.5D detectors (MULAN baseline too); the 3D FPR network per
    # 8 x 64 x 64 patch: 0.8 ms, timed by ``tools/reproduce.py
    # lens/table1 --dry-run --time-iters 5`` on one H100 80GB (batch 32
    # patches, fp32)
    step_times={'lens': _DETECTOR_STEP, 'mulan': _DETECTOR_STEP,
                'lens-fpr': 0.0008},
    training_items={'deeplesion-fpr': fpr_patches},
    training_inputs={'LENSFPR': patch_input},
    synthetic_batches={'patch': patch_batch},
    data_folders=_data_folders))
