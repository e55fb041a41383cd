# Copyright (c) mmlesion contributors. All rights reserved.
"""Train and evaluate the Table 1 rows of Improved RetinaNet side by side.

Improved RetinaNet (Zlocha et al. 2019), Table 1 / Sec. 3.3 ablation, as
a table of rows on the shared study runner (:mod:`projects.study_demo.study`):

- ``default-anchors``: RetinaNet with mmdet's default anchors,
- ``optanchors``: + anchors optimised by our DE optimiser on the validation
  split of the data the study runs on (the paper's set, Sec. 2.1; never the
  test split; a pre-step of the row, seeded with
  the row's seed; the anchors and their coverage go to
  ``<row>/seed_<s>/anchors.json``),
- ``dense``: + dense supervision from the GrabCut masks of the RECIST
  marks (DenseFPN + segmentation head), score calibration off,
- ``dense-ag``: + attention gates on the FPN laterals, calibration off,
- ``dense-ag-calib``: + the mask-box score calibration (its own row): a
  test-time re-ranking, so the row tests the ``dense-ag`` checkpoint of the
  same seed with the calibration on (no training of its own; the step is
  paired, the same weights with and without it),
- ``dense-agskips-calib``: the other gate placement (C1 / input skips).

``--pretrained-start`` puts the demo Faster R-CNN (``fpn``, the ElixirNet
study's baseline config) first and starts every Table 1 row of the same seed
from its trained backbone and FPN (the stand-in for the paper's ImageNet
VGG-19; heads on P2-P6, the anchors' sizes kept, the Faster R-CNN's input
window: :mod:`projects.retinanet_lesion.pretrained_start`). Use another work dir
than a from-scratch run: every row's result depends on it.

Every row after the first optimises its own anchors on the same boxes (so
that rows 3-6 differ from row 2 only by their mechanism). Each row trains on
the same data with the same schedule (configs
``configs/retinanet_lesion/*_demo_deeplesion.py``, one fixed 12-epoch Adam
schedule) for every ``--seeds`` value in ``<work dir>/<row>/seed_<s>/`` (a
row/seed whose ``result.json`` exists is not run again), is tested on the
same split (``FROCMetric``: sensitivity at 0.5-16 FPs per image, mean over
0.5-4, keras-retinanet's mAP@0.5; test time per image), and
``summary.json``, ``summary.md`` (mean ± std, time per image beside the
first row's, ``not run`` rows) and ``summary_froc.png`` (every row) are
written into the work dir, next to the paper's full-size numbers.

Example::

    # the study: real DeepLesion lesion sizes, generated once into the
    # work dir, 3 seeds, every row
    OMP_NUM_THREADS=2 \
        python projects/retinanet_lesion/tools/eval_retinanet_lesion_demo.py \
        --generate-data --seeds 0 1 2 --work-dir work_dirs/study_retinanet
    # smoke test: tiny data, one seed, one epoch
    python projects/retinanet_lesion/tools/eval_retinanet_lesion_demo.py --quick \
        --rows default-anchors optanchors --work-dir /tmp/quick
    # evaluate checkpoints trained earlier (work_dir/<row>/seed_0/epoch_12.pth)
    python projects/retinanet_lesion/tools/eval_retinanet_lesion_demo.py --skip-train
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import json
import os.path as osp
from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

from mmlesion_cli import tool_parser
from projects.study_demo.study_args import add_study_arguments

if TYPE_CHECKING:
    from projects.study_demo.study import RowContext, StudyRow

_DIR = 'retinanet_lesion/demo/'
_BASE = _DIR + 'retinanet_r18-tiny_fpn_1x_deeplesion-demo.py'
_DENSE = _DIR + 'improved-retinanet_r18-tiny_densefpn_1x_deeplesion-demo.py'
_AG = _DIR + 'improved-retinanet_r18-tiny_densefpn-ag_1x_deeplesion-demo.py'
_AG_SKIPS = (_DIR + 'improved-retinanet_r18-tiny_densefpn-agskips_1x_deeplesion-demo.py')
_NO_CALIBRATION = {'model.score_calibration': None}
#: (key, label, config) of the pre-training row of ``--pretrained-start``:
#: the ElixirNet study's FPN baseline (same key, config and settings, so a
#: finished ElixirNet study's ``fpn`` folder is a valid pre-training row).
PRETRAIN_ROW = ('fpn', 'Faster R-CNN FPN (pre-training of the rows below)',
                'elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py')

#: (key, label, config relative to configs/, overrides, optimised anchors)
#: in Table 1 order; score calibration is its own row (the paper folds it
#: into "+ dense supervision").
TABLE1_DEMO_ROWS: Tuple[Tuple[str, str, str, dict, bool], ...] = (
    ('default-anchors', 'original RetinaNet', _BASE, {}, False),
    ('optanchors', '+ anchor optimization', _BASE, {}, True),
    ('dense', '+ dense supervision', _DENSE, _NO_CALIBRATION, True),
    ('dense-ag', '+ attention gate', _AG, _NO_CALIBRATION, True),
    ('dense-ag-calib', '+ score calibration', _AG, {}, True),
    ('dense-agskips-calib', '+ calibration, AG on skips instead', _AG_SKIPS,
     {}, True),
)
#: rows that only change the test step: row key -> the row whose weights
#: (last checkpoint, same seed) they test.
TESTS_FROM: Dict[str, str] = {'dense-ag-calib': 'dense-ag'}

#: Table 1 of the paper (full-size models, DeepLesion test set), in %.
PAPER_TABLE1: Dict[str, Tuple[float, ...]] = {
    'original RetinaNet': (45.80, 54.17, 62.50, 69.80, 75.34, 79.48),
    '+ anchor optimization': (64.82, 74.98, 82.29, 87.87, 92.20, 94.90),
    '+ dense supervision': (70.24, 78.28, 85.10, 90.39, 93.81, 96.01),
    '+ attention gate': (72.15, 80.07, 86.40, 90.77, 94.09, 96.32),
}
FP_RATES: Tuple[str, ...] = ('0.5', '1', '2', '4', '8', '16')
ANCHOR_FILE = 'anchors.json'


def study_metric():
    """The study's metric: the DeepLesion FROC at ``FP_RATES`` and more."""
    from projects.study_demo.study import deeplesion_froc
    return deeplesion_froc(FP_RATES, (
        ('mean0.5-4', 'froc/mean@0.5-4'),
        ('mAP@0.5', 'froc/mAP@0.5')))


