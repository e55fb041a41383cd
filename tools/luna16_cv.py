# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16's 10-fold cross-validation in one command (3D Aggregated Faster
R-CNN, Sec. IV): train and test every fold (or the ones asked for), pool
the held-out candidates into one ``candidates.csv`` and score it with the
official LUNA16 semantics (CPM, FROC picture, bootstrap interval:
``tools/analysis_tools/eval_luna16.py``).

Example::

    python tools/luna16_cv.py \\
        configs/aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py \\
        --annotations data/LUNA16/annotations.csv \\
        --excluded data/LUNA16/annotations_excluded.csv
    # a few folds only; run again to resume (finished folds are skipped)
    python tools/luna16_cv.py CONFIG --folds 0 3 --annotations ...

Writes into ``--work-dir`` (default ``work_dirs/<config>_cv``): one
``fold<k>/`` per fold (the fold's mmengine work dir, its ``candidates.csv``,
``seriesuids.csv`` and ``fold_done.json``; layout in
:mod:`mmlesion.protocols.luna16_cv`), the pooled ``candidates.csv`` and
``seriesuids.csv``, and with ``--annotations`` the evaluation of the pooled
candidates in ``eval/`` (``metrics.json``, ``froc.png``, ...,
``score_cut.json``: the same run with and without the config's RPN score
cut, ``model.test_cfg.rpn.score_thr``; regenerated
by every run, as the pooled files). A fold is trained (resuming an
interrupted one from its newest intact checkpoint), then its held-out scans
are detected whole, in this process, one fold after the other (for several
GPUs per fold, run ``tools/dist_train.sh CONFIG N --fold k`` per fold into
``<work-dir>/fold<k>`` first; this tool then resumes the finished training
and only tests). A progress line per fold goes to the log.
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import TYPE_CHECKING, List, Optional, Sequence

from mmengine.config import Config, DictAction

from mmlesion_cli import package_json, tool_parser
from mmlesion_cli.common_args import add_slurm_arguments

if TYPE_CHECKING:
    from mmlesion.protocols.luna16_cv import PooledFolds


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    # Luna16FilesEval's defaults (the data file its module reads)
    scoring = package_json('protocols/tool_defaults.json')['Luna16FilesEval']
    parser = tool_parser(__doc__)
    parser.add_argument(
        'config',
        help='a LUNA16 config with cross-validation folds')
    parser.add_argument('--folds', type=int, nargs='+',
                        help='folds to run (default: all of the config)')
    parser.add_argument('--work-dir', help='default work_dirs/<config>_cv')
    parser.add_argument('--annotations',
                        help='annotations.csv: score the pooled candidates')
    parser.add_argument('--excluded', help='annotations_excluded.csv')
    parser.add_argument(
        '--num-bootstrap', type=int,
        default=scoring['num_bootstrap'],
        help='bootstrap resamples of the pooled CPM (0: no band)')
    parser.add_argument(
        '--seed', type=int, default=scoring['seed'],
        help='bootstrap seed')
    parser.add_argument('--device', default=None,
                        help='device of the test pass (default: cuda if '
                        'available)')
    parser.add_argument(
        '--stage-checkpoint',
        help='a second-stage config (the Table III rows start from the RPN '
        'stage, Sec. III-E): the first stage\'s checkpoint with {fold}, e.g. '
        'work_dirs/rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16_cv/fold{fold}'
        '/epoch_50.pth (default: the config\'s load_from, fold0 -> foldK)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config')
    parser.add_argument('--no-pool', action='store_true',
                        help='train and test the folds only (what each Slurm '
                        'job of --executor slurm runs)')
    parser.add_argument(
        '--executor', choices=['local', 'slurm'], default='local',
        help='local: the folds one after the other here; slurm: one Slurm '
        'job per fold (a job array, through submitit; a pre-empted job '
        'requeues and resumes), then the pooling here once all have ended')
    slurm = add_slurm_arguments(parser, 'to pool them once they ended')
    slurm.add_argument('--gpus-per-job', type=int, default=1,
                       help='GPUs of each fold\'s job (0: a CPU partition; '
                       'default %(default)s)')
    return parser.parse_args(argv)


