# Copyright (c) mmlesion contributors. All rights reserved.
"""The ablation study of the 3D Aggregated Faster R-CNN on synthetic volumes.

Zhang et al. (3D Aggregated Faster R-CNN), Tables II / III: what each part
adds on top of the RPN. Every row is the study config
``configs/aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-study.py``
plus overrides, trained and tested on the same data with the same schedule
and seed by the shared study runner (:mod:`projects.study_demo.study`), scored
with the LUNA16 protocol (``LUNA16Metric``: sensitivity at 1/8 .. 8 FPs per
scan and the CPM), mean ± std over ``--seeds``.

Rows (``--rows``, in the paper's terms; "DA" is the paper's Diameter
Alignment, Sec. III-C, not data augmentation):

- ``rpn-stage``: the RPN trained from scratch (Table II d, multi-scale
  anchors, adaptive focal loss), ``--stage-epochs``. Sec. III-E: "We first
  train the RPN ... After that, we add the FPRN branch"; every other row
  starts from this row's checkpoint of the same seed.
- ``rpn``: RPN alone: the RPN stage trained ``--epochs`` more without the
  FPRN (the control: every row below gets the same extra iterations).
- ``fprn``: + FPRN: the aggregated FPRN branch (multi-scale feature
  aggregation), without Diameter Alignment and without Local Magnification,
  joint training for ``--epochs``.
- ``da``: + DA: with Diameter Alignment ("3D-AG-LM").
- ``magnify``: + Magnify: with Local Magnification to 5^3 ("3D-AG").
- ``abs``: + ABS (3D-AG†): one round of Anchor Based Sampling (Sec. IV-C)
  from the ``magnify`` row's checkpoint (same seed): its hard regions on
  the training scans (``mmlesion.methods.aggregated3d.hard_regions.find_hard_regions``), then
  ``--abs-epochs`` with 30 % of the crops on them, lr / 10 and T of the
  adaptive focal loss kept at its final value (as the LUNA16 ABS configs).
- ``magnify-more``: the control of ``abs``: the ``magnify`` row trained the
  same ``--abs-epochs`` more without ABS (the paper's † rows also train
  longer).
- ``augment``: 3D-AG with our training augmentation (flips, axial quarter
  turns, scale 0.9-1.1; the paper is silent), not a paper row.

Example::

    python projects/aggregated3d/tools/eval_aggregated3d_demo.py --generate-data \\
        --seeds 0 1 2 --work-dir work_dirs/aggregated3d_study
    python projects/aggregated3d/tools/eval_aggregated3d_demo.py --quick  # smoke

The study data (``--generate-data``, :func:`projects.study_demo.study.
ensure_volume_study_data`, preset ``luna16vol``) is written once into
``<work-dir>/data_luna16vol``; ``--quick`` uses the 12-scan preset, one seed
and one epoch per stage. A row/seed whose ``result.json`` exists is not run
again (run the seeds one call at a time and then all together for the
summary: nothing is run twice). ``summary.{json,md}`` and
``summary_froc.png`` are written into the work dir.
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import os.path as osp
from collections import OrderedDict
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmlesion_cli import tool_parser
from projects.study_demo.study_args import add_study_arguments

if TYPE_CHECKING:  # mmlesion is imported after the arguments are parsed
    from projects.study_demo.study import (RowContext, StudyMetric, StudyResult,
                                     StudyRow)

CONFIG = 'aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-study.py'
_NO_FPRN = {'model.fprn_head': None}
#: the LUNA16 configs' training augmentation (row ``augment``)
AUGMENTATION_CONFIG = '_base_/datasets/luna16_3d_cv.py'

#: key -> (label, overrides, the row it starts from, its schedule:
#: 'stage' / 'row' / 'abs'; 'abs' is also the schedule of its control
#: ``magnify-more``, which differs only by the crops)
DEMO_ROWS: 'OrderedDict[str, Tuple[str, dict, Optional[str], str]]' = \
    OrderedDict([
        ('rpn-stage', ('RPN stage (Table II d)', _NO_FPRN, None, 'stage')),
        ('rpn', ('RPN alone', _NO_FPRN, 'rpn-stage', 'row')),
        ('fprn', ('+ FPRN (no DA, no Magnify)', {
            'model.fprn_head.use_diameter_alignment': False,
            'model.fprn_head.use_magnify': False
        }, 'rpn-stage', 'row')),
        ('da', ('+ DA (3D-AG-LM)', {
            'model.fprn_head.use_magnify': False
        }, 'rpn-stage', 'row')),
        ('magnify', ('+ Magnify (3D-AG)', {}, 'rpn-stage', 'row')),
        ('abs', ('+ ABS (3D-AG†)', {}, 'magnify', 'abs')),
        ('magnify-more', ('3D-AG, same extra epochs, no ABS', {}, 'magnify',
                          'abs')),
        ('augment', ('3D-AG + augmentation (ours)', {}, 'rpn-stage', 'row')),
    ])
DEFAULT_ROWS = ('rpn-stage', 'rpn', 'fprn', 'da', 'magnify', 'abs',
                'magnify-more')

#: The paper's combined FROC (CPM) of the corresponding LUNA16 rows, %
#: (crop 128; Table II d; Table III). "+ FPRN" without DA is reported only
#: with ABS (0.926, "Crop 128†"); RPN alone is row d without ABS.
PAPER_CPM: Dict[str, Optional[float]] = OrderedDict([
    ('RPN alone (Table II d)', 91.0),
    ('+ FPRN, no DA / Magnify, with ABS (Table III)', 92.6),
    ('+ DA: 3D-AG-LM (Table III)', 92.6),
    ('+ Magnify: 3D-AG (Table III)', 93.0),
    ('+ ABS: 3D-AG† (Table III)', 93.5),
])


#: The steps of the ablation, (row, the row it is compared with): each
#: paper step, the two controls, and our augmentation.
STEPS: Tuple[Tuple[str, str], ...] = (
    ('rpn', 'rpn-stage'), ('fprn', 'rpn'), ('da', 'fprn'), ('magnify', 'da'),
    ('abs', 'magnify'), ('magnify-more', 'magnify'), ('abs', 'magnify-more'),
    ('augment', 'magnify'))
CPM_KEY = 'luna16/cpm'


def step_effects(result: 'StudyResult',
                 key: str = CPM_KEY) -> List[Dict[str, object]]:
    """The effect of each step of :data:`STEPS` on ``key``, paired by seed,
    by the one rule of every study
    (:func:`projects.study_demo.study.paired_effects`).

    The rows of one seed share the RPN stage (or the 3D-AG checkpoint), so
    each step is measured per seed, ``d_s = row_s - base_s``, over the seeds
    both rows have. The step is *shown* when ``|mean(d)| > 2 std(d)``
    (sample std, ddof 1, of the per-seed differences; at least 3 seeds,
    else no verdict): the effect stands out from its own seed-to-seed
    spread.

    Args:
        result (StudyResult): from :func:`run_study`.
        key (str): the metric compared.

    Returns:
        list[dict]: per step with results: ``row``, ``base``, ``seeds``,
        ``diffs``, ``mean``, ``std`` (None with one seed), ``shown`` (None
        with fewer than 3 seeds).
    """
    from projects.study_demo.study import StudyStep, paired_effects
    have = {r.row.key for r in result.rows}
    steps = [StudyStep(base, row, f'{row} vs {base}') for row, base in STEPS
             if row in have and base in have]
    return [
        dict(row=e['after'], base=e['before'], seeds=e['seeds'],
             diffs=e['diffs'], mean=e['mean'],
             std=None if len(e['seeds']) < 2 else e['std'],
             shown=e['shown'])
        for e in paired_effects(result, steps, key) if e['seeds']
    ]


#: a step's verdict in the table (None: fewer than 3 seeds, no verdict).
VERDICTS = {True: 'shown', False: 'not shown', None: '-'}


def format_steps(steps: List[Dict[str, object]]) -> str:
    """Markdown table of :func:`step_effects` (CPM in %)."""
    lines = [
        '| step | seeds | per-seed difference | mean | std | shown '
        '(abs(mean) > 2 std) |', '| --- | --- | --- | --- | --- | --- |'
    ]
    for st in steps:
        label = f"{DEMO_ROWS[st['row']][0]} vs {DEMO_ROWS[st['base']][0]}"
        std = '-' if st['std'] is None else f"{100 * st['std']:.1f}"
        diffs = ', '.join(f'{100 * d:+.1f}' for d in st['diffs'])
        lines.append(f"| {label} | {len(st['seeds'])} | {diffs} | "
                     f"{100 * st['mean']:+.1f} | {std} | "
                     f"{VERDICTS[st['shown']]} |")
    return '\n'.join(lines) + '\n'


def epochs_of(args: argparse.Namespace) -> Dict[str, int]:
    """Epochs of each schedule kind from the options."""
    return dict(stage=args.stage_epochs, row=args.epochs,
                abs=args.abs_epochs)


def schedule(epochs: int, lr: float, warmup: bool = True) -> dict:
    """Overrides of a row's schedule: ``epochs`` epochs (checkpoint at the
    end, no validation), Adam at ``lr`` (after a 20-iteration linear
    warm-up if ``warmup``), divided by 10 for the last epoch when there are
    at least 2."""
    return {
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_begin': epochs + 1,
        'optim_wrapper.optimizer.lr': lr,
        'default_hooks.checkpoint.interval': epochs,
        'param_scheduler': ([
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                 end=20)
        ] if warmup else []) + [
            dict(type='MultiStepLR', begin=0, end=epochs, by_epoch=True,
                 milestones=[max(epochs - 1, 1)], gamma=0.1)
        ]
    }


def study_metric() -> 'StudyMetric':
    """The study's metric columns: LUNA16 sensitivities and the CPM."""
    from projects.study_demo.study import luna16_cpm
    return luna16_cpm()


