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
numbers for the full-size models on DeepLesion. The rows are a table on the
shared study runner (:mod:`mmlesion.apis.study`): each row runs for every
``--seeds`` value in ``<work dir>/<row>/seed_<s>/`` (a row/seed whose
``result.json`` exists is not run again), and ``summary.json``,
``summary.md`` (mean ± std, ``not run`` rows) and ``summary_froc.png`` are
written into the work dir.

Example (demo data first: ``python tools/misc/generate_demo_data.py --out
data/demo_deeplesion``)::

    python tools/analysis_tools/eval_retinanet_lesion_demo.py
    python tools/analysis_tools/eval_retinanet_lesion_demo.py --rows 0 3
    # evaluate checkpoints trained earlier (work_dir/<row>/seed_0/epoch_12.pth)
    python tools/analysis_tools/eval_retinanet_lesion_demo.py --skip-train

Equivalent manual recipe for one row::

    python tools/train.py configs/retinanet_lesion/<row>.py \
        --work-dir work_dirs/retinanet_lesion_demo/<row>/seed_0 \
        --cfg-options randomness.seed=0
    python tools/test.py configs/retinanet_lesion/<row>.py \
        work_dirs/retinanet_lesion_demo/<row>/seed_0/epoch_12.pth
"""
import argparse
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import mmlesion  # noqa: F401  (registers components)
from mmlesion.apis.study import (StudyRow, StudySettings, add_study_arguments,
                                 build_row_config, deeplesion_froc,
                                 format_text_table, run_study,
                                 settings_from_args, write_study_report)

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
METRIC = deeplesion_froc(FP_RATES, (('mean0.5-4', 'froc/mean@0.5-4'),
                                    ('mAP@0.5', 'froc/mAP@0.5')))


def row_name(config: str) -> str:
    """Work-dir name of a row: the config file name without ``.py``."""
    return osp.splitext(osp.basename(config))[0]


STUDY_ROWS: Tuple[StudyRow, ...] = tuple(
    StudyRow(key=row_name(config), label=label, config=config)
    for label, config in TABLE1_DEMO_ROWS)


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
    row = StudyRow(key=row_name(config), label=config, config=config)
    settings = StudySettings(work_dir, (seed, ), data_root, max_epochs,
                             cfg_options)
    return build_row_config(row, settings, seed, METRIC, work_dir, checkpoint)


def format_table(results: Dict[str, Dict[str, float]]) -> str:
    """Rows x FP rates, with the paper's numbers (%) for reference."""
    reference = {
        label: list(sens) + [sum(sens[:4]) / 4, None]
        for label, sens in PAPER_TABLE1.items()
    }
    return format_text_table(
        results,
        METRIC.all_columns(),
        title='demo (this run):',
        reference=reference,
        reference_title='paper, full-size models on DeepLesion test '
        '(Table 1):',
        label_width=24)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train + FROC of the Improved RetinaNet Table 1 demo '
        'rows, side by side')
    parser.add_argument(
        '--rows',
        type=int,
        nargs='+',
        default=list(range(len(TABLE1_DEMO_ROWS))),
        help='row indices (0: RetinaNet, 1: + anchors, 2: + dense '
        'supervision, 3: + attention gates on the FPN laterals, 4: attention '
        'gates on the C1 / input skips instead)')
    add_study_arguments(parser, 'work_dirs/retinanet_lesion_demo')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    bad = [i for i in args.rows if not 0 <= i < len(TABLE1_DEMO_ROWS)]
    if bad:
        raise ValueError(f'--rows {bad}: valid rows are 0..'
                         f'{len(TABLE1_DEMO_ROWS) - 1}')
    selected = [STUDY_ROWS[i] for i in dict.fromkeys(args.rows)]
    result = run_study(STUDY_ROWS, settings_from_args(args), METRIC,
                       selected=[r.key for r in selected])
    written = write_study_report(result, name='summary')
    all_results = result.by_label()
    results = {
        r.label: all_results[r.label]
        for r in selected if r.label in all_results
    }
    print(format_table(results))
    print('written: ' + ', '.join(written))
    return results


if __name__ == '__main__':
    main()