def _option_text(value) -> str:
    """A --cfg-options value as DictAction reads it back."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(_option_text(v) for v in value)
        return f'[{inner}]' if isinstance(value, list) else f'({inner})'
    return str(value)


def _submit_folds(args: argparse.Namespace, folds: List[int],
                  work_root: str, logger) -> Optional[int]:
    """--executor slurm: one job per fold not done; waits unless
    --no-wait (then returns 0). None: go on and pool here."""
    from mmlesion.apps.reproduce import Row, Stage
    from mmlesion.apps.reproduce.estimate import (LUNA16_ITEMS_PER_EPOCH,
                                                  round_hours,
                                                  training_gpu_hours)
    from mmlesion.apps.reproduce.slurm import (SlurmOptions, job_status,
                                               submit_rows, wait_for_jobs)
    if not args.partition:
        raise ValueError('--executor slurm needs --partition')
    cfg = Config.fromfile(args.config)
    family = 'rpn3d.py' if cfg.model.get('fprn_head') is None else \
        'aggregated3d.py'
    hours = round_hours(training_gpu_hours(
        family, int(cfg.train_cfg.max_epochs), LUNA16_ITEMS_PER_EPOCH))
    rows = []
    for k in folds:
        cmd = [sys.executable, osp.abspath(__file__), args.config, '--folds',
               str(k), '--work-dir', work_root, '--no-pool']
        if args.stage_checkpoint:
            cmd += ['--stage-checkpoint', args.stage_checkpoint]
        if args.device:
            cmd += ['--device', args.device]
        if args.cfg_options:
            cmd += ['--cfg-options'] + [
                f'{key}={_option_text(v)}'
                for key, v in args.cfg_options.items()
            ]
        done = osp.join(work_root, f'fold{k}', 'fold_done.json')
        stage = Stage(f'fold{k}', cmd, outputs=[done], gpu_hours=hours,
                      gpus=args.gpus_per_job)
        rows.append(Row(f'fold{k}', f'fold {k}', '', [stage], done, {}))
    records = submit_rows(
        work_root, rows,
        SlurmOptions(args.partition, args.gpus_per_job, args.cpus_per_task,
                     args.mem_gb, args.max_minutes), log=logger.info)
    if args.no_wait:
        logger.info(f'{len(records)} fold job(s) submitted; --status shows '
                    'them, the same command pools them once they ended')
        return 0
    wait_for_jobs([r['job_id'] for r in records], log=logger.info)
    ids = {r['job_id'] for r in records}
    failed = [s for s in job_status(work_root)
              if s['job_id'] in ids and s['state'] != 'COMPLETED']
    for s in failed:
        logger.error(f"job {s['job_id']} ({s['stage']}): {s['state']}: "
                     f"{s['failure'] or s['stdout']}")
    return 1 if failed else None


def _num_folds(config: str, cfg_options) -> int:
    from mmlesion.utils import config_num_folds
    cfg = Config.fromfile(config)
    if cfg_options:
        from mmlesion.utils.configs.cfg_options import apply_cfg_options
        apply_cfg_options(cfg, cfg_options, source=config)
    return config_num_folds(cfg, source=config)


def _evaluate(args: argparse.Namespace, pooled: 'PooledFolds',
              out_dir: str) -> int:
    """The pooled candidates evaluated as ``eval_luna16.py`` does."""
    from mmlesion.protocols.luna16_eval import (Luna16FilesEval,
                                                evaluate_luna16_files)
    try:
        evaluate_luna16_files(Luna16FilesEval(
            args.annotations, pooled.seriesuids, pooled.candidates, out_dir,
            excluded=args.excluded, overwrite=True,
            num_bootstrap=args.num_bootstrap, seed=args.seed,
            name=osp.splitext(osp.basename(args.config))[0] +
            ' (pooled folds)'))
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2 if isinstance(err, FileNotFoundError) else 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.protocols.luna16_cv import (CrossValidationRun, pool_folds,
                                              run_fold)
    from mmlesion.utils import get_tool_logger

    if not osp.isfile(args.config):
        raise FileNotFoundError(f'Config not found: {args.config}')
    for path in (args.annotations, args.excluded):
        if path is not None and not osp.isfile(path):
            raise FileNotFoundError(f'no such file: {path}')
    num_folds = _num_folds(args.config, args.cfg_options)
    folds: List[int] = sorted(set(args.folds if args.folds is not None else
                                  range(num_folds)))
    bad = [k for k in folds if not 0 <= k < num_folds]
    if bad:
        raise ValueError(f'--folds {bad}: the config has {num_folds} folds '
                         f'(0 .. {num_folds - 1})')
    work_root = args.work_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0] + '_cv')
    os.makedirs(work_root, exist_ok=True)
    device = args.device
    if device is None:
        import torch
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    logger = get_tool_logger('luna16_cv')
    if args.status:
        from mmlesion.apps.reproduce.slurm import job_status, status_table
        print(status_table(job_status(work_root)))
        return 0
    if args.executor == 'slurm':
        ended = _submit_folds(args, folds, work_root, logger)
        if ended is not None:
            return ended
    cv_run = CrossValidationRun(args.config, work_root, args.cfg_options,
                                device, args.stage_checkpoint)
    t0 = time.perf_counter()
    for i, k in enumerate(folds):
        logger.info(f'fold {k} ({i + 1}/{len(folds)}): started')
        rec = run_fold(cv_run, k, logger)
        state = ('done before, skipped' if rec.skipped else
                 f'trained in {rec.train_s} s, tested in {rec.test_s} s')
        logger.info(
            f'fold {k} ({i + 1}/{len(folds)}): {state}; '
            f'{rec.num_candidates} candidates on {rec.num_scans} '
            f'held-out scans; {time.perf_counter() - t0:.0f} s so far')
    if args.no_pool:
        return 0
    pooled = pool_folds(work_root, folds)
    logger.info(f'pooled {len(folds)} folds: {pooled.num_candidates} '
                f'candidates on {pooled.num_scans} scans -> '
                f'{pooled.candidates}')
    if args.annotations is None:
        logger.info('no --annotations: not scored')
        return 0
    ended = _evaluate(args, pooled, osp.join(work_root, 'eval'))
    from mmlesion.protocols.luna16_cv import evaluate_score_cut
    effect = evaluate_score_cut(pooled, args.annotations, args.excluded,
                                osp.join(work_root, 'eval'))
    if ended == 0 and effect is not None:
        logger.info(f'{effect.summary()} -> eval/score_cut.json')
    return ended


if __name__ == '__main__':
    sys.exit(main())
