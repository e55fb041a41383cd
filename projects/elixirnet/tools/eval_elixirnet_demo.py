# Copyright (c) mmlesion contributors. All rights reserved.
"""Train and evaluate ElixirNet against the FPN baseline on the demo data,
and a searched against a random Auto-lesion Block, side by side.

ElixirNet (Jiang et al., AAAI 2020): Table 1 / 5 compare ElixirNet with FPN
(sensitivity at 0.5 to 16 false positives per image and COCO mAP); Table 6
compares the searched block with a random one ("random ALB"). This tool
trains every demo-sized row with the same data, schedule, backbone and seed
(all rows inherit ``configs/elixirnet/faster_rcnn_r18-tiny_fpn_1x_demo_
deeplesion.py``), tests each on the same split and prints the DeepLesion
FROC sensitivities (``FROCMetric``, IoU >= 0.5) at 0.5, 1, 2, 3, 4, 8 and
16 FPs per image, their mean over 0.5-4 and the COCO mAP side by side, with
the paper's full-size numbers for reference. The rows are a table on the
shared study runner (:mod:`projects.study_demo.study`): each row runs for every
``--seeds`` value in ``<work dir>/<row>/seed_<s>/`` (a row/seed whose
``result.json`` exists is not run again), and ``summary.json``,
``summary.md`` (mean ± std, ``not run`` rows) and ``summary_froc.png`` are
written into the work dir.

Rows (``--rows``):

- ``fpn``: the FPN baseline (mmdet's Faster R-CNN, demo size),
- ``elixirnet``: ElixirNet (TruncatedRPN + ALB + RTM),
- ``searched``: + ALB (FPN + ALB: mmdet's RPN, no RTM; the model of Table
  6, whose "ElixirNet" 83.88 / 34.1 is Table 5's + ALB row) with the
  genotype of ``--searched-genotype`` (the ``genotype.py`` written by
  ``tools/search_alb.py``); without it, the genotype of the config (the block
  described in the paper's text) and the row is labelled so,
- ``random``: the same with one fixed random genotype (drawn once: a control
  for the architecture, the same in every seed),
- ``random_search``: Table 6's "random ALB": the same with the genotype of
  random search with weight sharing (Li and Talwalkar 2019; the demo search
  config ``elixirnet-alb-search-random_*``), searched like ``searched`` from
  the FPN row of the same seed with the same epochs, so that each seed draws
  its own genotypes under the same budget,
- ``dartsspace``: Table 6's "ALB w/o our search space": the differentiable
  search over DARTS' operations (``elixirnet-alb-search-dartsspace_*``), the
  same budget,
- ``trpn``, ``alb``: the ablation rows +TRPN and +ALB (Table 5),
- ``focal_rpn``: FPN with the focal loss over every anchor (no sampler) as
  its RPN's classification loss, the "focal loss" TRPN outperforms (Table 5
  text, 82.66),
- ``multitype_wo_rtm`` / ``multitype_rtm``: 8-type fine-tuning of the
  ``trpn_alb`` checkpoint on the typed val split (as the paper, Table 4),
  ``multitype_train_wo_rtm`` / ``multitype_train_rtm`` the same on the
  typed training split (:data:`TYPED_TRAIN`).

Example (demo data first)::

    python tools/misc/generate_demo_data.py --out data/demo_deeplesion
    # optional: search a genotype (see tools/search_alb.py)
    python projects/elixirnet/tools/eval_elixirnet_demo.py \
        --searched-genotype work_dirs/alb_search/genotype.py
    python projects/elixirnet/tools/eval_elixirnet_demo.py --rows fpn elixirnet
    # test checkpoints of an earlier run (work_dir/<row>/seed_0/epoch_12.pth)
    python projects/elixirnet/tools/eval_elixirnet_demo.py --skip-train

Equivalent shell recipe for one row::

    python tools/train.py configs/elixirnet/<config>.py \
        --work-dir work_dirs/elixirnet_demo/<config>/seed_0 \
        --cfg-options randomness.seed=0
    python tools/test.py configs/elixirnet/<config>.py \
        work_dirs/elixirnet_demo/<config>/seed_0/epoch_12.pth
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import hashlib
import importlib.util
import os.path as osp
from collections import OrderedDict
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmlesion_cli import tool_parser
from projects.study_demo.study_args import add_study_arguments

if TYPE_CHECKING:
    from projects.study_demo.study import RowContext, StudyRow

_DIR = 'elixirnet/demo/'
_FPN = _DIR + 'faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py'
_TRPN_ALB = _DIR + 'elixirnet-trpn-alb_r18-tiny_fpn_1x_deeplesion-demo.py'
_ALB = _DIR + 'elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py'
_SEARCH = _DIR + 'elixirnet-alb-search_r18-tiny_fpn_deeplesion-demo.py'
_SEARCH_RANDOM = _DIR + 'elixirnet-alb-search-random_r18-tiny_fpn_deeplesion-demo.py'
_SEARCH_DARTS = (_DIR +
                 'elixirnet-alb-search-dartsspace_r18-tiny_fpn_deeplesion-demo.py')
#: The rows whose ALB genotype a pre-step searches (Table 6), each from the
#: FPN row's checkpoint of the same seed into the + ALB config:
#: key -> (search config, its folder in the row's seed folder, what it is).
#: Table 6's model is FPN + ALB (:data:`_ALB`): its "ElixirNet" (83.88 /
#: 34.1) is Table 5's + ALB row; tools/reproduce.py trains the same.
SEARCH_ROWS: Dict[str, Tuple[str, str, str]] = {
    'searched': (_SEARCH, 'alb_search', 'searched by tools/search_alb.py '
                 'from the fpn row, same seed'),
    'random_search': (_SEARCH_RANDOM, 'alb_random_search',
                      'random search with weight sharing by '
                      'tools/search_alb.py from the fpn row, same seed'),
    'dartsspace': (_SEARCH_DARTS, 'alb_search_dartsspace',
                   "searched in DARTS' operation set by tools/search_alb.py "
                   'from the fpn row, same seed'),
}
_SEARCH_TOOL = osp.join(_ROOT, 'tools', 'search_alb.py')
#: A focal-loss RPN (RetinaNet's loss, every anchor, no sampler) on the FPN
#: baseline: the alternative answer to the RPN's class imbalance ElixirNet
#: compares TRPN with (Table 5 text, 82.66); the demo size of
#: configs/elixirnet/elixirnet-rpnfocal_r50_fpn_4xb2-1x_deeplesion-3slice.py.
FOCAL_RPN = {
    'model.rpn_head.loss_cls':
    dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
         loss_weight=1.0),
    'model.train_cfg.rpn.sampler': None,
}
#: Fine-tuning on the study data's typed *training* split (120 slices, all
#: lesions typed by the generator) instead of the typed val split the paper
#: fine-tunes on (DeepLesion types only its val / test lesions; 20 slices in
#: the study data): Table 4's RTM step with enough typed lesions to learn
#: from. The split is the detector's own training split, so this measures
#: the RTM, not the paper's data protocol.
TYPED_TRAIN = {'train_dataloader.dataset.split': 'train'}
#: key -> (label, config relative to configs/, overrides)
DEMO_ROWS: 'OrderedDict[str, Tuple[str, str, dict]]' = OrderedDict(
    fpn=('FPN baseline', _FPN, {}),
    trpn=('+TRPN',
          _DIR + 'elixirnet-trpn_r18-tiny_fpn_1x_deeplesion-demo.py', {}),
    focal_rpn=('FPN + focal-loss RPN', _FPN, FOCAL_RPN),
    alb=('+ALB (paper genotype)',
         _DIR + 'elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py', {}),
    trpn_alb=('TRPN+ALB, paper genotype', _TRPN_ALB, {}),
    searched=('+ALB, searched ALB', _ALB, {}),
    random=('+ALB, random ALB', _DIR +
            'elixirnet-alb-random_r18-tiny_fpn_1x_deeplesion-demo.py', {}),
    random_search=('+ALB, random search ALB', _ALB, {}),
    dartsspace=("+ALB, searched in DARTS' space", _ALB, {}),
    elixirnet=('ElixirNet (TRPN+ALB+RTM)',
               _DIR + 'elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py', {}),
    elixirnet_9slice=('ElixirNet, 9 slices', _DIR +
                      'elixirnet_r18-tiny_fpn_1x_deeplesion-demo-9slice.py',
                      {}),
    multitype_wo_rtm=('multi-type fine-tuning, w/o RTM', _DIR +
                      'elixirnet-wo-rtm_r18-tiny_fpn_ft-6e_deeplesion-demo-multitype.py', {}),
    multitype_rtm=('multi-type fine-tuning, with RTM', _DIR +
                   'elixirnet_r18-tiny_fpn_ft-6e_deeplesion-demo-multitype.py',
                   {}),
    multitype_train_wo_rtm=('multi-type fine-tuning on typed train, w/o RTM',
                            _DIR + 'elixirnet-wo-rtm_r18-tiny_fpn_ft-6e_deeplesion-demo-multitype.py', TYPED_TRAIN),
    multitype_train_rtm=('multi-type fine-tuning on typed train, with RTM',
                         _DIR + 'elixirnet_r18-tiny_fpn_ft-6e_deeplesion-demo-multitype.py', TYPED_TRAIN),
)
#: the row whose checkpoint (same seed) each row starts from: the ALB search
#: starts from the FPN baseline (as tools/search_alb.py), the multi-type
#: fine-tuning from TRPN+ALB (Sec. 4.2 of the paper).
STARTS_FROM = dict(searched='fpn', random_search='fpn', dartsspace='fpn',
                   multitype_wo_rtm='trpn_alb',
                   multitype_rtm='trpn_alb', multitype_train_wo_rtm='trpn_alb',
                   multitype_train_rtm='trpn_alb')
DEFAULT_ROWS = tuple(DEMO_ROWS)
FP_RATES: Tuple[str, ...] = ('0.5', '1', '2', '3', '4', '8', '16')
MAP_KEY = 'froc/bbox_mAP'
#: mean over the 8 coarse types of the sensitivity at 3 FPs per image
#: (Table 4 of the paper), from FROCMetric's breakdowns
#: (``froc/sens@3_type_<name>``).
TYPE_MEAN_KEY = 'froc/sens@3_type_mean'
#: the same, class-aware (a lesion counts only when found with its own
#: type; FROCMetric ``type_classes=True``, ``froc/sens@3_typecls_<name>``):
#: Table 4's measure for the multi-type rows; NaN for single-class rows.
TYPECLS_MEAN_KEY = 'froc/sens@3_typecls_mean'

#: The paper's numbers (full-size models, DeepLesion test set, IoU), in %:
#: sensitivities at FP_RATES (None: not reported) and mAP.
PAPER_ROWS: Dict[str, Tuple[Tuple[Optional[float], ...], float]] = {
    'FPN, 3 slices (Table 5)':
    ((None, None, None, 81.51, None, None, None), 31.5),
    'focal-loss RPN (Table 5)':
    ((None, None, None, 82.66, None, None, None), None),
    'ElixirNet w FPN (Table 1)':
    ((66.39, 75.41, 82.05, 86.63, 87.75, 88.36, 88.36), 35.2),
    'ElixirNet, searched (Table 6)':
    ((None, None, None, 83.88, None, None, None), 34.1),
    'random ALB (Table 6)':
    ((None, None, None, 81.84, None, None, None), 32.1),
    'ALB w/o our search space (Table 6)':
    ((None, None, None, 81.06, None, None, None), 32.1),
}


def study_metric():
    """The study's metric: the DeepLesion FROC at ``FP_RATES`` and more."""
    from projects.study_demo.study import deeplesion_froc
    return deeplesion_froc(FP_RATES, (
        ('mean0.5-4', 'froc/mean@0.5-4'),
        ('mAP', MAP_KEY),
        ('types@3', TYPE_MEAN_KEY),
        ('typecls@3', TYPECLS_MEAN_KEY)))


