# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper tables ``tools/reproduce.py`` knows, as rows of stages.

Each row is the full-size config with the paper's schedule and the
pre-steps the method documents (the DE anchor search on the validation
split, the ALB search, LENS's exports, mining and FPR proposals, the ABS
round's hard regions), written as the commands of the method READMEs. The
paper's numbers are not here: they are in :mod:`.paper_results` (and in
each method README's paper column).
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

from .estimate import (LUNA16_ITEMS_PER_EPOCH, round_hours,
                       training_gpu_hours, training_items)
from .execute import (FROC_RATES, LENS_RATES, LUNA16_RATES,
                      config_data_paths, config_epochs, froc_map, lens_map,
                      luna16_map, root_options, trained_epochs)
from .plan import PlanContext, Row, Stage, TableSpec
from .table_index import TABLE_INDEX

E, R, A3, L = ('configs/elixirnet', 'configs/retinanet_lesion',
               'configs/aggregated3d', 'configs/lens')


def _stem(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def _train(ctx: PlanContext, config: str, seed: int, dataset: str,
           *extra: str, name: str = 'train',
           schedule_of: Optional[str] = None) -> Tuple[Stage, str]:
    """A training of ``config`` (resumed from its newest checkpoint when
    run again) in ``<work>/<stem>/seed_<seed>``; returns the stage and its
    work dir. ``schedule_of``: the config whose epochs the estimate uses
    when ``config`` is written by an earlier stage."""
    work = osp.join(ctx.work_dir, _stem(config), f'seed_{seed}')
    epochs = config_epochs(schedule_of or config)
    stage = Stage(
        name, ctx.launcher('tools/train.py') +
        [config, '--work-dir', work, '--resume'] +
        ctx.options(f'randomness.seed={seed}', *extra),
        outputs=[osp.join(work, 'last_checkpoint')],
        gpu_hours=round_hours(training_gpu_hours(
            schedule_of or config, epochs,
            training_items(ctx.data_root, dataset))),
        gpus=max(ctx.gpus, 1))
    return stage, work


def _test(ctx: PlanContext, config: str, work: str, tag: str,
          *extra: str, checkpoint: str = 'last') -> Tuple[Stage, str]:
    """The test of the newest checkpoint of ``work`` (``@last:``), or with
    ``checkpoint='best'`` of the one its checkpoint hook kept as the best on
    validation (``@best:``), resolved when the stage runs; returns the stage
    and its metrics."""
    metrics = osp.join(work, f'metrics_{tag}.json')
    stage = Stage(
        f'test_{tag}', ctx.launcher('tools/test.py') +
        [config, f'@{checkpoint}:{work}', '--work-dir',
         osp.join(work, f'test_{tag}'), '--metrics-out', metrics] +
        ctx.options(*extra),
        outputs=[metrics], gpus=max(ctx.gpus, 1))
    return stage, metrics


def _train_test_row(ctx, key, label, config, seed, dataset='deeplesion',
                    test_extra=(), train_extra=(), pre=(), model=None,
                    tag='iou', schedule_of=None, checkpoint='last') -> Row:
    train, work = _train(ctx, config, seed, dataset, *train_extra,
                         schedule_of=schedule_of)
    test, metrics = _test(ctx, config, work, tag, *test_extra,
                          checkpoint=checkpoint)
    return Row(key, label, model or _stem(config),
               list(pre) + [train, test], metrics, froc_map(), seed)


# --------------------------------------------------------------- ElixirNet
_T5 = {
    'fpn': ('FPN', 'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'trpn': ('+ TRPN (auxiliary location loss, our variant)',
             'elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'trpn_noaux': ('+ TRPN (paper-pure Eq. 1)',
                   'elixirnet-trpn-noaux_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'alb': ('+ ALB (Fig. 3 genotype)',
            'elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'alb_rtm': ('+ ALB + RTM',
                'elixirnet-alb-rtm-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'focal_rpn': ('+ focal-loss RPN (instead of TRPN)',
                  'elixirnet-rpnfocal_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'trpn_alb': ('+ TRPN + ALB',
                 'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'elixirnet': ('ElixirNet (TRPN + ALB + RTM)',
                  'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'elixirnet_9slice': ('ElixirNet, 9 slices',
                         'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice'),
}


def _table5(ctx, key, seed):
    label, stem = _T5[key]
    return _train_test_row(ctx, key, label, f'{E}/{stem}.py', seed)


_T2 = {
    'fpn': ('FPN', 'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'deformv2': ('Deformv2',
                 'faster-rcnn_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice'),
    'elixirnet_fpn': ('ElixirNet w FPN',
                      'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'elixirnet_deformv2': ('ElixirNet w Deformv2',
                           'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_'
                           'deeplesion-3slice'),
}


def _table2(ctx, key, seed):
    """Table 2: the Table 1 models tested with IoBB (and IoU) overlap."""
    base, overlap = key.rsplit('_', 1)
    label, stem = _T2[base]
    config = f'{E}/{stem}.py'
    train, work = _train(ctx, config, seed, 'deeplesion')
    test, metrics = _test(ctx, config, work, overlap,
                          f'test_evaluator.overlap={overlap}')
    # the paper reports the IoU numbers (Table 1)
    return Row(key, f'{label}, {overlap.upper()}', stem, [train, test],
               metrics, froc_map() if overlap == 'iou' else {}, seed)


_T3 = {
    'fpn': ('FPN', 'faster-rcnn_r50_fpn_4xb2-1x_kits19-3slice'),
    'deformv2': ('Deformv2', 'faster-rcnn_r50-dcnv2_fpn_4xb2-1x_kits19-3slice'),
    'elixirnet_fpn': ('ElixirNet w FPN',
                      'elixirnet-fig3geno_r50_fpn_4xb2-1x_kits19-3slice'),
    'elixirnet_deformv2': ('ElixirNet w Deformv2',
                           'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_kits19-'
                           '3slice'),
}


def _table3(ctx, key, seed):
    label, stem = _T3[key]
    kits = ctx.data_root or 'data/kits19_2d'  # the release beside it
    src = osp.join(osp.dirname(osp.normpath(kits)), 'kits19')
    export = Stage('export_kits19', [
        ctx.python, 'tools/dataset_converters/kits19.py', f'{src}/data',
        '--out', f'{src}/kits19_volumes.json', '--export-2d', kits,
        '--val-fraction', '0', '--test-fraction', '0.2', '--key-slices',
        'every', '--num-slices', '3', '--negatives-per-key', '0',
        '--overwrite'], outputs=[osp.join(kits, 'DL_info.csv')])
    return _train_test_row(ctx, key, label, f'{E}/{stem}.py', seed, 'kits19',
                           pre=[export])


_T4 = {
    'fpn_ft': ('FPN w finetune',
               'faster-rcnn_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype',
               'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'elixirnet_wo_rtm': ('ElixirNet w/o RTM',
                         'elixirnet-wo-rtm-fig3geno_r50_fpn_4xb2-ft-6e_'
                         'deeplesion-3slice-multitype',
                         'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_'
                         'deeplesion-3slice'),
    'elixirnet': ('ElixirNet', 'elixirnet-fig3geno_r50_fpn_4xb2-ft-6e_'
                  'deeplesion-3slice-multitype',
                  'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_'
                  'deeplesion-3slice'),
}


def _table4(ctx, key, seed):
    """Table 4: the single-class start, then 6 epochs of multi-type
    fine-tuning on the typed val split, tested per type."""
    label, stem, start = _T4[key]
    pre, start_work = _train(ctx, f'{E}/{start}.py', seed, 'deeplesion',
                             name='train_start')
    ckpt = osp.join(start_work,
                    f'epoch_{trained_epochs(ctx, f"{E}/{start}.py")}.pth')
    return _train_test_row(ctx, key, label, f'{E}/{stem}.py', seed,
                           'deeplesion-val', train_extra=(f'load_from={ckpt}',),
                           pre=[pre])


_T6 = {
    'elixirnet': ('ElixirNet (our search space, differentiable search)',
                  'elixirnet-alb-search'),
    'wo_search_space': ('ALB w/o our search space (DARTS operations)',
                        'elixirnet-alb-search-dartsspace'),
    'random': ('random ALB (random search with weight sharing)',
               'elixirnet-alb-search-random'),
}


def _table6(ctx, key, seed):
    """Table 6: the FPN baseline, then one command per row: search on the
    training split, write the + ALB config with the genotype, train it;
    then its test."""
    label, search = _T6[key]
    base = f'{E}/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'
    target = f'{E}/elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'
    pre, base_work = _train(ctx, base, seed, 'deeplesion',
                            name='train_baseline')
    search_cfg = f'{E}/alb_search/{search}_r50_fpn_4xb4-15e_deeplesion-3slice.py'
    work = osp.join(ctx.work_dir, search, f'seed_{seed}')
    written = osp.join(work, 'searched_config.py')
    train_work = osp.join(work, 'train')
    items = training_items(ctx.data_root, 'deeplesion')
    hours = (training_gpu_hours(target, config_epochs(search_cfg), items) +
             training_gpu_hours(target, config_epochs(target), items))
    run = Stage(
        'search_and_train', ctx.launcher('tools/search_alb.py') + [
            search_cfg, '--load-from',
            osp.join(base_work, f'epoch_{trained_epochs(ctx, base)}.pth'),
            '--target-config', target, '--work-dir', work, '--out-config',
            written, '--train', '--train-work-dir', train_work
        ] + ctx.options(f'randomness.seed={seed}'),
        outputs=[written, osp.join(train_work, 'last_checkpoint')],
        gpu_hours=round_hours(hours), gpus=max(ctx.gpus, 1))
    test, metrics = _test(ctx, written, train_work, 'iou')
    # Table 6's "ElixirNet" is + ALB; the others' models: search configs
    model = _stem(target) if key == 'elixirnet' else _stem(search_cfg)
    return Row(key, label, model, [pre, run, test], metrics, froc_map(),
               seed)


# ------------------------------------------------------- Improved RetinaNet
_RT1 = {
    'original': ('original RetinaNet', 'retinanet_vgg19_fpn', False,
                 'retinanet_vgg19_fpn'),
    'anchors': ('+ anchor optimization', 'retinanet_vgg19_fpn', True,
                'retinanet-optanchors_vgg19_fpn'),
    'dense': ('+ dense supervision', 'improved-retinanet_vgg19_densefpn',
              True, 'improved-retinanet_vgg19_densefpn'),
    'attention': ('+ attention gate',
                  'improved-retinanet_vgg19_densefpn-ag', True,
                  'improved-retinanet_vgg19_densefpn-ag'),
}
_RT_SUFFIX = '_1xb4-adam-plateau-50e_deeplesion'


def _retinanet_table1(ctx, key, seed):
    """Table 1: rows with optimised anchors search them by differential
    evolution on the user's validation split ("on the validation set",
    Sec. 2.1; never the test split), for that row's own model."""
    label, target, optimise, model = _RT1[key]
    config = target_config = f'{R}/{target}{_RT_SUFFIX}.py'
    pre = []
    if optimise:
        anchors = osp.join(ctx.work_dir, 'anchors',
                           f'{target}-valanchors{_RT_SUFFIX}.py')
        cmd = [ctx.python, 'tools/analysis_tools/optimize_anchors.py',
               config, '--split', 'val', '--out', anchors, '--overwrite']
        if ctx.data_root:
            cmd += ['--cfg-options', f'data_root={ctx.data_root}']
        pre = [Stage('anchors', cmd, outputs=[anchors])]
        config = anchors
    # the model selected on the validation set: "early stopping is used if
    # the mAP has not improved for 4 consecutive epochs on the validation
    # set" (Sec. 2.3); the config keeps the best epoch (save_best)
    return _train_test_row(ctx, key, label, config, seed, pre=pre,
                           model=f'{model}{_RT_SUFFIX}',
                           schedule_of=target_config, checkpoint='best')


# ------------------------------------------------- 3D Aggregated Faster R-CNN
def _luna(ctx: PlanContext) -> Dict[str, str]:
    root = ctx.data_root or 'data/LUNA16'
    return dict(annotations=osp.join(root, 'annotations.csv'),
                excluded=osp.join(root, 'annotations_excluded.csv'),
                seriesuids=osp.join(root, 'seriesuids.csv'))


def _folds(ctx: PlanContext) -> List[int]:
    return list(ctx.folds) if ctx.folds is not None else list(range(10))


def _device(ctx: PlanContext) -> List[str]:
    """``--device`` of an inference stage: cuda:0 where the stages have a GPU."""
    return ['--device', 'cuda:0' if ctx.gpus > 0 and ctx.cuda else 'cpu']


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
    cmd += ctx.options(f'randomness.seed={seed}',
                       *_luna_root_options(ctx, config), *extra)
    family = 'rpn3d' if 'rpn3d' in config else 'aggregated3d'
    hours = len(_folds(ctx)) * training_gpu_hours(
        f'{family}.py', config_epochs(config), LUNA16_ITEMS_PER_EPOCH)
    stage = Stage(name, cmd,
                  outputs=[osp.join(work, 'eval', 'metrics.json')],
                  gpu_hours=round_hours(hours), gpus=1)
    return stage, work


_A2 = {
    'a': 'rpn3d-ohem-single-scale_denseunet3d_anchor1_4xb2-50e_luna16',
    'b': 'rpn3d-focal-single-scale_denseunet3d_anchor1_4xb2-50e_luna16',
    'c': 'rpn3d-ohem_denseunet3d_anchor1_4xb2-50e_luna16',
    'd': 'rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16',
    'e': 'rpn3d-focal_denseunet3d_anchor2_4xb2-50e_luna16',
}


def _a3d_table2(ctx, key, seed):
    """Table II: the RPN variants, 10 folds pooled into one FROC."""
    config = f'{A3}/{_A2[key]}.py'
    stage, work = _cv(ctx, config, seed)
    return Row(key, f'Table II row {key}', _A2[key], [stage],
               osp.join(work, 'eval', 'metrics.json'), luna16_map(), seed)


_RPN = f'{A3}/{_A2["d"]}.py'
_A3 = {
    'crop96_da': ('Crop 96, DA, Joint',
                  'aggregated3d-wo-magnify_denseunet3d_anchor1_4xb2-50e_'
                  'luna16-crop96'),
    'crop96_da_magnify': ('Crop 96, DA, Magnify, Joint',
                          'aggregated3d_denseunet3d_anchor1_4xb2-50e_'
                          'luna16-crop96'),
    'alternating': ('Crop 96, DA, Magnify, Alternating',
                    'aggregated3d-alternating_denseunet3d_anchor1_4xb2-50e_'
                    'luna16'),
    '3dag_lm': ('3D-AG-LM (Crop 128, DA, Joint)',
                'aggregated3d-wo-magnify_denseunet3d_anchor1_4xb2-50e_luna16'),
    '3dag': ('3D-AG (Crop 128, DA, Magnify, Joint)',
             'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16'),
}
#: † rows: round-1 config -> ABS round-2 config (README's pairs)
_A3_ABS = {
    'rpn_abs': ('Crop 128†, RPN (ABS)', _A2['d'],
                'rpn3d-focal-abs_denseunet3d_anchor1_4xb2-30e_luna16'),
    'wo_da_abs': ('Crop 128†, Joint, no DA (ABS)',
                  'aggregated3d-wo-da_denseunet3d_anchor1_4xb2-50e_luna16',
                  'aggregated3d-wo-da-abs_denseunet3d_anchor1_4xb2-30e_luna16'),
    '3dag_lm_abs': ('3D-AG-LM† (ABS)', _A3['3dag_lm'][1],
                    'aggregated3d-wo-magnify-abs_denseunet3d_anchor1_4xb2-'
                    '30e_luna16'),
    '3dag_abs': ('3D-AG† (ABS)', _A3['3dag'][1],
                 'aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16'),
}


def _a3d_table3(ctx, key, seed):
    """Table III: the second stage of every row starts from Table II row d
    (10 folds); the † rows add the ABS round: per fold round 1 (in this
    seed's folder) and its hard regions, then round 2 from them; the
    merged rows pool two † rows' candidates."""
    rpn, rpn_work = _cv(ctx, _RPN, seed, name='cv_rpn_stage')
    stage_ckpt = osp.join(rpn_work, 'fold{fold}',
                          f'epoch_{trained_epochs(ctx, _RPN)}.pth')
    if key in _A3:
        label, stem = _A3[key]
        cv, work = _cv(ctx, f'{A3}/{stem}.py', seed,
                       stage_checkpoint=stage_ckpt)
        return Row(key, label, stem, [rpn, cv],
                   osp.join(work, 'eval', 'metrics.json'), luna16_map(), seed)
    if key in _A3_ABS:
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
                    ] + ctx.options(f'randomness.seed={seed}',
                                    f'load_from={stage_ckpt.format(fold=k)}'),
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
            ] + ctx.options(*_luna_root_options(ctx, r1_cfg)),
                                outputs=[regions], gpus=min(ctx.gpus, 1)))
        # round 2 from round 1 of the same fold, on its hard regions (the
        # fold0 of these paths becomes each fold in luna16_cv)
        regions = osp.join(r1_root, 'fold0', 'hard_regions_fold0.json')
        cv, work = _cv(ctx, abs_cfg, seed, name='cv_abs',
                       stage_checkpoint=osp.join(r1_root, 'fold{fold}',
                                                 r1_ckpt),
                       extra=[f'{k}={regions}'
                              for k, _ in config_data_paths(abs_cfg)
                              if k.startswith('train_dataloader.')
                              and k.endswith('.hard_regions_file')])
        return Row(key, label, abs_stem, stages + [cv],
                   osp.join(work, 'eval', 'metrics.json'), luna16_map(), seed)
    mode = key.split('_', 1)[1]  # merged_intersection / merged_union
    parts = [_a3d_table3(ctx, k, seed) for k in ('3dag_lm_abs', '3dag_abs')]
    stages = [s for s in parts[0].stages]
    stages += [s for s in parts[1].stages if s.name.startswith(('round1',
                                                                'hard',
                                                                'cv_abs'))]
    out = osp.join(ctx.work_dir, f'merged_{mode}', f'seed_{seed}')
    cands = [osp.join(osp.dirname(p.metrics_file), '..', 'candidates.csv')
             for p in parts]
    luna = _luna(ctx)
    stages.append(Stage('merge', [
        ctx.python, 'tools/analysis_tools/merge_luna16_candidates.py',
        *[osp.normpath(c) for c in cands], '--mode', mode, '--out',
        osp.join(out, 'candidates.csv'), '--overwrite'
    ], outputs=[osp.join(out, 'candidates.csv')]))
    # the scans of the folds run (luna16_cv's pooled list), not all 888
    scans = osp.normpath(osp.join(cands[0], '..', 'seriesuids.csv'))
    stages.append(Stage('eval', [
        ctx.python, 'tools/analysis_tools/eval_luna16.py', '--candidates',
        osp.join(out, 'candidates.csv'), '--annotations',
        luna['annotations'], '--excluded', luna['excluded'], '--seriesuids',
        scans, '--out-dir', osp.join(out, 'luna16'), '--overwrite'
    ], outputs=[osp.join(out, 'luna16', 'metrics.json')]))
    return Row(key, f'Merged ({mode}) 3D-AG-LM† and 3D-AG†', '', stages,
               osp.join(out, 'luna16', 'metrics.json'), {}, seed)


