# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN's tables for ``tools/reproduce.py``: the
rows as stages, the commands of ``configs/aggregated3d/README.md`` (what
each table runs: docs/reproduce.md).
"""
import os.path as osp
from dataclasses import replace
from functools import lru_cache
from typing import Dict, List, Tuple

from mmlesion.apps.reproduce.estimate import (LUNA16_ITEMS_PER_EPOCH,
                                              round_hours, training_gpu_hours)
from mmlesion.apps.reproduce.execute import (LUNA16_RATES, config_data_paths,
                                             config_epochs, luna16_map,
                                             root_options, trained_epochs)
from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES, PaperTables
from mmlesion.apps.reproduce.plan import PlanContext, Row, Stage, parsed_config
from mmlesion.apps.reproduce.row_stages import config_stem as _stem
from mmlesion.apps.reproduce.row_stages import device_option as _device
from mmlesion.apps.reproduce.row_stages import test_stage as _test
from mmlesion.apps.reproduce.row_stages import Training, train_stage
from mmlesion.apps.reproduce.table_index import table_specs
from .paper import (A3D_3DCE, A3D_DEEPLESION_RATES, A3D_DUALPATH, A3D_RES18,
                    A3D_RESBLOCK, A3D_RESBLOCK_ABS, MERGED_MODELS,
                    PAPER_RESULTS, PRINTED, QUOTED_MODELS, RESULT_ROWS,
                    TNP_SUFFIX, VARIANTS, a3d_deeplesion_keys)
from .step_time import crop_batch, crop_input

A3 = 'configs/aggregated3d'


#: the 0.269 cut's effect on a LUNA16 row (``tools/luna16_cv.py`` tests
#: without it and applies it afterwards: ``eval/metrics.json``'s
#: ``score_cut``): candidates per scan with and without it, and the FROC
#: without it (the table's CPM and sensitivities are with it, the paper's
#: setting); the paper prints none of them
A3D_LUNA16_CUT_MAP = {
    'luna16/candidates_per_scan': ('score_cut/with_cut/candidates_per_scan',
                                   1.),
    'luna16/candidates_per_scan_uncut': (
        'score_cut/without_cut/candidates_per_scan', 1.),
    'luna16/cpm_uncut': ('score_cut/without_cut/cpm', 1.),
    'luna16/sens@8_uncut': ('score_cut/without_cut/sensitivity_at/8', 100.),
}
#: Fig. 4c's TNP with the cut (the paper's setting) and without it; where
#: a run's sensitivity never reaches the paper's 0.95 (a tiny model), its
#: TNP at the highest sensitivity it reaches, in columns of their own with
#: that sensitivity beside it (``@max_sens``: never the paper's column)
A3D_TNP_MAP = {
    'luna16/tnp': ('tnp/tnp', 1.),
    'luna16/tnp_uncut': ('score_cut/without_cut/tnp', 1.),
    'luna16/tnp@max_sens': ('tnp/at_highest_sensitivity/tnp', 1.),
    'luna16/max_sens': ('tnp/at_highest_sensitivity/sensitivity', 1.),
    'luna16/tnp_uncut@max_sens': (
        'score_cut/without_cut/tnp_at_highest_sensitivity/tnp', 1.),
    'luna16/max_sens_uncut': (
        'score_cut/without_cut/tnp_at_highest_sensitivity/sensitivity', 1.),
}


def a3d_luna16_map() -> Dict[str, Tuple[str, float]]:
    """Tables II and III: LUNA16's CPM and sensitivities (with the
    configs' RPN score cut), then the cut's columns
    (:data:`A3D_LUNA16_CUT_MAP`; none for a merged row, whose pooled
    candidates are already cut)."""
    return {**luna16_map(), **A3D_LUNA16_CUT_MAP}


def _luna(ctx: PlanContext) -> Dict[str, str]:
    root = ctx.data_root or 'data/LUNA16'
    return dict(annotations=osp.join(root, 'annotations.csv'),
                excluded=osp.join(root, 'annotations_excluded.csv'),
                seriesuids=osp.join(root, 'seriesuids.csv'))


def _folds(ctx: PlanContext) -> List[int]:
    return list(ctx.folds) if ctx.folds is not None else list(range(10))


def _luna_root_options(ctx: PlanContext, config: str) -> List[str]:
    """The config's LUNA16 paths moved to ``--data-root`` key by key
    (``tools/luna16_cv.py`` does not move them with ``data_root=``)."""
    return root_options(config, [('data/LUNA16/', ctx.data_root)]
                        ) if ctx.data_root else []


def _cv(ctx, config, seed, *, stage_checkpoint=None, name='cv',
        extra=()) -> Tuple[Stage, str]:
    """``tools/luna16_cv.py``: every fold trained and tested, the held-out
    candidates pooled into one FROC."""
    work = osp.join(ctx.work_dir, f'{_stem(config)}_cv', f'seed_{seed}')
    luna = _luna(ctx)
    cmd = [ctx.python, 'tools/luna16_cv.py', config, '--work-dir', work,
           '--annotations', luna['annotations'], '--excluded',
           luna['excluded'], '--folds', *map(str, _folds(ctx))]
    if stage_checkpoint:
        cmd += ['--stage-checkpoint', stage_checkpoint]
    cmd += ctx.options(config, f'randomness.seed={seed}',
                       *_luna_root_options(ctx, config), *extra)
    family = 'rpn3d' if 'rpn3d' in config else 'aggregated3d'
    hours = len(_folds(ctx)) * training_gpu_hours(
        f'{family}.py', config_epochs(config), LUNA16_ITEMS_PER_EPOCH)
    stage = Stage(name, cmd,
                  outputs=[osp.join(work, 'eval', 'metrics.json')],
                  gpu_hours=round_hours(hours), gpus=1)
    return stage, work


#: the LUNA16 configs' network, anchors and schedule (50 epochs; the ABS
#: rounds 30)
_L50 = '_denseunet3d_anchor1_4xb2-50e_luna16'
_L30 = '_denseunet3d_anchor1_4xb2-30e_luna16'
_A2 = {
    'a': 'rpn3d-ohem-single-scale' + _L50,
    'b': 'rpn3d-focal-single-scale' + _L50,
    'c': 'rpn3d-ohem' + _L50,
    'd': 'rpn3d-focal' + _L50,
    'e': 'rpn3d-focal_denseunet3d_anchor2_4xb2-50e_luna16',
}
#: the other papers' rows of Tables II, IV, V and VI, quoted (never run)
_A_QUOTED = {'3dce': ('3DCE, 27 slices [7] (quoted from the paper, 2D '
                      'criterion; not run)', A3D_3DCE),
             'res18': ('Res18 [10] (quoted, not run)', A3D_RES18),
             'dualpath': ('DualPath [10] (quoted, not run)', A3D_DUALPATH),
             'resblock': ('ResBlock [11] (quoted, not run)', A3D_RESBLOCK),
             'resblock_abs': ('ResBlock† [11] (quoted, not run)',
                              A3D_RESBLOCK_ABS)}


def _quoted(key: str, seed: int) -> Row:
    label, model = _A_QUOTED[key]
    return Row(key, label, model, [], '', {}, seed)


def _a3d_table2(ctx, key, seed):
    """Table II: the RPN variants, 10 folds pooled into one FROC. Each is
    an RPN stage, named as Table III names its own (row d is that stage:
    in one work dir it runs once for both tables); row f is row d's ABS
    round (:func:`_a3d_abs_row`, the RPN† the merged and TNP rows build
    on); the other papers' rows are quoted."""
    if key in _A_QUOTED:
        return _quoted(key, seed)
    if key == 'f':
        return _a3d_abs_row(ctx, 'f', seed)
    config = f'{A3}/{_A2[key]}.py'
    stage, work = _cv(ctx, config, seed, name='cv_rpn_stage')
    return Row(key, f'Table II row {key}', _A2[key], [stage],
               osp.join(work, 'eval', 'metrics.json'), a3d_luna16_map(),
               seed)