def optimised_anchors_step(cfg: Config, ctx: 'RowContext') -> None:
    """Pre-step of the "+ anchor optimization" rows (Sec. 2.1): run our DE
    optimiser (:func:`mmlesion.anchors.anchor_coverage.optimise_anchors`,
    the search of ``tools/analysis_tools/optimize_anchors.py``, seeded with
    the row's seed) on the row's validation-split boxes ("on the validation
    set", Sec. 2.1; the test split is never read), resized as its
    pipeline, keep the row's strides and sizes, replace its anchor ratios
    and scales, and write the anchors with the coverage of mmdet's default
    and the optimised anchors to ``<row dir>/anchors.json``."""
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.anchors.anchor_config import AnchorConfig
    from mmlesion.anchors.anchor_coverage import (anchor_coverage,
                                                  config_boxes,
                                                  optimise_anchors)
    from mmlesion.anchors.box_sources import anchor_config_from_model
    from mmlesion.anchors.model_pyramid import anchor_head_key
    from mmlesion.utils.writing.atomic import atomic_write_json
    wh = config_boxes(cfg, 'val')
    result = optimise_anchors(cfg, wh, seed=ctx.seed)
    head = anchor_head_key(cfg)
    own = anchor_config_from_model(cfg)
    default = AnchorConfig.retinanet_default(strides=own.strides,
                                             sizes=own.sizes)
    report = anchor_coverage(
        wh, dict(mmdet_default=default, optimised=result.anchors))
    cfg.model[head].anchor_generator = ConfigDict(
        result.anchors.to_generator_cfg())
    atomic_write_json(osp.join(ctx.row_dir, ANCHOR_FILE),
                      dict(split='val', seed=ctx.seed, anchors=report),
                      indent=1)
    source = TESTS_FROM.get(ctx.row.key)
    if source is not None:
        check_same_anchors(report['optimised'], ctx, source)


def check_same_anchors(anchors: dict, ctx: 'RowContext', source: str) -> None:
    """A row that tests another row's weights must predict with the same
    anchors (they are not in the checkpoint); the DE search is seeded, so
    the same seed and boxes give the same anchors. Compares with the
    source row's ``anchors.json`` of the same seed.

    Raises:
        FileNotFoundError: the source row has no ``anchors.json``.
        ValueError: the anchors differ.
    """
    path = osp.join(osp.dirname(osp.dirname(ctx.row_dir)), source,
                    f'seed_{ctx.seed}', ANCHOR_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'row {ctx.row.key!r} tests the weights of '
                                f'row {source!r}: {path} is missing')
    with open(path) as f:
        theirs = json.load(f)['anchors']['optimised']
    if theirs != anchors:
        raise ValueError(f'row {ctx.row.key!r}: anchors optimised for seed '
                         f'{ctx.seed} differ from those of row {source!r} '
                         f'({path}); its checkpoint does not fit them')


def study_row(key: str) -> 'StudyRow':
    """The :class:`StudyRow` of :data:`TABLE1_DEMO_ROWS` ``key``."""
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import StudyRow
    for k, label, config, overrides, optimise in TABLE1_DEMO_ROWS:
        if k == key:
            return StudyRow(
                key=k,
                label=label,
                config=config,
                overrides=dict(overrides),
                prepare=optimised_anchors_step if optimise else None,
                fingerprint=dict(anchors='DE on val split, row seed')
                if optimise else {},
                tests_from=TESTS_FROM.get(k))
    raise KeyError(f'no Table 1 row {key!r}')