#: The study's comparisons ``(before, after, what)``, judged in the report
#: by the one paired rule of every study (Table 5 / 6 steps and controls).
STEPS: Tuple[Tuple[str, str, str], ...] = (
    ('fpn', 'trpn', '+ TRPN'),
    ('fpn', 'focal_rpn', 'focal-loss RPN instead of TRPN'),
    ('fpn', 'alb', '+ ALB'),
    ('trpn', 'trpn_alb', '+ ALB on TRPN'),
    ('trpn_alb', 'elixirnet', '+ RTM'),
    ('fpn', 'elixirnet', 'ElixirNet vs FPN'),
    ('random', 'searched', 'searched vs random genotype'),
    ('random_search', 'searched', 'differentiable vs random search'),
    ('dartsspace', 'searched', "our search space vs DARTS' operations"),
    ('random', 'alb', 'paper-figure vs random genotype'),
    ('alb', 'searched', 'searched vs paper-figure genotype'),
    ('elixirnet', 'elixirnet_9slice', '9 slices instead of 3'),
    ('multitype_wo_rtm', 'multitype_rtm', '+ RTM, multi-type'),
    ('multitype_train_wo_rtm', 'multitype_train_rtm',
     '+ RTM, multi-type (typed training split)'),
)


def study_steps() -> list:
    """:data:`STEPS` as the report's :class:`StudyStep` s (row folders)."""
    from projects.study_demo.study import StudyStep
    return [StudyStep(row_dir_name(b), row_dir_name(a), what)
            for b, a, what in STEPS]