_RPN = f'{A3}/{_A2["d"]}.py'
_A3 = {
    'crop96_da': ('Crop 96, DA, Joint',
                  'aggregated3d-wo-magnify' + _L50 + '-crop96'),
    'crop96_da_magnify': ('Crop 96, DA, Magnify, Joint',
                          'aggregated3d' + _L50 + '-crop96'),
    'alternating': ('Crop 96, DA, Magnify, Alternating',
                    'aggregated3d-alternating' + _L50),
    '3dag_lm': ('3D-AG-LM (Crop 128, DA, Joint)',
                'aggregated3d-wo-magnify' + _L50),
    '3dag': ('3D-AG (Crop 128, DA, Magnify, Joint)', 'aggregated3d' + _L50),
}
#: † rows (Table II row f and Table III's): round-1 config -> ABS round-2
#: config (README's pairs)
_A3_ABS = {
    'f': ('Table II row f', _A2['d'], 'rpn3d-focal-abs' + _L30),
    'wo_da_abs': ('Crop 128†, Joint, no DA (ABS)',
                  'aggregated3d-wo-da' + _L50,
                  'aggregated3d-wo-da-abs' + _L30),
    '3dag_lm_abs': ('3D-AG-LM† (ABS)', _A3['3dag_lm'][1],
                    'aggregated3d-wo-magnify-abs' + _L30),
    '3dag_abs': ('3D-AG† (ABS)', _A3['3dag'][1], 'aggregated3d-abs' + _L30),
}


