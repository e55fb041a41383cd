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
the paper's full-size numbers for reference. It writes ``summary.json`` into
the work dir.

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
    # test checkpoints of an earlier run (work_dir/<row>/epoch_12.pth)
    python tools/analysis_tools/eval_elixirnet_demo.py --skip-train

Equivalent shell recipe for one row::

    python tools/train.py configs/elixirnet/<config>.py \
        --work-dir work_dirs/elixirnet_demo/<config> \
        --cfg-options randomness.seed=0
    python tools/test.py configs/elixirnet/<config>.py \
        work_dirs/elixirnet_demo/<config>/epoch_12.pth
"""
import argparse
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config, DictAction

import mmlesion  # noqa: F401  (registers components)
from mmlesion.nas import apply_genotypes, load_genotypes
from mmlesion.testing import demo_data_root, get_config
from mmlesion.testing.demo_runs import (apply_run_settings, final_checkpoint,
                                        train_and_test)

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
    """Work-dir sub-folder of a row: its config name (without ``.py``)."""
    config = DEMO_ROWS[key][1]
    name = osp.splitext(osp.basename(config))[0]
    return name + '_searched' if key == 'searched' else name


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
    cfg = get_config(DEMO_ROWS[key][1])
    if key == 'searched' and searched_genotype:
        apply_genotypes(cfg, searched_genotype)
    return apply_run_settings(cfg, work_dir, seed, data_root, max_epochs,
                              checkpoint, cfg_options)


def row_label(key: str, searched_genotype: Optional[str]) -> str:
    label = DEMO_ROWS[key][0]
    if key == 'searched' and not searched_genotype:
        label = 'TRPN+ALB, paper-text ALB'
    return label


def run_rows(keys: Sequence[str],
             work_dir: str,
             seed: int = 0,
             data_root: Optional[str] = None,
             max_epochs: Optional[int] = None,
             searched_genotype: Optional[str] = None,
             skip_train: bool = False,
             cfg_options: Optional[dict] = None
             ) -> 'OrderedDict[str, Dict[str, float]]':
    """Train (unless ``skip_train``) and test each row.

    Returns:
        OrderedDict[str, dict[str, float]]: row label -> test metrics.
    """
    results: 'OrderedDict[str, Dict[str, float]]' = OrderedDict()
    for key in keys:
        row_dir = osp.join(work_dir, row_dir_name(key))
        checkpoint = None
        if skip_train:
            epochs = max_epochs or get_config(
                DEMO_ROWS[key][1]).train_cfg.max_epochs
            checkpoint = final_checkpoint(row_dir, epochs, key)
        cfg = prepare_cfg(key, row_dir, seed, data_root, max_epochs,
                          searched_genotype, checkpoint, cfg_options)
        results[row_label(key, searched_genotype)] = train_and_test(
            cfg, train=not skip_train)
    return results


def _fmt(value: Optional[float], width: int, scale: float = 1.0) -> str:
    if value is None or value != value:  # None or NaN
        return f'{"-":>{width}}'
    return f'{scale * value:{width}.2f}'


def format_table(results: Dict[str, Dict[str, float]]) -> str:
    """Rows x (sensitivity at FP_RATES, mean 0.5-4, mAP), in %."""
    header = (f"{'row':<28}" + ''.join(f'{r + " FP":>8}' for r in FP_RATES) +
              f"{'mean0.5-4':>11}{'mAP':>8}")
    lines = ['demo (this run), sensitivity (%) at FPs per image, IoU >= 0.5:',
             header]
    for label, metrics in results.items():
        sens = [metrics.get(f'froc/sens@{r}') for r in FP_RATES]
        lines.append(f'{label:<28}' + ''.join(_fmt(s, 8, 100) for s in sens) +
                     _fmt(metrics.get('froc/mean@0.5-4'), 11, 100) +
                     _fmt(metrics.get(MAP_KEY), 8, 100))
    lines += ['paper, full-size models on the DeepLesion test set:', header]
    for label, (sens, m_ap) in PAPER_ROWS.items():
        mean = None if any(s is None for s in sens[:5]) else sum(
            sens[i] for i in (0, 1, 2, 4)) / 4
        lines.append(f'{label:<28}' + ''.join(_fmt(s, 8) for s in sens) +
                     _fmt(mean, 11) + _fmt(m_ap, 8))
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='ElixirNet vs FPN, searched vs random ALB, on the demo '
        'data: train + FROC + mAP side by side')
    parser.add_argument('--work-dir', default='work_dirs/elixirnet_demo')
    parser.add_argument(
        '--rows',
        nargs='+',
        default=list(DEFAULT_ROWS),
        choices=list(DEMO_ROWS),
        help='rows to run, in this order')
    parser.add_argument(
        '--searched-genotype',
        help='genotype.py written by tools/search_alb.py (row "searched")')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--data-root',
        default=None,
        help='default: the configs\' data/demo_deeplesion/')
    parser.add_argument(
        '--max-epochs',
        type=int,
        default=None,
        help='shorten / lengthen every row alike')
    parser.add_argument(
        '--skip-train',
        action='store_true',
        help='only test the checkpoints of an earlier run')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
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
    results = run_rows(keys, args.work_dir, args.seed, data_root,
                       args.max_epochs, args.searched_genotype,
                       args.skip_train, args.cfg_options)
    table = format_table(results)
    print(table)
    summary = osp.join(args.work_dir, 'summary.json')
    with open(summary, 'w') as f:
        json.dump(
            dict(
                seed=args.seed,
                searched_genotype=args.searched_genotype,
                rows=results),
            f,
            indent=2)
    print(f'written: {summary}')
    return results


if __name__ == '__main__':
    main()