def row_dir_name(key: str) -> str:
    """Study row key (its folder name)."""
    if key not in DEMO_ROWS:
        raise KeyError(f'no ElixirNet row {key!r}; rows are {list(DEMO_ROWS)}')
    return key.replace('_', '-')


def row_label(key: str, searched_genotype: Optional[str]) -> str:
    label = DEMO_ROWS[key][0]
    if key == 'searched' and searched_genotype:
        label += ' (given genotype)'
    return label


def _start_checkpoint(key: str, ctx: 'RowContext') -> str:
    """The last checkpoint of the row ``key`` starts from (same seed)."""
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import StudyRow, row_seed_dir
    from projects.study_demo.study.runner import load_row_config
    source = StudyRow(row_dir_name(STARTS_FROM[key]), '', '')
    row_dir = row_seed_dir(ctx.settings, source, ctx.seed)
    epochs = ctx.settings.max_epochs or load_row_config(
        DEMO_ROWS[STARTS_FROM[key]][1]).train_cfg.max_epochs
    checkpoint = osp.join(row_dir, f'epoch_{epochs}.pth')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'row {key!r} starts from {checkpoint} (row '
            f'{STARTS_FROM[key]!r}, seed {ctx.seed}); run that row first')
    return checkpoint


def search_options(ctx: 'RowContext',
                   search_epochs: Optional[int] = None) -> List[str]:
    """``--cfg-options`` of the pre-step search: the row's seed, the study's
    data root, and its epochs (``search_epochs``, else ``--max-epochs``,
    else the search config's 3)."""
    options = [f'randomness.seed={ctx.seed}']
    if ctx.settings.data_root is not None:
        options.append('train_dataloader.dataset.data_root='
                       f'{ctx.settings.data_root}')
    epochs = search_epochs if search_epochs is not None else \
        ctx.settings.max_epochs
    if epochs is not None:
        options.append(f'train_cfg.max_epochs={epochs}')
    return options