def _rpn_stage(ctx, seed) -> Tuple[Stage, str, str]:
    """Table II row d, the first stage of every second stage: its cv stage,
    work dir and per-fold last checkpoint (``{fold}``)."""
    rpn, rpn_work = _cv(ctx, _RPN, seed, name='cv_rpn_stage')
    return rpn, rpn_work, osp.join(rpn_work, 'fold{fold}',
                                   f'epoch_{trained_epochs(ctx, _RPN)}.pth')


def _a3d_abs_row(ctx, key, seed) -> Row:
    """A † row: per fold round 1 (the RPN stage itself for Table II row f,
    else a second stage from it in this seed's folder) and its hard
    regions, then round 2 from them (``cv_abs``)."""
    rpn, rpn_work, stage_ckpt = _rpn_stage(ctx, seed)
    label, r1, abs_stem = _A3_ABS[key]
    r1_cfg, abs_cfg = f'{A3}/{r1}.py', f'{A3}/{abs_stem}.py'
    r1_ckpt = f'epoch_{trained_epochs(ctx, r1_cfg)}.pth'
    # round 1 per seed in the table's folder (the RPN's: its stage)
    r1_root = rpn_work if r1 == _A2['d'] else osp.join(
        ctx.work_dir, f'{r1}_round1', f'seed_{seed}')
    stages = [rpn]
    for k in _folds(ctx):
        r1_work = osp.join(r1_root, f'fold{k}')
        if r1 != _A2['d']:  # a second stage: from this seed's RPN
            stages.append(Stage(
                f'round1_fold{k}', ctx.launcher('tools/train.py') + [
                    r1_cfg, '--fold', str(k), '--work-dir', r1_work,
                    '--resume'
                ] + ctx.options(r1_cfg, f'randomness.seed={seed}',
                                f'load_from={stage_ckpt.format(fold=k)}',
                                *_luna_root_options(ctx, r1_cfg)),
                outputs=[osp.join(r1_work, 'last_checkpoint')],
                gpu_hours=round_hours(training_gpu_hours(
                    'aggregated3d.py', config_epochs(r1_cfg),
                    LUNA16_ITEMS_PER_EPOCH)),
                gpus=max(ctx.gpus, 1)))
        regions = osp.join(r1_work, f'hard_regions_fold{k}.json')
        stages.append(Stage(f'hard_regions_fold{k}', [
            ctx.python, 'tools/analysis_tools/find_hard_regions.py',
            r1_cfg, osp.join(r1_work, r1_ckpt), '--fold', str(k), '--out',
            regions, '--overwrite', *_device(ctx)
        ] + ctx.options(r1_cfg, *_luna_root_options(ctx, r1_cfg)),
                            outputs=[regions], gpus=min(ctx.gpus, 1)))
    # round 2 from round 1 of the same fold, on its hard regions (the
    # fold0 of these paths becomes each fold in luna16_cv)
    regions = osp.join(r1_root, 'fold0', 'hard_regions_fold0.json')
    cv, work = _cv(ctx, abs_cfg, seed, name='cv_abs',
                   stage_checkpoint=osp.join(r1_root, 'fold{fold}', r1_ckpt),
                   extra=[f'{k}={regions}'
                          for k, _ in config_data_paths(abs_cfg)
                          if k.startswith('train_dataloader.')
                          and k.endswith('.hard_regions_file')])
    return Row(key, label, abs_stem, stages + [cv],
               osp.join(work, 'eval', 'metrics.json'), a3d_luna16_map(),
               seed)


