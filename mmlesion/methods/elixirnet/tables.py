# Copyright (c) mmlesion contributors. All rights reserved.
"""ElixirNet's tables (Jiang et al. 2020), as rows of stages.

Each row is the full-size config with the paper's schedule and the
pre-steps the method documents (the ALB search), written as the commands
of ``configs/elixirnet/README.md``. The paper's numbers are in
:mod:`.paper`.
"""
import os.path as osp

from mmlesion.apps.reproduce.estimate import (round_hours, training_gpu_hours,
                                              training_items)
from mmlesion.apps.reproduce.execute import (FROC_RATES, config_epochs,
                                             froc_map, trained_epochs)
from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES, PaperTables
from mmlesion.apps.reproduce.plan import Row, Stage
from mmlesion.apps.reproduce.row_stages import config_stem as _stem
from mmlesion.apps.reproduce.row_stages import test_stage as _test
from mmlesion.apps.reproduce.row_stages import (Training, train_stage,
                                                train_test_row)
from mmlesion.apps.reproduce.table_index import table_specs
from .paper import (GAINS, PAPER_RESULTS, PRINTED, READ_ROWS, RESULT_ROWS,
                    VARIANTS)

E = 'configs/elixirnet'
#: the schedule and data of the DeepLesion rows' config stems
_3S = '_4xb2-1x_deeplesion-3slice'


# --------------------------------------------------------------- ElixirNet
#: Table 1: the detectors of the paper's "3 slices" rows, each with ElixirNet
#: (TRPN, ALB, RTM) on it; 3DCE's rows (another paper's) are not legible in
#: our copy of the paper, so none is quoted
_T1 = {
    'frcnn': ('FRCNN, 3 slices', 'faster-rcnn_r50_c4' + _3S),
    'elixirnet': ('ElixirNet, 3 slices', 'elixirnet-fig3geno_r50_c4' + _3S),
    'fpn': ('FPN, 3 slices', 'faster-rcnn_r50_fpn' + _3S),
    'elixirnet_fpn': ('ElixirNet w FPN, 3 slices',
                      'elixirnet-fig3geno_r50_fpn' + _3S),
    'deformv2': ('Deformv2, 3 slices', 'faster-rcnn_r50-dcnv2_fpn' + _3S),
    'elixirnet_deformv2': ('ElixirNet w Deformv2, 3 slices',
                           'elixirnet-fig3geno_r50-dcnv2_fpn' + _3S),
}


def _listed(rows):
    """A table whose every row is one training and the test of its last
    epoch (Table 1: 12 epochs, sensitivity at 0.5-16 FPs, IoU >= 0.5, and
    COCO mAP; Table 5 the same)."""
    def build(ctx, key, seed):
        label, stem = rows[key]
        return train_test_row(ctx, key, label,
                              Training(f'{E}/{stem}.py', seed))
    return build


_T5 = {
    'fpn': ('FPN', 'faster-rcnn_r50_fpn' + _3S),
    'trpn': ('+ TRPN (auxiliary location loss, our variant)',
             'elixirnet-trpn_r50_fpn' + _3S),
    'trpn_noaux': ("+ TRPN (the paper's Eq. 1 alone)",
                   'elixirnet-trpn-noaux_r50_fpn' + _3S),
    'alb': ('+ ALB (Fig. 3 genotype)', 'elixirnet-alb-fig3geno_r50_fpn' + _3S),
    'alb_rtm': ('+ ALB + RTM', 'elixirnet-alb-rtm-fig3geno_r50_fpn' + _3S),
    'focal_rpn': ('+ focal-loss RPN (instead of TRPN)',
                  'elixirnet-rpnfocal_r50_fpn' + _3S),
    'trpn_alb': ('+ TRPN + ALB', 'elixirnet-trpn-alb-fig3geno_r50_fpn' + _3S),
    'elixirnet': ('ElixirNet (TRPN + ALB + RTM)',
                  'elixirnet-fig3geno_r50_fpn' + _3S),
    'trpn_alb_9slice': ('9 slices (+ TRPN + ALB)',
                        'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_'
                        'deeplesion-9slice'),
    'elixirnet_9slice': ('ElixirNet, 9 slices (with RTM, our variant)',
                         'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-'
                         '9slice'),
}


#: Table 2: Table 1's models (its labels without ", 3 slices")
_T2 = {k: (label.replace(', 3 slices', ''), stem)
       for k, (label, stem) in _T1.items()}


def _table2(ctx, key, seed):
    """Table 2: the Table 1 models tested with IoBB (and IoU) overlap."""
    base, overlap = key.rsplit('_', 1)
    label, stem = _T2[base]
    config = f'{E}/{stem}.py'
    train, work = train_stage(ctx, Training(config, seed))
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
    return train_test_row(ctx, key, label,
                          Training(f'{E}/{stem}.py', seed, 'kits19'),
                          pre=[export])