# --------------------------------------------------------------------- LENS
_LENS = {
    'baseline': ('MULAN (baseline)',
                 'mulan_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice'),
    'a': ('(a) AFP', 'lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_'
          'deeplesion-9slice'),
    'b': ('(b) + multi-dataset', 'lens-afp-multi_densenet121-2.5d_fpn_1xb4-'
          'radam-8e_deeplesion-luna16-lits-nihln-9slice'),
    'c': ('(c) + proposal fusion', 'lens-afp-multi-fusion_densenet121-2.5d_'
          'fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice'),
    'd': ('(d) + mining', 'lens-afp-multi-fusion-mining_densenet121-2.5d_'
          'fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice'),
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
    ] + ctx.options(*_lens_roots(ctx, config)), outputs=[osp.join(
        out, 'metrics.json')], gpus=min(ctx.gpus, 1)), osp.join(
            out, 'metrics.json')


def _lens_table1(ctx, key, seed):
    """Table I: Sec. III's five steps, the 3D protocol on the manual 1K
    test set."""
    label, stem = _LENS[key]
    cfg = {k: f'{L}/{v[1]}.py' for k, v in _LENS.items()}
    if key in ('baseline', 'a'):
        train, work = _train(ctx, cfg[key], seed, 'deeplesion',
                             *_lens_roots(ctx, cfg[key]))
        ev, metrics = _lens_eval(ctx, cfg[key], work, key)
        return Row(key, label, stem, [train, ev], metrics, lens_map(), seed)
    stages = _lens_exports(ctx)
    train_c, work_c = _train(ctx, cfg['c'], seed, 'deeplesion',
                             *_lens_roots(ctx, cfg['c']))
    stages.append(train_c)
    if key in ('b', 'c'):  # (b): expert 0 of the (c) model
        ev, metrics = _lens_eval(ctx, cfg[key], work_c, key)
        return Row(key, label, stem, stages + [ev], metrics, lens_map(),
                   seed)
    mined = osp.join(osp.abspath(ctx.work_dir), 'lens_mining',
                     f'seed_{seed}', 'lens_mined.json')
    stages.append(Stage('mine', [
        ctx.python, 'tools/lens_mine_annotations.py', cfg['c'],
        f'@last:{work_c}', '--out', mined, '--overwrite'
    ] + ctx.options(*_lens_roots(ctx, cfg['c'])), outputs=[mined]))
    train_d, work_d = _train(
        ctx, cfg['d'], seed, 'deeplesion', *_lens_roots(ctx, cfg['d']),
        f'train_dataloader.dataset.datasets.0.mined_ann_file={mined}')
    stages.append(train_d)
    if key == 'd':
        ev, metrics = _lens_eval(ctx, cfg['d'], work_d, 'd')
        return Row(key, label, stem, stages + [ev], metrics, lens_map(),
                   seed)
    proposals = osp.join(osp.dirname(mined), 'lens_fpr_proposals.json')
    stages.append(Stage('fpr_proposals', [
        ctx.python, 'tools/lens_fpr_proposals.py', cfg['d'],
        f'@last:{work_d}', '--mined', mined, '--out', proposals,
        '--overwrite'
    ] + ctx.options(*_lens_roots(ctx, cfg['d'])), outputs=[proposals]))
    train_e, work_e = _train(
        ctx, cfg['e'], seed, 'deeplesion-fpr', *_lens_roots(ctx, cfg['e']),
        f'train_dataloader.dataset.ann_file={osp.abspath(proposals)}')
    stages.append(train_e)
    ev, metrics = _lens_eval(ctx, cfg['d'], work_d, 'e', '--fpr-config',
                             cfg['e'], '--fpr-checkpoint', f'@last:{work_e}')
    return Row(key, label, _LENS['e'][1], stages + [ev], metrics, lens_map(),
               seed)