def _a3d_merged_row(ctx, mode, seed) -> Row:
    """A merged row: the pooled candidates of 3D-AG-LM† and 3D-AG†
    (``merge_luna16_candidates.py --mode intersection|union``), scored on
    the scans of the folds run."""
    parts = [_a3d_abs_row(ctx, k, seed) for k in ('3dag_lm_abs', '3dag_abs')]
    stages = list(parts[0].stages) + [
        s for s in parts[1].stages
        if s.name.startswith(('round1', 'hard', 'cv_abs'))]
    out = osp.join(ctx.work_dir, f'merged_{mode}', f'seed_{seed}')
    cands = [osp.normpath(osp.join(osp.dirname(p.metrics_file), '..',
                                   'candidates.csv')) for p in parts]
    luna = _luna(ctx)
    stages.append(Stage('merge', [
        ctx.python, 'tools/analysis_tools/merge_luna16_candidates.py',
        *cands, '--mode', mode, '--out', osp.join(out, 'candidates.csv'),
        '--overwrite'
    ], outputs=[osp.join(out, 'candidates.csv')]))
    # the scans of the folds run (luna16_cv's pooled list), not all 888
    scans = osp.join(osp.dirname(cands[0]), 'seriesuids.csv')
    stages.append(Stage('eval', [
        ctx.python, 'tools/analysis_tools/eval_luna16.py', '--candidates',
        osp.join(out, 'candidates.csv'), '--annotations',
        luna['annotations'], '--excluded', luna['excluded'], '--seriesuids',
        scans, '--out-dir', osp.join(out, 'luna16'), '--overwrite'
    ], outputs=[osp.join(out, 'luna16', 'metrics.json')]))
    return Row(f'merged_{mode}',
               f'Merged ({mode.capitalize()}) 3D-AG-LM† and 3D-AG†',
               f'aggregated3d-merged-{mode}', stages,
               osp.join(out, 'luna16', 'metrics.json'), luna16_map(), seed)


def _a3d_table3(ctx, key, seed):
    """Table III: the second stage of every row starts from Table II row d
    (10 folds); the † rows add the ABS round (:func:`_a3d_abs_row`); the
    merged rows pool two † rows' candidates (:func:`_a3d_merged_row`)."""
    if key in _A3_ABS:
        return _a3d_abs_row(ctx, key, seed)
    if key.startswith('merged_'):
        return _a3d_merged_row(ctx, key.split('_', 1)[1], seed)
    rpn, _, stage_ckpt = _rpn_stage(ctx, seed)
    label, stem = _A3[key]
    cv, work = _cv(ctx, f'{A3}/{stem}.py', seed, stage_checkpoint=stage_ckpt)
    return Row(key, label, stem, [rpn, cv],
               osp.join(work, 'eval', 'metrics.json'), a3d_luna16_map(),
               seed)


def _a3d_table4(ctx, key, seed):
    """Table IV: the single-model solutions; 3D-AG (Ours) is Table III's
    3D-AG-LM† row (its 0.939; README), the others are quoted."""
    if key in _A_QUOTED:
        return _quoted(key, seed)
    return replace(_a3d_abs_row(ctx, '3dag_lm_abs', seed), key=key,
                   label="3D-AG (Ours): Table III's 3D-AG-LM†")


#: Fig. 4c: row -> the row of Tables II / III whose run it scores
_A_TNP = {'rpn': ('Baseline RPN (Table II row f)', 'f'),
          'merged_union': ('Merged (Union)', 'merged_union'),
          '3dag': ('3D-AG (3D-AG†)', '3dag_abs'),
          '3dag_lm': ('3D-AG-LM (3D-AG-LM†)', '3dag_lm_abs'),
          'merged_intersection': ('Merged (Intersection)',
                                  'merged_intersection')}