def start_checkpoint(key: str, ctx: 'RowContext', epochs: int) -> str:
    """The last checkpoint of the row ``key`` (same seed)."""
    from projects.study_demo.study import StudyRow, row_seed_dir
    row_dir = row_seed_dir(ctx.settings, StudyRow(key, '', ''), ctx.seed)
    checkpoint = osp.join(row_dir, f'epoch_{epochs}.pth')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'row {ctx.row.key!r} starts from {checkpoint} (row {key!r}, '
            f'seed {ctx.seed}); run that row first')
    return checkpoint


def _train_pipeline(cfg: Config) -> List[dict]:
    return cfg.train_dataloader.dataset.pipeline


def study_row(key: str, epochs: Dict[str, int]) -> 'StudyRow':
    """The study row of :data:`DEMO_ROWS` ``key`` with its schedule and the
    checkpoint it starts from (``epochs``: :func:`epochs_of`)."""
    from projects.study_demo.study import StudyRow
    from mmlesion.utils.configs.lookup import get_config
    label, overrides, source, kind = DEMO_ROWS[key]
    lr = 2e-4 if kind == 'abs' else 2e-3
    overrides = dict(overrides, **schedule(epochs[kind], lr,
                                           warmup=kind != 'abs'))

    def prepare(cfg: Config, ctx: 'RowContext') -> Config:
        # not training: the runner has set load_from to the row's own
        # last checkpoint
        if source is not None and ctx.train:
            cfg.load_from = start_checkpoint(
                source, ctx, epochs[DEMO_ROWS[source][3]])
            if source == 'rpn-stage':
                # Sec. III-E: the FPRN branch is added to the trained RPN
                # and keeps its initialisation (CheckpointCheckHook)
                cfg.load_from_allowed_missing = ['fprn_head.']
        if key == 'augment':  # after the crop, as the LUNA16 configs
            _train_pipeline(cfg).insert(
                2, get_config(AUGMENTATION_CONFIG).augmentation)
        if kind == 'abs':
            loss = cfg.model.rpn_head.loss_cls
            loss.t_start = loss.t_end
        return cfg

    return StudyRow(
        key=key, label=label, config=CONFIG, overrides=overrides,
        prepare=prepare, run=abs_run if key == 'abs' else None,
        fingerprint=dict(starts_from=source,
                         source_epochs=epochs[DEMO_ROWS[source][3]]
                         if source else None))


