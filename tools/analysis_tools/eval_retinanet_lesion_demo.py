# Copyright (c) mmlesion contributors. All rights reserved.
"""Train and evaluate the Table 1 rows of Improved RetinaNet side by side.

Improved RetinaNet (Zlocha et al. 2019), Table 1 / Sec. 3.3 ablation:
original RetinaNet, + anchor optimisation, + dense supervision, + attention
gates, plus the second attention-gate placement (row 4: gates on the C1 /
input skip connections of the upsampling path instead of the FPN laterals
of the Table 1 row). This tool trains each demo-sized row on the same data
with the same schedule and seed (configs
``configs/retinanet_lesion/*_demo_deeplesion.py``, which share one fixed
12-epoch Adam schedule), tests each on the same split and prints the
DeepLesion FROC sensitivities at 0.5, 1, 2, 4, 8 and 16 false positives per
image side by side (``FROCMetric``: ``froc/sens@r`` and
``froc/mean@0.5-4``) with keras-retinanet's mAP@0.5, next to the paper's
numbers for the full-size models on DeepLesion. It writes ``summary.json``
into the work dir.

Example (demo data first: ``python tools/misc/generate_demo_data.py --out
data/demo_deeplesion``)::

    python tools/analysis_tools/eval_retinanet_lesion_demo.py
    python tools/analysis_tools/eval_retinanet_lesion_demo.py --rows 0 3
    # evaluate checkpoints trained earlier (work_dir/<row>/epoch_12.pth)
    python tools/analysis_tools/eval_retinanet_lesion_demo.py --skip-train

Equivalent manual recipe for one row::

    python tools/train.py configs/retinanet_lesion/<row>.py \
        --work-dir work_dirs/retinanet_lesion_demo/<row> \
        --cfg-options randomness.seed=0
    python tools/test.py configs/retinanet_lesion/<row>.py \
        work_dirs/retinanet_lesion_demo/<row>/epoch_12.pth
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import DictAction

import mmlesion  # noqa: F401  (registers components)
from mmlesion.testing import get_config
from mmlesion.testing.demo_runs import (apply_run_settings, final_checkpoint,
                                        train_and_test)
from mmlesion.utils.atomic_io import atomic_write

#: (label, demo config relative to configs/) in Table 1 order.
TABLE1_DEMO_ROWS: Tuple[Tuple[str, str], ...] = (
    ('original RetinaNet',
     'retinanet_lesion/retinanet_r18-tiny_fpn_1x_demo_deeplesion.py'),
    ('+ anchor optimization',
     'retinanet_lesion/retinanet-optanchors_r18-tiny_fpn_1x_demo_deeplesion.py'
     ),
    ('+ dense supervision', 'retinanet_lesion/'
     'improved-retinanet_r18-tiny_densefpn_1x_demo_deeplesion.py'),
    ('+ attention gate', 'retinanet_lesion/'
     'improved-retinanet_r18-tiny_densefpn-ag_1x_demo_deeplesion.py'),
    ('+ AG on skips instead', 'retinanet_lesion/'
     'improved-retinanet_r18-tiny_densefpn-agskips_1x_demo_deeplesion.py'),
)

#: Table 1 of the paper (full-size models, DeepLesion test set), in %.
PAPER_TABLE1: Dict[str, Tuple[float, ...]] = {
    'original RetinaNet': (45.80, 54.17, 62.50, 69.80, 75.34, 79.48),
    '+ anchor optimization': (64.82, 74.98, 82.29, 87.87, 92.20, 94.90),
    '+ dense supervision': (70.24, 78.28, 85.10, 90.39, 93.81, 96.01),
    '+ attention gate': (72.15, 80.07, 86.40, 90.77, 94.09, 96.32),
}
FP_RATES: Tuple[str, ...] = ('0.5', '1', '2', '4', '8', '16')


def row_name(config: str) -> str:
    """Work-dir name of a row: the config file name without ``.py``."""
    return osp.splitext(osp.basename(config))[0]


def prepare_cfg(config: str,
                work_dir: str,
                seed: int = 0,
                data_root: Optional[str] = None,
                max_epochs: Optional[int] = None,
                checkpoint: Optional[str] = None,
                cfg_options: Optional[dict] = None):
    """Load a row's config and apply the shared run settings.

    Args:
        config (str): config path relative to ``configs/``.
        work_dir (str): work dir of this row.
        seed (int): random seed (same for every row).
        data_root (str, optional): override the data root of all loaders.
        max_epochs (int, optional): override the schedule length (applied to
            every row alike).
        checkpoint (str, optional): weights to load (evaluation only).
        cfg_options (dict, optional): extra ``--cfg-options``.

    Returns:
        mmengine.Config: the prepared config.
    """
    return apply_run_settings(
        get_config(config), work_dir, seed, data_root, max_epochs, checkpoint,
        cfg_options)


def format_table(results: Dict[str, Dict[str, float]]) -> str:
    """Rows x FP rates, with the paper's numbers (%) for reference."""
    header = (f"{'row':<24}" + ''.join(f'{r + " FP":>9}' for r in FP_RATES) +
              f"{'mean0.5-4':>11}")
    lines = ['demo (this run):', header + f"{'mAP@0.5':>9}"]
    for label, metrics in results.items():
        sens = [metrics.get(f'froc/sens@{r}', float('nan')) for r in FP_RATES]
        mean = metrics.get('froc/mean@0.5-4', float('nan'))
        ap50 = metrics.get('froc/mAP@0.5', float('nan'))
        lines.append(f'{label:<24}' + ''.join(f'{100 * s:9.2f}'
                                              for s in sens) +
                     f'{100 * mean:11.2f}{100 * ap50:9.2f}')
    lines += ['paper, full-size models on DeepLesion test (Table 1):', header]
    for label, sens in PAPER_TABLE1.items():
        lines.append(f'{label:<24}' + ''.join(f'{s:9.2f}' for s in sens) +
                     f'{sum(sens[:4]) / 4:11.2f}')
    return '\n'.join(lines)