def _a3d_tnp(ctx, key, seed):
    """Fig. 4c: the TNP (true negative patients at the 0.95-sensitivity
    threshold, ``eval_luna16``'s ``tnp``) of the rows the merged rows pool
    and of the merged rows themselves, read from those rows' runs (the
    same stages: nothing runs twice)."""
    label, source = _A_TNP[key]
    row = _a3d_table3(ctx, source, seed)
    return replace(row, key=key, label=label, metric_map=dict(A3D_TNP_MAP),
                   paper_key=row.model + TNP_SUFFIX)


#: Tables V and VI (DeepLesion as 3D): row -> (label, trained config, the
#: config its test runs: the "*" rows test the same training without the
#: lesions >= 48 mm)
_A56_RPN = 'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d'
_A56_3DAG = 'aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d'
_A56 = {
    'rpn': ('RPN Baseline', _A56_RPN, _A56_RPN),
    '3dag': ('3D-AG', _A56_3DAG, _A56_3DAG),
    'rpn_lt48mm': ('RPN Baseline *', _A56_RPN, _A56_RPN + '-lt48mm'),
    '3dag_lt48mm': ('3D-AG *', _A56_3DAG, _A56_3DAG + '-lt48mm'),
}
#: training lesions of the official split as the paper counts them (Sec.
#: V): an upper bound of the training chunks when DL_info.csv is not here
A3D_DEEPLESION_TRAIN_LESIONS = 22901


def deeplesion3d_data(ctx: PlanContext) -> Dict[str, str]:
    """Where Tables V and VI read DeepLesion: the release at
    ``--data-root`` (default ``data/DeepLesion``), its 3D chunks written
    beside it into ``DeepLesion3D/`` (the configs' ``data/DeepLesion3D/``
    for the default)."""
    release = ctx.data_root or 'data/DeepLesion'
    return dict(release=release, chunks=osp.join(
        osp.dirname(osp.normpath(release)), 'DeepLesion3D'))


@lru_cache(maxsize=None)
def _deeplesion3d_training_chunks(release: str) -> int:
    """Training chunks with a lesion (one crop each per epoch) counted in
    the release's DL_info.csv with the converter's rules, else
    :data:`A3D_DEEPLESION_TRAIN_LESIONS`."""
    path = osp.join(release, 'DL_info.csv')
    if not osp.isfile(path):
        return A3D_DEEPLESION_TRAIN_LESIONS
    from mmlesion.datasets.deeplesion.as_3d import deeplesion_to_3d
    from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
    chunks = deeplesion_to_3d(parse_dl_info(path))
    return sum(1 for lesions in chunks.values() if any(
        les.split == 1 and not les.ignore for les in lesions)) or 1


#: the columns of the RPN score cut's effect (``LUNA16Metric``'s
#: ``rpn_score_cut``): candidates per chunk with and without it, the FROC
#: score and Avg. without it (the paper prints none of them)
A3D_SCORE_CUT_KEYS = ('luna16/candidates_per_scan',
                      'luna16/candidates_per_scan_uncut', 'luna16/cpm_uncut',
                      'luna16/mean@0.5-16_uncut')


def _a3d_deeplesion_map() -> Dict[str, Tuple[str, float]]:
    """Tables V and VI: paper keys = ``LUNA16Metric`` keys (sensitivities
    in percent, the FROC score and candidate counts as they are), then the
    score cut's columns."""
    return {k: (k, 100. if '/sens@' in k or '/mean@' in k else 1.)
            for k in a3d_deeplesion_keys() + A3D_SCORE_CUT_KEYS}


def _score_cut_options(config: str) -> List[str]:
    """The test of a paper row run without the config's RPN score cut
    (0.269), which its evaluator applies instead: one run, evaluated with
    and without it (``LUNA16Metric``'s ``rpn_score_cut``)."""
    cut = parsed_config(config).model.test_cfg.rpn.score_thr
    return ['model.test_cfg.rpn.score_thr=0',
            f'test_evaluator.rpn_score_cut={cut}']