def abs_run(cfg: Config, ctx: 'RowContext') -> Dict[str, float]:
    """One round of Anchor Based Sampling: the starting checkpoint's hard
    regions on the training scans (kept in the row folder and reused), then
    training with ``HardRegionRandomCrop3D`` (30 % of the crops on them)."""
    from mmlesion.methods.aggregated3d.hard_regions import find_hard_regions
    from projects.study_demo.study import train_and_test
    from mmlesion.datasets.volumes.hard_regions import dump_hard_regions
    path = osp.join(ctx.row_dir, 'hard_regions.json')
    if ctx.train and not osp.isfile(path):
        scans = find_hard_regions(cfg, cfg.load_from)
        dump_hard_regions(path, scans, config=CONFIG,
                          checkpoint=cfg.load_from)
    pipeline = _train_pipeline(cfg)
    for i, step in enumerate(pipeline):
        if step['type'] == 'RandomCrop3D':
            pipeline[i] = dict(step, type='HardRegionRandomCrop3D',
                               hard_regions_file=path, hard_prob=0.3)
    return train_and_test(cfg, train=ctx.train)


def format_table(results: Dict[str, Dict[str, float]]) -> str:
    """Rows x (sensitivity at 1/8 .. 8 FPs per scan, CPM), in %, then the
    paper's CPM of the corresponding LUNA16 rows."""
    from projects.study_demo.study import format_text_table
    columns = study_metric().all_columns()
    reference = {
        label: [None] * (len(columns) - 1) + [cpm]
        for label, cpm in PAPER_CPM.items()
    }
    return format_text_table(
        results, columns,
        title='study (this run), sensitivity (%) at FPs per scan, CPM:',
        reference=reference,
        reference_title='paper, full-size models, LUNA16 10-fold CV (CPM):',
        label_width=36)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--rows', nargs='+', default=list(DEFAULT_ROWS),
                        choices=list(DEMO_ROWS),
                        help='rows to run (table order)')
    parser.add_argument('--stage-epochs', type=int, default=24,
                        help='epochs of the RPN stage')
    parser.add_argument('--epochs', type=int, default=5,
                        help='epochs of each row after the RPN stage '
                        '(--max-epochs sets it too)')
    parser.add_argument('--abs-epochs', type=int, default=2,
                        help='epochs of the ABS round and of its control')
    add_study_arguments(
        parser, 'work_dirs/aggregated3d_study',
        data_root='data/study_volumes/luna16/', generated='data_luna16vol',
        generated_what='synthetic chest volumes, LUNA16 layout',
        quick_data='data_luna16vol-quick',
        max_epochs_help='the same as --epochs')
    args = parser.parse_args(argv)
    if args.max_epochs is not None:
        args.epochs = args.max_epochs
    for name in ('stage_epochs', 'epochs', 'abs_epochs'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


def study_test_set(data_root: str):
    """The held-out scans and nodules the study's rows are tested on (the
    study config's test dataset on ``data_root``)."""
    import copy

    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope

    from mmlesion.utils.configs.lookup import get_config
    from projects.study_demo.study_data import volume_test_set
    cfg = copy.deepcopy(get_config(CONFIG).test_dataloader.dataset)
    cfg.update(data_root=data_root, pipeline=[])
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg)
    dataset.full_init()
    return volume_test_set(dataset, data_root)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study_data import ensure_volume_study_data
    from projects.study_demo.study import (maybe_run_seed_jobs, run_study,
                                     settings_from_args, write_study_report)
    from mmlesion.utils.writing.atomic import atomic_write_text
    data_root = args.data_root
    if data_root is None and (args.quick or args.generate_data):
        preset = 'luna16vol-quick' if args.quick else 'luna16vol'
        data_root = ensure_volume_study_data(
            osp.join(args.work_dir, f'data_{preset}'), preset)
    if args.quick:
        args.stage_epochs = args.epochs = args.abs_epochs = 1
    settings = settings_from_args(args, data_root)
    # the schedules are the rows' own (set in their pre-step)
    settings.max_epochs = None
    root = settings.data_root or 'data/study_volumes/luna16/'
    if not osp.isfile(osp.join(root, 'luna16.json')):
        raise FileNotFoundError(
            f'No study data in {root} (luna16.json missing): pass '
            '--generate-data (or --quick), or --data-root')
    epochs = epochs_of(args)
    rows = [study_row(k, epochs) for k in DEMO_ROWS]
    selected = [k for k in DEMO_ROWS if k in args.rows]
    maybe_run_seed_jobs(args, argv, __file__, settings.seeds)
    result = run_study(rows, settings, study_metric(), selected=selected)
    steps = step_effects(result)
    from projects.study_demo.study import StudyStep
    written = write_study_report(
        result, name='summary',
        extra=dict(epochs=epochs, config=CONFIG, steps=steps),
        steps=[StudyStep(base, row, f'{DEMO_ROWS[row][0]} vs '
                         f'{DEMO_ROWS[base][0]}') for row, base in STEPS],
        effect_metric=CPM_KEY,
        test_set=study_test_set(root))
    steps_md = osp.join(settings.work_dir, 'summary_steps.md')
    atomic_write_text(steps_md, format_steps(steps))
    written.append(steps_md)
    results = {
        label: metrics
        for label, metrics in result.by_label().items()
    }
    print(format_table(results))
    print('CPM per step, paired by seed (%):\n' + format_steps(steps))
    print('written: ' + ', '.join(written))
    return results


if __name__ == '__main__':
    main()