#: row -> (label, fine-tuned config stem, the single-class start's)
_MT = '_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype'
_T4 = {
    'fpn_ft': ('FPN w finetune', 'faster-rcnn' + _MT,
               'faster-rcnn_r50_fpn' + _3S),
    'elixirnet_wo_rtm': ('ElixirNet w/o RTM',
                         'elixirnet-wo-rtm-fig3geno' + _MT,
                         'elixirnet-trpn-alb-fig3geno_r50_fpn' + _3S),
    'elixirnet': ('ElixirNet', 'elixirnet-fig3geno' + _MT,
                  'elixirnet-trpn-alb-fig3geno_r50_fpn' + _3S),
}


def _table4(ctx, key, seed):
    """Table 4: the single-class start, then 6 epochs of multi-type
    fine-tuning on the typed val split, tested per type."""
    label, stem, start = _T4[key]
    pre, start_work = train_stage(
        ctx, Training(f'{E}/{start}.py', seed, name='train_start'))
    ckpt = osp.join(start_work,
                    f'epoch_{trained_epochs(ctx, f"{E}/{start}.py")}.pth')
    return train_test_row(
        ctx, key, label, Training(f'{E}/{stem}.py', seed, 'deeplesion-val',
                                  (f'load_from={ckpt}', )), pre=[pre])


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
    base = f'{E}/faster-rcnn_r50_fpn{_3S}.py'
    target = f'{E}/elixirnet-alb-fig3geno_r50_fpn{_3S}.py'
    pre, base_work = train_stage(
        ctx, Training(base, seed, name='train_baseline'))
    search_cfg = (f'{E}/alb_search/{search}_r50_fpn_4xb4-15e_'
                  'deeplesion-3slice.py')
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


#: table name -> (row builder, metric map, picture rates, LUNA16 folds)
BUILDERS = {
    f'elixirnet/table{n}': (build, froc_map(), FROC_RATES, False)
    for n, build in enumerate((_listed(_T1), _table2, _table3, _table4,
                               _listed(_T5), _table6), 1)}

#: each table's title and rows, in the paper's order
TABLE_INDEX = {
    'elixirnet/table1': {
        'title': ('ElixirNet Table 1: sensitivity at 0.5-16 FPs (IoU) and '
                  'mAP, DeepLesion test split, 3 slices: FRCNN (C4), FPN, '
                  'Deformv2 and ElixirNet on each'),
        'rows': ['frcnn', 'elixirnet', 'fpn', 'elixirnet_fpn', 'deformv2',
                 'elixirnet_deformv2'],
    },
    'elixirnet/table2': {
        'title': ('ElixirNet Table 2: sensitivity with IoBB (and IoU) '
                  'overlap, DeepLesion test split: FRCNN (C4), FPN, Deformv2 '
                  'and ElixirNet on each'),
        'rows': ['frcnn_iou', 'frcnn_iobb', 'elixirnet_iou',
                 'elixirnet_iobb', 'fpn_iou', 'fpn_iobb', 'deformv2_iou',
                 'deformv2_iobb', 'elixirnet_fpn_iou', 'elixirnet_fpn_iobb',
                 'elixirnet_deformv2_iou', 'elixirnet_deformv2_iobb'],
    },
    'elixirnet/table3': {
        'title': 'ElixirNet Table 3: KiTS19, 3 slices',
        'rows': ['fpn', 'deformv2', 'elixirnet_fpn', 'elixirnet_deformv2'],
    },
    'elixirnet/table4': {
        'title': ('ElixirNet Table 4: multi-type fine-tuning (sensitivity at '
                  '3 FPs per lesion type)'),
        'rows': ['fpn_ft', 'elixirnet_wo_rtm', 'elixirnet'],
    },
    'elixirnet/table5': {
        'title': 'ElixirNet Table 5: ablation, DeepLesion test split',
        'rows': ['fpn', 'trpn', 'trpn_noaux', 'alb', 'alb_rtm', 'focal_rpn',
                 'trpn_alb', 'trpn_alb_9slice', 'elixirnet',
                 'elixirnet_9slice'],
    },
    'elixirnet/table6': {
        'title': 'ElixirNet Table 6: search space and strategy of the ALB',
        'rows': ['elixirnet', 'wo_search_space', 'random'],
    },
}

#: ElixirNet's part of the paper harness
PAPER_TABLES.register(PaperTables(
    name='elixirnet',
    tables=table_specs(__file__, BUILDERS, TABLE_INDEX),
    paper_results=PAPER_RESULTS,
    config_prefixes=('elixirnet', 'faster'),
    variants=VARIANTS,
    read_rows=READ_ROWS,
    printed=PRINTED,
    gains=GAINS,
    result_rows=RESULT_ROWS,
    # projects/benchmarks/benchmark_elixirnet.py --device cuda: 77.7 ms
    # (ElixirNet-FPN), 50.9 ms (Faster R-CNN R50-FPN) per training
    # image, 3 x 512 x 512, one H100, fp32
    step_times={'elixirnet': 0.0777, 'faster-rcnn': 0.0509}))