def _a3d_table5_6(ctx, key, seed):
    """Tables V and VI: DeepLesion converted to 3D chunks (Sec. V-A), the
    RPN stage from scratch, 3D-AG from its last epoch (Sec. III-E), each
    tested on the test chunks with LUNA16's hit rule and broken down by
    lesion type and size; a "*" row tests the same checkpoint without the
    lesions >= 48 mm. 3DCE (another paper's 2D detector) is quoted."""
    if key in _A_QUOTED:
        return _quoted(key, seed)
    label, trained, tested = _A56[key]
    where = deeplesion3d_data(ctx)
    release, chunks = where['release'], where['chunks']
    # the configs read the chunks: data_root moves every dataset path
    ctx3 = replace(ctx, data_root=chunks.rstrip('/') + '/') \
        if ctx.data_root else ctx
    convert = Stage('convert_deeplesion3d', [
        ctx.python, 'tools/dataset_converters/deeplesion_to_3d.py',
        osp.join(release, 'DL_info.csv'), osp.join(release, 'Images_png'),
        chunks, '--overwrite'
    ], outputs=[chunks] + [osp.join(chunks, f'deeplesion3d_{s}.json')
                           for s in ('train', 'val', 'test')])
    items = _deeplesion3d_training_chunks(release)
    rpn_cfg = f'{A3}/{_A56_RPN}.py'
    stages = [convert]
    train, work = train_stage(ctx3, Training(rpn_cfg, seed,
                                             name='train_rpn'))
    train.gpu_hours = round_hours(training_gpu_hours(
        rpn_cfg, config_epochs(rpn_cfg), items))
    stages.append(train)
    if trained == _A56_3DAG:  # the second stage, from the RPN stage
        cfg = f'{A3}/{_A56_3DAG}.py'
        start = osp.join(work,
                         f'epoch_{trained_epochs(ctx3, rpn_cfg)}.pth')
        train, work = train_stage(ctx3, Training(
            cfg, seed, options=(f'load_from={start}', ), name='train_3dag'))
        train.gpu_hours = round_hours(training_gpu_hours(
            cfg, config_epochs(cfg), items))
        stages.append(train)
    tag = 'lt48mm' if tested.endswith('-lt48mm') else 'all'
    test, metrics = _test(ctx3, f'{A3}/{tested}.py', work, tag,
                          *_score_cut_options(f'{A3}/{tested}.py'))
    return Row(key, label, tested, stages + [test], metrics,
               _a3d_deeplesion_map(), seed)


A3D_BUILDERS = {
    f'aggregated3d/{name}': builder for name, builder in (
        ('table2', (_a3d_table2, a3d_luna16_map(), LUNA16_RATES, True)),
        ('table3', (_a3d_table3, a3d_luna16_map(), LUNA16_RATES, True)),
        ('table4', (_a3d_table4, {'luna16/cpm': ('cpm', 1.)}, (), True)),
        ('tnp', (_a3d_tnp, A3D_TNP_MAP, (), True)),
        ('table5-6', (_a3d_table5_6, _a3d_deeplesion_map(),
                      A3D_DEEPLESION_RATES, False)))}

#: each table's title and rows, in the paper's order
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

_DATA_ROOT = 'data/LUNA16'


def _data_folders(table: str, ctx) -> list:
    """Tables V/VI read DeepLesion and its 3D chunks; the others LUNA16."""
    if table == 'aggregated3d/table5-6':
        return list(deeplesion3d_data(ctx).values())
    return [ctx.data_root or _DATA_ROOT]


#: The 3D Aggregated Faster R-CNN's part of the paper harness
PAPER_TABLES.register(PaperTables(
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
        'aggregated3d': f'{A3}/aggregated3d_denseunet3d_anchor1_4xb2-'
        '50e_luna16.py',
        'rpn3d': f'{A3}/rpn3d-focal_denseunet3d_anchor1_4xb2-50e_'
        'luna16.py',
    },
    training_inputs={'AggregatedFasterRCNN3D': crop_input},
    synthetic_batches={'3d': crop_batch},
    data_root=_DATA_ROOT,
    data_folders=_data_folders))
