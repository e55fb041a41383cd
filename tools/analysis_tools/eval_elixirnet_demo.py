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
shared study runner (:mod:`mmlesion.apis.study`): each row runs for every
``--seeds`` value in ``<work dir>/<row>/seed_<s>/`` (a row/seed whose
``result.json`` exists is not run again), and ``summary.json``,
``summary.md`` (mean ± std, ``not run`` rows) and ``summary_froc.png`` are
written into the work dir.

Rows (``--rows``):

- ``fpn``: the FPN baseline (mmdet's Faster R-CNN, demo size),
- ``elixirnet``: ElixirNet (TruncatedRPN + ALB + RTM),
- ``searched``: TRPN + ALB (no RTM, as Table 6) with the genotype of
  ``--searched-genotype`` (the ``genotype.py`` written by
  ``tools/search_alb.py``); without it, the genotype of the config (the block
  described in the paper's text) and the row is labelled so,
- ``random``: the same with a fixed random genotype,
- ``trpn``, ``alb``: the ablation rows +TRPN and +ALB (Table 5).

Example (demo data first)::

    python tools/misc/generate_demo_data.py --out data/demo_deeplesion
    # optional: search a genotype (see tools/search_alb.py)
    python tools/analysis_tools/eval_elixirnet_demo.py \
        --searched-genotype work_dirs/alb_search/genotype.py
    python tools/analysis_tools/eval_elixirnet_demo.py --rows fpn elixirnet
    # test checkpoints of an earlier run (work_dir/<row>/seed_0/epoch_12.pth)
    python tools/analysis_tools/eval_elixirnet_demo.py --skip-train

Equivalent shell recipe for one row::

    python tools/train.py configs/elixirnet/<config>.py \
        --work-dir work_dirs/elixirnet_demo/<config>/seed_0 \
        --cfg-options randomness.seed=0
    python tools/test.py configs/elixirnet/<config>.py \
        work_dirs/elixirnet_demo/<config>/seed_0/epoch_12.pth
"""
import argparse
import hashlib
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

import mmlesion  # noqa: F401  (registers components)
from mmlesion.apis.study import (RowContext, StudyRow, StudySettings,
                                 add_study_arguments, build_row_config,
                                 deeplesion_froc, format_text_table,
                                 run_study, settings_from_args,
                                 write_study_report)
from mmlesion.nas import apply_genotypes, load_genotypes
from mmlesion.utils import demo_data_root

_DIR = 'elixirnet/'
#: key -> (label, config relative to configs/)
DEMO_ROWS: 'OrderedDict[str, Tuple[str, str]]' = OrderedDict(
    fpn=('FPN baseline',
         _DIR + 'faster_rcnn_r18-tiny_fpn_1x_demo_deeplesion.py'),
    elixirnet=('ElixirNet (TRPN+ALB+RTM)',
               _DIR + 'elixirnet_r18-tiny_fpn_1x_demo_deeplesion.py'),
    searched=('TRPN+ALB, searched ALB',
              _DIR + 'elixirnet-trpn-alb_r18-tiny_fpn_1x_demo_deeplesion.py'),
    random=('TRPN+ALB, random ALB', _DIR +
            'elixirnet-trpn-alb-random_r18-tiny_fpn_1x_demo_deeplesion.py'),
    trpn=('+TRPN', _DIR + 'elixirnet-trpn_r18-tiny_fpn_1x_demo_deeplesion.py'),
    alb=('+ALB', _DIR + 'elixirnet-alb_r18-tiny_fpn_1x_demo_deeplesion.py'),
)
DEFAULT_ROWS = ('fpn', 'elixirnet', 'searched', 'random')
FP_RATES: Tuple[str, ...] = ('0.5', '1', '2', '3', '4', '8', '16')
MAP_KEY = 'froc/bbox_mAP'
METRIC = deeplesion_froc(FP_RATES, (('mean0.5-4', 'froc/mean@0.5-4'),
                                    ('mAP', MAP_KEY)))

#: The paper's numbers (full-size models, DeepLesion test set, IoU), in %:
#: sensitivities at FP_RATES (None: not reported) and mAP.
PAPER_ROWS: Dict[str, Tuple[Tuple[Optional[float], ...], float]] = {
    'FPN, 3 slices (Table 5)':
    ((None, None, None, 81.51, None, None, None), 31.5),
    'ElixirNet w FPN (Table 1)':
    ((66.39, 75.41, 82.05, 86.63, 87.75, 88.36, 88.36), 35.2),
    'ElixirNet, searched (Table 6)':
    ((None, None, None, 83.88, None, None, None), 34.1),
    'random ALB (Table 6)':
    ((None, None, None, 81.84, None, None, None), 32.1),
}


def row_dir_name(key: str) -> str:
    """Study row key: its config name (without ``.py``)."""
    config = DEMO_ROWS[key][1]
    name = osp.splitext(osp.basename(config))[0]
    return name + '_searched' if key == 'searched' else name


def row_label(key: str, searched_genotype: Optional[str]) -> str:
    label = DEMO_ROWS[key][0]
    if key == 'searched' and not searched_genotype:
        label = 'TRPN+ALB, paper-text ALB'
    return label


def study_row(key: str, searched_genotype: Optional[str] = None) -> StudyRow:
    """The study row of :data:`DEMO_ROWS` ``key``; ``searched`` gets the
    genotype as a pre-step (and its content in the result fingerprint)."""
    prepare, fingerprint = None, {}
    if key == 'searched' and searched_genotype:

        def apply_genotype(cfg: Config, ctx: RowContext) -> None:
            apply_genotypes(cfg, searched_genotype)

        prepare = apply_genotype
        with open(searched_genotype, 'rb') as f:
            fingerprint = dict(
                genotype_sha1=hashlib.sha1(f.read()).hexdigest())
    return StudyRow(
        key=row_dir_name(key),
        label=row_label(key, searched_genotype),
        config=DEMO_ROWS[key][1],
        prepare=prepare,
        fingerprint=fingerprint)


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
    row = study_row(key, searched_genotype)
    settings = StudySettings(work_dir, (seed, ), data_root, max_epochs,
                             cfg_options)
    cfg = build_row_config(row, settings, seed, METRIC, work_dir, checkpoint)
    if row.prepare is not None:
        row.prepare(cfg, RowContext(row, seed, work_dir, settings))
    return cfg


def format_table(results: Dict[str, Dict[str, float]]) -> str:
    """Rows x (sensitivity at FP_RATES, mean 0.5-4, mAP), in %."""
    reference = {}
    for label, (sens, m_ap) in PAPER_ROWS.items():
        mean = None if any(s is None for s in sens[:5]) else sum(
            sens[i] for i in (0, 1, 2, 4)) / 4
        reference[label] = list(sens) + [mean, m_ap]
    return format_text_table(
        results,
        METRIC.all_columns(),
        title='demo (this run), sensitivity (%) at FPs per image, '
        'IoU >= 0.5:',
        reference=reference,
        reference_title='paper, full-size models on the DeepLesion test '
        'set:')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='ElixirNet vs FPN, searched vs random ALB, on the demo '
        'data: train + FROC + mAP side by side')
    parser.add_argument(
        '--rows',
        nargs='+',
        default=list(DEFAULT_ROWS),
        choices=list(DEMO_ROWS),
        help='rows to run, in this order')
    parser.add_argument(
        '--searched-genotype',
        help='genotype.py written by tools/search_alb.py (row "searched")')
    add_study_arguments(parser, 'work_dirs/elixirnet_demo')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    if args.searched_genotype:
        load_genotypes(args.searched_genotype)  # fail early on a bad file
    data_root = args.data_root
    root = data_root or str(demo_data_root())
    if not osp.isfile(osp.join(root, 'DL_info.csv')):
        raise FileNotFoundError(
            f'No demo data in {root} (DL_info.csv missing): run '
            '`python tools/misc/generate_demo_data.py --out '
            'data/demo_deeplesion` or pass --data-root')
    if data_root is None and not osp.isdir('data/demo_deeplesion'):
        # the configs name a relative root: run from anywhere
        data_root = root
    keys: List[str] = list(dict.fromkeys(args.rows))
    rows = [study_row(k, args.searched_genotype) for k in DEMO_ROWS]
    result = run_study(rows, settings_from_args(args, data_root), METRIC,
                       selected=[row_dir_name(k) for k in keys])
    written = write_study_report(
        result,
        name='summary',
        extra=dict(searched_genotype=args.searched_genotype))
    all_results = result.by_label()
    labels = [row_label(k, args.searched_genotype) for k in keys]
    results = {k: all_results[k] for k in labels if k in all_results}
    print(format_table(results))
    print('written: ' + ', '.join(written))
    return results


if __name__ == '__main__':
    main()
