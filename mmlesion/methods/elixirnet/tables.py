# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper tables ``tools/reproduce.py`` knows, as rows of stages.

Each row is the full-size config with the paper's schedule and the
pre-steps the method documents (the DE anchor search on the validation
split, the ALB search, LENS's exports, mining and FPR proposals, the ABS
round's hard regions), written as the commands of the method READMEs.
ElixirNet's and the Improved RetinaNet's tables are here, the 3D
Aggregated Faster R-CNN's in :mod:`.tables_aggregated3d`, LENS's in
:mod:`.tables_lens`. The paper's numbers are not here: they are in
:mod:`.paper_results` (and in each method README's paper column).
"""
import os.path as osp
from typing import Dict, List, Optional

from .estimate import round_hours, training_gpu_hours, training_items
from .execute import FROC_RATES, config_epochs, froc_map, trained_epochs
from .plan import PlanContext, Row, Stage, TableSpec
from .row_stages import config_stem as _stem
from .row_stages import test_stage as _test
from .row_stages import train_stage as _train
from .table_index import TABLE_INDEX
from .tables_aggregated3d import A3D_BUILDERS
from .tables_lens import LENS_BUILDERS

E, R = 'configs/elixirnet', 'configs/retinanet_lesion'


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
#: Table 1: the detectors of the paper's "3 slices" rows, each with ElixirNet
#: (TRPN, ALB, RTM) on it; 3DCE's rows (another paper's) are not legible in
#: our copy of the paper, so none is quoted
_T1 = {
    'frcnn': ('FRCNN, 3 slices',
              'faster-rcnn_r50_c4_4xb2-1x_deeplesion-3slice'),
    'elixirnet': ('ElixirNet, 3 slices',
                  'elixirnet-fig3geno_r50_c4_4xb2-1x_deeplesion-3slice'),
    'fpn': ('FPN, 3 slices', 'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'elixirnet_fpn': ('ElixirNet w FPN, 3 slices',
                      'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'deformv2': ('Deformv2, 3 slices',
                 'faster-rcnn_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice'),
    'elixirnet_deformv2': ('ElixirNet w Deformv2, 3 slices',
                           'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_'
                           'deeplesion-3slice'),
}


def _listed(rows):
    """A table whose every row is one training and the test of its last
    epoch (Table 1: 12 epochs, sensitivity at 0.5-16 FPs, IoU >= 0.5, and
    COCO mAP; Table 5 the same)."""
    def build(ctx, key, seed):
        label, stem = rows[key]
        return _train_test_row(ctx, key, label, f'{E}/{stem}.py', seed)
    return build


_T5 = {
    'fpn': ('FPN', 'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'trpn': ('+ TRPN (auxiliary location loss, our variant)',
             'elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice'),
    'trpn_noaux': ("+ TRPN (the paper's Eq. 1 alone)",
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
    'trpn_alb_9slice': ('9 slices (+ TRPN + ALB)',
                        'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_'
                        'deeplesion-9slice'),
    'elixirnet_9slice': ('ElixirNet, 9 slices (with RTM, our variant)',
                         'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice'),
}


#: Table 2: Table 1's models (its labels without ", 3 slices")
_T2 = {k: (label.replace(', 3 slices', ''), stem)
       for k, (label, stem) in _T1.items()}


def _table2(ctx, key, seed):
    """Table 2: the Table 1 models tested with IoBB (and IoU) overlap."""
    base, overlap = key.rsplit('_', 1)
    label, stem = _T2[base]
    config = f'{E}/{stem}.py'
    train, work = _train(ctx, config, seed, 'deeplesion')
    test, metrics = _test(ctx, config, work, overlap,
                          f'test_evaluator.overlap={overlap}')
    if overlap == 'iou':  # the paper's IoU numbers: Table 1's
        return Row(key, f'{label}, IOU', stem, [train, test], metrics,
                   froc_map(), seed)
    # Table 2 prints sensitivities with IoBB (no mAP): ``<model>@iobb``
    sens = {k: v for k, v in froc_map().items() if k.startswith('sens@')}
    return Row(key, f'{label}, IOBB', stem, [train, test], metrics, sens,
               seed, paper_key=f'{stem}@iobb')


#: Table 3: the FPN and Deformv2 models of Table 2 on KiTS19
_T3 = {k: (label, stem.replace('deeplesion', 'kits19'))
       for k, (label, stem) in _T2.items() if k in ('fpn', 'deformv2',
                                                    'elixirnet_fpn',
                                                    'elixirnet_deformv2')}


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
    # the search's options (data root, seed, the user's) for its training
    # too: search_alb.py applies --cfg-options to the search only; the
    # search-only options (--search-cfg-options) to the search alone
    options = ctx.options(search_cfg, f'randomness.seed={seed}')
    run = Stage(
        'search_and_train', ctx.launcher('tools/search_alb.py') + [
            search_cfg, '--load-from',
            osp.join(base_work, f'epoch_{trained_epochs(ctx, base)}.pth'),
            '--target-config', target, '--work-dir', work, '--out-config',
            written, '--train', '--train-work-dir', train_work
        ] + options + list(ctx.search_cfg_options) +
        ['--train-cfg-options', *options[1:]],
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


_BUILDERS = {
    'elixirnet/table1': (_listed(_T1), froc_map(), FROC_RATES, False),
    'elixirnet/table2': (_table2, froc_map(), FROC_RATES, False),
    'elixirnet/table3': (_table3, froc_map(), FROC_RATES, False),
    'elixirnet/table4': (_table4, froc_map(), FROC_RATES, False),
    'elixirnet/table5': (_listed(_T5), froc_map(), FROC_RATES, False),
    'elixirnet/table6': (_table6, froc_map(), FROC_RATES, False),
    'retinanet_lesion/table1': (_retinanet_table1, {
        k: v for k, v in froc_map().items() if k != 'bbox_mAP'
    }, FROC_RATES, False),
    **A3D_BUILDERS,
    **LENS_BUILDERS,
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