def search_tool_args(key: str, ctx: 'RowContext', checkpoint: str,
                     search_epochs: Optional[int] = None) -> List[str]:
    """Arguments of tools/search_alb.py for the pre-step of the search row
    ``key`` (:data:`SEARCH_ROWS`): its search config, its folder in the
    row's seed folder, the FPN checkpoint, the + ALB config as target,
    and :func:`search_options`."""
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.utils import repo_root
    config, folder, _ = SEARCH_ROWS[key]
    return [
        str(repo_root() / 'configs' / config), '--work-dir',
        osp.join(ctx.row_dir, folder), '--load-from', checkpoint,
        '--target-config',
        str(repo_root() / 'configs' / _ALB), '--cfg-options'
    ] + search_options(ctx, search_epochs)


def run_alb_search(ctx: 'RowContext', checkpoint: str,
                   search_epochs: Optional[int] = None,
                   key: str = 'searched') -> str:
    """Search the ALB of the search row ``key`` with tools/search_alb.py
    (:func:`search_tool_args`) from the FPN checkpoint of the same seed, on
    the study's data; returns the written ``genotype.py`` (reused when it
    exists)."""
    args = search_tool_args(key, ctx, checkpoint, search_epochs)
    genotype = osp.join(args[2], 'genotype.py')
    if osp.isfile(genotype):
        return genotype
    spec = importlib.util.spec_from_file_location('search_alb', _SEARCH_TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(args)
    return genotype


def study_row(key: str, searched_genotype: Optional[str] = None,
              search_epochs: Optional[int] = None) -> 'StudyRow':
    """The study row of :data:`DEMO_ROWS` ``key``. ``searched`` gets its
    genotype in a pre-step (``searched_genotype``, else a search by our
    tool from the FPN row's checkpoint, ``search_epochs`` long), the
    multi-type rows the TRPN+ALB row's checkpoint."""
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import RowContext, StudyRow
    from mmlesion.methods.elixirnet.nas import apply_genotypes
    label, config, overrides = DEMO_ROWS[key]
    prepare, fingerprint = None, {}
    if key in SEARCH_ROWS:
        given = searched_genotype if key == 'searched' else None
        if given:
            with open(given, 'rb') as f:
                fingerprint = dict(
                    genotype_sha1=hashlib.sha1(f.read()).hexdigest())
        else:
            fingerprint = dict(genotype=SEARCH_ROWS[key][2])
            if search_epochs is not None:
                fingerprint['search_epochs'] = search_epochs

        def apply_genotype(cfg: Config, ctx: RowContext) -> None:
            genotype = given or run_alb_search(
                ctx, _start_checkpoint(key, ctx), search_epochs, key)
            apply_genotypes(cfg, genotype)

        prepare = apply_genotype
    elif key in STARTS_FROM:

        def start_from(cfg: Config, ctx: RowContext) -> None:
            cfg.load_from = cfg.get('load_from') if not ctx.train else \
                _start_checkpoint(key, ctx)

        prepare = start_from
        fingerprint = dict(starts_from=STARTS_FROM[key])
    return StudyRow(
        key=row_dir_name(key),
        label=row_label(key, searched_genotype),
        config=config,
        overrides=dict(overrides),
        prepare=prepare,
        run=type_mean_run,
        fingerprint=fingerprint)


def type_mean_run(cfg: Config, ctx: 'RowContext') -> Dict[str, float]:
    """Train and test; add :data:`TYPE_MEAN_KEY`, the mean over the coarse
    types present in the test split of their sensitivity at 3 FPs, and
    :data:`TYPECLS_MEAN_KEY`, the same class-aware (rows whose evaluator
    has ``type_classes=True``: the multi-type rows)."""
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import train_and_test
    metrics = train_and_test(cfg, train=ctx.train)
    for prefix, key in (('froc/sens@3_type_', TYPE_MEAN_KEY),
                        ('froc/sens@3_typecls_', TYPECLS_MEAN_KEY)):
        per_type = [
            v for k, v in metrics.items()
            if k.startswith(prefix) and k != key and v == v
        ]
        if per_type:
            metrics[key] = float(sum(per_type) / len(per_type))
    return metrics


def prepare_cfg(key: str,
                work_dir: str,
                seed: int = 0,
                data_root: Optional[str] = None,
                max_epochs: Optional[int] = None,
                searched_genotype: Optional[str] = None,
                checkpoint: Optional[str] = None,
                cfg_options: Optional[dict] = None) -> Config:
    """Load a row's config and apply the settings shared by all rows.

    Args:
        key (str): row key of :data:`DEMO_ROWS`.
        work_dir (str): work dir of this row.
        seed (int): random seed (the same for every row).
        data_root (str, optional): data root of every loader.
        max_epochs (int, optional): schedule length for every row alike.
        searched_genotype (str, optional): genotype snippet for ``searched``.
        checkpoint (str, optional): weights to test (no training).
        cfg_options (dict, optional): extra options for every row.

    Returns:
        Config: the prepared config.
    """
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import RowContext, StudySettings, build_row_config
    row = study_row(key, searched_genotype)
    settings = StudySettings(work_dir, (seed, ), data_root, max_epochs,
                             cfg_options)
    cfg = build_row_config(row, settings, seed, study_metric(), work_dir,
                           checkpoint)
    if key == 'searched' and searched_genotype:  # no search, no checkpoint
        row.prepare(cfg, RowContext(row, seed, work_dir, settings))
    return cfg


def format_table(results: Dict[str, Dict[str, float]]) -> str:
    """Rows x (sensitivity at FP_RATES, mean 0.5-4, mAP), in %."""
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import format_text_table
    reference = {}
    for label, (sens, m_ap) in PAPER_ROWS.items():
        mean = None if any(s is None for s in sens[:5]) else sum(
            sens[i] for i in (0, 1, 2, 4)) / 4
        reference[label] = list(sens) + [mean, m_ap, None, None]
    return format_text_table(
        results,
        study_metric().all_columns(),
        title='demo (this run), sensitivity (%) at FPs per image, '
        'IoU >= 0.5:',
        reference=reference,
        reference_title='paper, full-size models on the DeepLesion test '
        'set:')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--rows',
        nargs='+',
        default=list(DEFAULT_ROWS),
        choices=list(DEMO_ROWS),
        help='rows to run, in this order')
    parser.add_argument(
        '--searched-genotype',
        help='genotype.py written by tools/search_alb.py (row "searched")')
    parser.add_argument(
        '--search-epochs',
        type=int,
        default=None,
        help='epochs of the pre-step ALB search of the rows "searched", '
        '"random_search" and "dartsspace" (default: the demo search '
        'configs\' 3)')
    add_study_arguments(parser, 'work_dirs/elixirnet_demo')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import (maybe_run_seed_jobs, run_study,
                                     settings_from_args, write_study_report)
    from mmlesion.methods.elixirnet.nas import load_genotypes
    from mmlesion.utils import demo_data_root
    if args.searched_genotype:
        load_genotypes(args.searched_genotype)  # fail early on a bad file
    from projects.study_demo.study_data import ensure_study_data
    settings = settings_from_args(args, data_maker=ensure_study_data)
    if settings.data_root is None and osp.isfile(
            osp.join(str(demo_data_root()), 'DL_info.csv')) and not osp.isdir(
                'data/demo_deeplesion'):
        # the configs name a relative root: run from anywhere
        settings.data_root = str(demo_data_root())
    root = settings.data_root or 'data/demo_deeplesion'
    if not osp.isfile(osp.join(root, 'DL_info.csv')):
        raise FileNotFoundError(
            f'No data in {root} (DL_info.csv missing): pass '
            '--generate-data (the study data) or --quick, or run '
            '`python tools/misc/generate_demo_data.py --out '
            'data/demo_deeplesion`, or pass --data-root')
    keys: List[str] = list(dict.fromkeys(args.rows))
    rows = [
        study_row(k, args.searched_genotype, args.search_epochs)
        for k in DEMO_ROWS
    ]
    maybe_run_seed_jobs(args, argv, __file__, settings.seeds)
    from projects.study_demo.study import build_row_config
    from projects.study_demo.study_data import study_test_set
    result = run_study(rows, settings, study_metric(),
                       selected=[row_dir_name(k) for k in keys])
    test_set = study_test_set(
        build_row_config(rows[0], settings, settings.seeds[0]),
        settings.data_root or 'data/demo_deeplesion')
    written = write_study_report(
        result,
        name='summary',
        extra=dict(searched_genotype=args.searched_genotype,
                   search_epochs=args.search_epochs),
        steps=study_steps(),
        effect_metric='froc/mean@0.5-4',
        test_set=test_set)
    all_results = result.by_label()
    labels = [row_label(k, args.searched_genotype) for k in keys]
    results = {k: all_results[k] for k in labels if k in all_results}
    print(format_table(results))
    print('written: ' + ', '.join(written))
    return results


if __name__ == '__main__':
    main()