def run_rows(
        rows: Sequence[Tuple[str, str]],
        work_dir: str,
        seed: int = 0,
        data_root: Optional[str] = None,
        max_epochs: Optional[int] = None,
        skip_train: bool = False,
        cfg_options: Optional[dict] = None) -> Dict[str, Dict[str, float]]:
    """Train (unless ``skip_train``) and test each row; return its metrics.

    Args:
        rows (Sequence[tuple[str, str]]): (label, config) pairs.
        work_dir (str): parent work dir; each row gets a sub-folder.
        seed (int): seed of every row.
        data_root (str, optional): data root override.
        max_epochs (int, optional): schedule length override.
        skip_train (bool): test ``<row dir>/epoch_<max_epochs>.pth`` only.
        cfg_options (dict, optional): extra config options for every row.

    Returns:
        dict[str, dict[str, float]]: label -> test metrics.
    """
    results: Dict[str, Dict[str, float]] = {}
    for label, config in rows:
        row_dir = osp.join(work_dir, row_name(config))
        checkpoint = None
        if skip_train:
            epochs = max_epochs or get_config(config).train_cfg.max_epochs
            checkpoint = final_checkpoint(row_dir, epochs, label)
        cfg = prepare_cfg(config, row_dir, seed, data_root, max_epochs,
                          checkpoint, cfg_options)
        results[label] = train_and_test(cfg, train=not skip_train)
    return results


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train + FROC of the Improved RetinaNet Table 1 demo '
        'rows, side by side')
    parser.add_argument(
        '--work-dir', default='work_dirs/retinanet_lesion_demo')
    parser.add_argument(
        '--rows',
        type=int,
        nargs='+',
        default=list(range(len(TABLE1_DEMO_ROWS))),
        help='row indices (0: RetinaNet, 1: + anchors, 2: + dense '
        'supervision, 3: + attention gates on the FPN laterals, 4: attention '
        'gates on the C1 / input skips instead)')
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
    bad = [i for i in args.rows if not 0 <= i < len(TABLE1_DEMO_ROWS)]
    if bad:
        raise ValueError(f'--rows {bad}: valid rows are 0..'
                         f'{len(TABLE1_DEMO_ROWS) - 1}')
    rows: List[Tuple[str, str]] = [TABLE1_DEMO_ROWS[i] for i in args.rows]
    results = run_rows(rows, args.work_dir, args.seed, args.data_root,
                       args.max_epochs, args.skip_train, args.cfg_options)
    table = format_table(results)
    print(table)
    summary = osp.join(args.work_dir, 'summary.json')
    with atomic_write(summary) as f:
        json.dump(dict(seed=args.seed, rows=results), f, indent=2)
    print(f'written: {summary}')
    return results


if __name__ == '__main__':
    main()