_BUILDERS = {
    'elixirnet/table2': (_table2, froc_map(), FROC_RATES, False),
    'elixirnet/table3': (_table3, froc_map(), FROC_RATES, False),
    'elixirnet/table4': (_table4, froc_map(), FROC_RATES, False),
    'elixirnet/table5': (_table5, froc_map(), FROC_RATES, False),
    'elixirnet/table6': (_table6, froc_map(), FROC_RATES, False),
    'retinanet_lesion/table1': (_retinanet_table1, {
        k: v for k, v in froc_map().items() if k != 'bbox_mAP'
    }, FROC_RATES, False),
    'aggregated3d/table2': (_a3d_table2, luna16_map(), LUNA16_RATES, True),
    'aggregated3d/table3': (_a3d_table3, luna16_map(), LUNA16_RATES, True),
    'lens/table1': (_lens_table1, lens_map(), LENS_RATES, False),
}
TABLES: Dict[str, TableSpec] = {
    name: TableSpec(name, TABLE_INDEX[name].title, TABLE_INDEX[name].rows,
                    build, list(metrics), folds=folds, picture_rates=rates)
    for name, (build, metrics, rates, folds) in _BUILDERS.items()
}


def build_rows(table: str, ctx: PlanContext, rows: Optional[List[str]],
               seeds: List[int]) -> List[Row]:
    """The rows (x seeds) of a table, in the paper's order.

    Raises:
        KeyError: an unknown table or row, naming the known ones.
    """
    if table not in TABLES:
        raise KeyError(f'unknown table {table!r}; known: {sorted(TABLES)}')
    spec = TABLES[table]
    keys = rows or spec.row_keys
    bad = [k for k in keys if k not in spec.row_keys]
    if bad:
        raise KeyError(f'{table}: unknown rows {bad}; its rows: '
                       f'{spec.row_keys}')
    return [spec.build(ctx, k, s) for k in keys for s in seeds]