def study_rows(pretrained_start: bool = False) -> Tuple['StudyRow', ...]:
    """Every row of :data:`TABLE1_DEMO_ROWS`, in order; with
    ``pretrained_start`` the pre-training row :data:`PRETRAIN_ROW` first and
    every Table 1 row started from its checkpoint (same seed)."""
    rows = tuple(study_row(row[0]) for row in TABLE1_DEMO_ROWS)
    if not pretrained_start:
        return rows
    import dataclasses

    from projects.study_demo.study import StudyRow
    from projects.retinanet_lesion.pretrained_start import pretrained_start_step
    source = StudyRow(*PRETRAIN_ROW)
    return (source, ) + tuple(
        dataclasses.replace(
            r,
            prepare=pretrained_start_step(source, then=r.prepare),
            fingerprint=dict(r.fingerprint,
                             pretrained_start=f'{source.key} row, same seed:'
                             ' backbone + FPN, P2-P6, its window'))
        for r in rows)


def prepare_cfg(key: str,
                work_dir: str,
                seed: int = 0,
                data_root: Optional[str] = None,
                max_epochs: Optional[int] = None,
                checkpoint: Optional[str] = None,
                cfg_options: Optional[dict] = None):
    """A row's config with the shared run settings (its pre-step not run).

    Args:
        key (str): row key of :data:`TABLE1_DEMO_ROWS`.
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
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import StudySettings, build_row_config
    settings = StudySettings(work_dir, (seed, ), data_root, max_epochs,
                             cfg_options)
    return build_row_config(study_row(key), settings, seed, study_metric(),
                            work_dir, checkpoint)


def format_table(results: Dict[str, Dict[str, float]]) -> str:
    """Rows x FP rates, with the paper's numbers (%) for reference."""
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import format_text_table
    reference = {
        label: list(sens) + [sum(sens[:4]) / 4, None]
        for label, sens in PAPER_TABLE1.items()
    }
    return format_text_table(
        results,
        study_metric().all_columns(),
        title='demo (this run):',
        reference=reference,
        reference_title='paper, full-size models on DeepLesion test '
        '(Table 1):',
        label_width=24)


#: Table 1's steps ``(before, after, what)``, judged in the report by the
#: one paired rule of every study.
STEPS: Tuple[Tuple[str, str, str], ...] = (
    ('default-anchors', 'optanchors', '+ anchor optimization'),
    ('optanchors', 'dense', '+ dense supervision'),
    ('dense', 'dense-ag', '+ attention gate'),
    ('dense-ag', 'dense-ag-calib', '+ score calibration'),
    ('dense-ag-calib', 'dense-agskips-calib', 'AG on skips instead'),
)


def study_steps() -> list:
    """:data:`STEPS` as the report's :class:`StudyStep` s."""
    from projects.study_demo.study import StudyStep
    return [StudyStep(*step) for step in STEPS]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--rows',
        nargs='+',
        default=[row[0] for row in TABLE1_DEMO_ROWS],
        help='row keys: ' + ', '.join(row[0] for row in TABLE1_DEMO_ROWS))
    parser.add_argument(
        '--pretrained-start',
        action='store_true',
        help='train the demo Faster R-CNN first and start every row from its '
        'backbone and FPN (same seed): the stand-in for ImageNet weights')
    add_study_arguments(parser, 'work_dirs/retinanet_lesion_demo')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.study import (maybe_run_seed_jobs, run_study,
                                     settings_from_args, write_study_report)
    keys = [row[0] for row in TABLE1_DEMO_ROWS]
    bad = [k for k in args.rows if k not in keys]
    if bad:
        raise ValueError(f'--rows {bad}: valid rows are {keys}')
    rows = study_rows(args.pretrained_start)
    selected = [
        r for r in rows if r.key in args.rows or
        (args.pretrained_start and r.key == PRETRAIN_ROW[0])
    ]
    from projects.study_demo.study_data import ensure_study_data
    settings = settings_from_args(args, data_maker=ensure_study_data)
    maybe_run_seed_jobs(args, argv, __file__, settings.seeds)
    from projects.study_demo.study import build_row_config
    from projects.study_demo.study_data import study_test_set
    result = run_study(rows, settings, study_metric(),
                       selected=[r.key for r in selected])
    test_set = study_test_set(
        build_row_config(rows[0], settings, settings.seeds[0]),
        settings.data_root or 'data/demo_deeplesion')
    written = write_study_report(result, name='summary',
                                 steps=study_steps(),
                                 effect_metric='froc/mean@0.5-4',
                                 test_set=test_set)
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
