# Copyright (c) mmlesion contributors. All rights reserved.
"""The main job of the README: generate the synthetic demo data, train the
demo Faster R-CNN (ResNet-18 FPN, 3 slices, from scratch) and evaluate it
on the val split (FROC, COCO mAP); every result goes to one new folder
<work-dir>/<timestamp>/.

1. Generates the demo DeepLesion set (release layout) if it is missing.
2. Trains the demo baseline (mmdet Faster R-CNN, ResNet-18 FPN, 3 slices,
   no pretrained weights) with mmengine's Runner.
3. Evaluates the final model on the demo **val** split with the official
   FROC protocol (``FROCMetric``, docs/protocols.md §1) and COCO mAP, draws
   detections (green) and ground truth (red) on every val key slice.
4. Records a per-scan operating point in the final checkpoint (and in a
   best one of the same epoch) for ``tools/infer_volume.py``: the val
   split's chunks (the slices stored 10 mm either side of a key slice,
   20-25 mm along z) as scans with every lesion the generator drew in them
   in 3D, detected whole by ``tools/eval_whole_scan.py --calibrate``
   (:func:`record_scan_point`). "Per scan" there is per such chunk.

Everything lands in a new folder ``<work-dir>/<timestamp>/`` (an earlier
run is never overwritten), directly in it: the checkpoints, the training
log ``<timestamp>.log``, the FROC numbers ``froc_val.json`` (every key, per
lesion type and size too), ``froc_curve.png``, ``froc_detections.json`` and
the drawn val key slices in ``vis_val/``, the val chunks and their
per-scan evaluation in ``scan_val/``. The run ends with a short summary:
the val sensitivities at 0.5-16 FPs per image, their mean over 0.5-4 (the
DeepLesion protocol), COCO mAP, each naming its split and epoch, the seed
and thread count they were made with, the per-scan operating point and
what its "scan" is, and the path of every file written. The config saved
there (and in the checkpoints) keeps the demo's **test** split as its ``test_dataloader``:
``tools/test.py`` on it evaluates the held-out test split, which this run
never reads.

Example::

    python tools/run_demo.py
    python tools/run_demo.py --epochs 2 --work-dir work_dirs/quick
"""
import argparse
import copy
import dataclasses
import json
import os
import os.path as osp
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_cfg_options_argument

REPO = Path(__file__).resolve().parents[1]
CONFIG_REL = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
DATA_REL = 'data/demo_deeplesion'
WORK_REL = 'work_dirs/demo'
DEFAULT_CONFIG = REPO / CONFIG_REL
#: The FP rates of the headline, in this order, and the mean's key.
HEADLINE_RATES = ('0.5', '1', '2', '4', '8', '16')
MEAN_KEY = 'froc/mean@0.5-4'
#: COCO numbers shown when the metric returns them.
COCO_KEYS = (('froc/bbox_mAP', 'mAP'), ('froc/bbox_mAP_50', 'mAP@0.5'))
RULE = '=' * 72


def build_parser() -> argparse.ArgumentParser:
    """The command line of the demo (defaults: the repository's paths).

    Returns:
        argparse.ArgumentParser: the parser.
    """
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--config',
        help=f'the demo config (default: {CONFIG_REL} of the repository)')
    parser.add_argument(
        '--data-root',
        help='demo data folder, generated there if it has no DL_info.csv '
        f'(default: {DATA_REL} of the repository)')
    parser.add_argument(
        '--work-dir',
        help='each run writes a new <work-dir>/<timestamp>/ folder '
        f'(default: {WORK_REL} of the repository)')
    parser.add_argument(
        '--epochs',
        type=int,
        help='train this many epochs and validate once, at the end '
        "(default: the config's train_cfg.max_epochs)")
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the training and of the demo data where it is '
        'generated')
    add_cfg_options_argument(parser)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line and fill in the repository's default paths.

    Args:
        argv (Sequence[str], optional): the arguments (default: sys.argv).

    Returns:
        argparse.Namespace: the options, every path set.
    """
    args = build_parser().parse_args(argv)
    args.config = args.config or str(DEFAULT_CONFIG)
    args.data_root = args.data_root or str(REPO / DATA_REL)
    args.work_dir = args.work_dir or str(REPO / WORK_REL)
    return args


def ensure_demo_data(data_root: Path, seed: int) -> None:
    """Generate the demo set into ``data_root`` unless it is already there.

    Args:
        data_root (Path): the demo data folder.
        seed (int): seed of the generated set.

    Raises:
        FileExistsError: ``data_root`` holds other files.
    """
    from mmengine.logging import print_log

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apps.demo import generate_demo_deeplesion
    if (data_root / 'DL_info.csv').is_file():
        print_log(f'Demo data found in {data_root}', logger='current')
        return
    if data_root.exists() and any(data_root.iterdir()):
        raise FileExistsError(
            f'{data_root} exists, is not empty and has no DL_info.csv: '
            'refusing to write the demo data into it. Choose another '
            '--data-root or empty that folder.')
    print_log(f'Generating the demo data into {data_root} ...',
              logger='current')
    generate_demo_deeplesion(data_root, seed=seed, show_progress=True)


def build_cfg(args: argparse.Namespace) -> Config:
    """The demo config with the command line applied.

    ``work_dir`` is ``--work-dir`` itself: the runner (:func:`build_runner`)
    makes the run's ``<timestamp>/`` folder in it.

    Args:
        args (argparse.Namespace): the parsed options.

    Returns:
        Config: the config to run.
    """
    from mmlesion.utils.configs.loading import load_config
    cfg = load_config(args.config)  # a broken _base_ chain: one line
    if args.cfg_options:
        from mmlesion.utils.configs.cfg_options import apply_cfg_options
        apply_cfg_options(cfg, args.cfg_options, source=args.config)
    data_root = osp.join(osp.abspath(args.data_root), '')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    if args.epochs is not None:
        cfg.train_cfg.max_epochs = args.epochs
        cfg.train_cfg.val_interval = max(args.epochs, 1)
    cfg.work_dir = str(args.work_dir)
    cfg.randomness = dict(seed=args.seed)
    from mmlesion.datasets.data_layout import name_evaluated_data
    name_evaluated_data(cfg, 'val_dataloader', 'val_evaluator')  # curve title
    # test_dataloader stays the test split: the saved config (and the one in
    # the checkpoints) tests it; the run itself evaluates val
    # (OneFolderRunner.test_val_split).
    return cfg


def build_runner(cfg: Config):
    """An mmengine Runner that keeps the whole run in one folder.

    mmengine's Runner writes checkpoints into ``work_dir`` and its log (and
    everything found through the log: the FROC files) into
    ``work_dir/<timestamp>/``. Here ``work_dir`` becomes that
    ``<timestamp>/`` folder as soon as the runner is built, so the
    checkpoints, ``last_checkpoint`` and the config copy land next to the
    log: one folder per run, no second timestamp level.

    Args:
        cfg (Config): the config (its ``work_dir`` the parent folder).

    Returns:
        mmengine.runner.Runner: the runner; ``runner.work_dir ==
        runner.log_dir``.

    Raises:
        FileExistsError: another run already owns the folder.
    """
    from mmengine.runner import Runner

    from mmlesion.utils.configs.pretty_text import without_yapf

    class OneFolderRunner(Runner):
        """``Runner`` whose ``work_dir`` is its ``log_dir``."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._work_dir = self._log_dir
            self.dump_config()

        def dump_config(self) -> None:
            # Called by Runner.__init__ before the switch: not into the
            # parent folder, where runs would overwrite each other's copy.
            if self._work_dir == self._log_dir:
                super().dump_config()

        def test_val_split(self) -> dict:
            """Test the model on the val split (loader and evaluator).

            The config, as saved, keeps its test split for
            ``tools/test.py``; only this run's test loop reads val.

            Returns:
                dict: the metrics.
            """
            self._test_dataloader = copy.deepcopy(self.cfg.val_dataloader)
            self._test_evaluator = copy.deepcopy(self.cfg.val_evaluator)
            return self.test()

    parent = Path(cfg.work_dir)
    while (parent / time.strftime('%Y%m%d_%H%M%S')).exists():
        time.sleep(.2)  # a run started this second: take the next one
    runner = OneFolderRunner.from_cfg(without_yapf(cfg))
    for owned in ('last_checkpoint', 'froc_val.json'):
        if (Path(runner.log_dir) / owned).exists():
            raise FileExistsError(
                f'{runner.log_dir} already holds a run; not overwriting.')
    return runner


def _evaluated(split: str, epoch: Optional[int]) -> str:
    """``'the val split, epoch 36'``: what a number was measured on."""
    return f'the {split} split' + ('' if epoch is None else
                                   f', epoch {epoch}')


def headline(metrics: Dict[str, float],
             split: str = 'val',
             epoch: Optional[int] = None) -> List[str]:
    """The headline numbers as a few lines (no per-type / size breakdown).

    Args:
        metrics (dict[str, float]): the metrics of ``FROCMetric``.
        split (str): the split they were measured on, named on each line.
        epoch (int, optional): the epoch of the model measured.

    Returns:
        list[str]: the FROC table (sensitivity at 0.5, 1, 2, 4, 8 and 16
        FPs per image and the mean over 0.5-4) and a COCO mAP line where
        those numbers are present, each naming ``split``.
    """
    rates = [r for r in HEADLINE_RATES if f'froc/sens@{r}' in metrics]
    cols = [f'{r:>6}' for r in rates]
    vals = [f'{metrics[f"froc/sens@{r}"]:6.3f}' for r in rates]
    if MEAN_KEY in metrics:
        cols.append('  mean 0.5-4')
        vals.append(f'{metrics[MEAN_KEY]:12.3f}')
    lines = []
    if cols:
        lines += [f'FROC on {_evaluated(split, epoch)} (sensitivity per '
                  'FPs/image):',
                  '  FPs/image   ' + ' '.join(cols),
                  '  sensitivity ' + ' '.join(vals)]
    coco = [f'{name} {metrics[key]:.3f}' for key, name in COCO_KEYS
            if key in metrics]
    if coco:
        lines.append(f'COCO bbox on the {split} split: ' + ', '.join(coco))
    return lines


def written_files(run_dir: Path, timestamp: str,
                  vis_dir: Path) -> List[Tuple[str, Path]]:
    """What the run wrote, as ``(what, path)``, for the files that exist.

    Args:
        run_dir (Path): the run's folder.
        timestamp (str): the runner's timestamp (name of the log).
        vis_dir (Path): the folder of the drawn val slices.

    Returns:
        list[tuple[str, Path]]: the checkpoints (last, then best), the log,
        the FROC files, the pictures' folder, the per-scan validation and
        the config copy.
    """
    from mmlesion.utils.checkpoints.resume import recorded_last_checkpoint
    last = recorded_last_checkpoint(str(run_dir))  # in the run's folder
    files = []
    if last:
        files.append(('checkpoint', Path(last)))
    files += [('best checkpoint', p)
              for p in sorted(run_dir.glob('best_*.pth'))
              if not files or p != files[0][1]]
    files += [('training log', run_dir / f'{timestamp}.log'),
              ('FROC numbers', run_dir / 'froc_val.json'),
              ('FROC curve', run_dir / 'froc_curve.png'),
              ('detections', run_dir / 'froc_detections.json'),
              ('val pictures', vis_dir),
              ('per-scan validation', run_dir / SCAN_VAL_DIR)]
    files += [('config', p) for p in sorted(run_dir.glob('*.py'))]
    return [(what, p) for what, p in files if p.exists()]


def _file_note(path: Path, best: Dict[str, str]) -> str:
    """What follows a written file's path in the summary.

    Args:
        path (Path): the file or folder.
        best (dict[str, str]): best checkpoint path -> its val score.

    Returns:
        str: the number of pictures of a folder, the val score of a best
        checkpoint, else ''.
    """
    if path.name == SCAN_VAL_DIR:
        return os.sep
    if path.is_dir():
        return f'{os.sep}  ({sum(1 for _ in path.iterdir())} pictures)'
    return f'  ({best[str(path)]})' if str(path) in best else ''


def _best_scores(summary: dict) -> Dict[str, str]:
    """Best checkpoint path -> ``'val froc/sens@4 0.712, epoch 24'``."""
    out = {}
    for best in summary.get('best', ()):
        score = '' if best['score'] is None else f' {best["score"]:.3f}'
        epoch = '' if best['epoch'] is None else f', epoch {best["epoch"]}'
        out[best['path']] = f'val {best["metric"]}{score}{epoch}'
    return out


def made_with(summary: dict) -> str:
    """The seed and thread count the numbers were made with, in a line.

    The same code, seed and thread count give the same numbers on a CPU;
    another thread count gives other, equally valid ones.

    Args:
        summary (dict): ``seed``, ``torch_threads``, ``omp_num_threads``
            and ``threads_chosen_by`` (:class:`ThreadRecord`).

    Returns:
        str: e.g. ``Made with seed 0 and 1 torch thread (OMP_NUM_THREADS=1,
        set by you); OMP_NUM_THREADS=1 and --seed 0 give these numbers
        again, ...``.
    """
    count = summary['torch_threads']
    omp = f'OMP_NUM_THREADS={summary["omp_num_threads"]}'
    why = {'user': f'{omp}, set by you',
           'mmlesion': f'{omp}, chosen by mmlesion for the busy cores'
           }.get(summary['threads_chosen_by'], "torch's default")
    return (f'Made with seed {summary["seed"]} and {count} torch '
            f'thread{"s" * (count != 1)} ({why}); '
            f'OMP_NUM_THREADS={count} and --seed {summary["seed"]} give '
            'these numbers again, another thread count other ones.')


#: The run's subfolder of the per-scan validation (:func:`record_scan_point`).
SCAN_VAL_DIR = 'scan_val'


def record_scan_point(config: Path, checkpoint: Path, data_root: Path,
                      run_dir: Path, same_weights: Sequence[Path] = ()
                      ) -> dict:
    """Record the per-scan operating point (module doc, step 4) in
    ``checkpoint`` and in ``same_weights`` (checkpoints of the same
    epoch): the val chunks written by :func:`~mmlesion.apps.demo.
    val_scans.write_val_scans` into ``run_dir/scan_val/``, judged and
    calibrated there by ``tools/eval_whole_scan.py`` (its output in
    ``eval_whole_scan.log``).

    Returns:
        dict: ``scan_lesions.json``'s record with ``scan_extent_mm`` (the
        chunks' mean z extent), or ``error`` (and the log's path) where the
        tool failed.
    """
    import subprocess

    from mmlesion.apis.whole_scan.calibrate import record_in_checkpoint
    from mmlesion.apps.demo.val_scans import write_val_scans
    from mmlesion.evaluation.functional.operating_points import (
        SCAN_OPERATING_POINTS_KEY, OperatingPoints)
    from mmlesion.utils.checkpoints.loader import load_local_checkpoint
    from mmlesion.utils.writing.atomic import atomic_write_text
    out = run_dir / SCAN_VAL_DIR
    ann = write_val_scans(str(data_root), str(out))
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'eval_whole_scan.py'),
         str(config), str(checkpoint), str(ann), '--split', 'val',
         '--calibrate', '--out-dir', str(out)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = out / 'eval_whole_scan.log'
    atomic_write_text(str(log), proc.stdout)
    if proc.returncode:
        return dict(error=(proc.stdout.strip().splitlines() or [''])[-1],
                    log=str(log))
    record = json.loads((out / 'scan_lesions.json').read_text())
    volumes = json.loads(ann.read_text())['volumes']
    record['scan_extent_mm'] = round(sum(
        v['shape_zyx'][0] * v['spacing_zyx'][0] for v in volumes) /
        len(volumes), 1)
    points = OperatingPoints.from_dict(load_local_checkpoint(str(
        checkpoint))['meta'][SCAN_OPERATING_POINTS_KEY])
    for other in same_weights:
        record_in_checkpoint(str(other), points)
    return record


def scan_point_lines(record: Optional[dict]) -> List[str]:
    """The summary's lines on the per-scan operating point
    (:func:`record_scan_point`'s record; none without one)."""
    if not record:
        return []
    if 'error' in record:
        return ['Per-scan operating point NOT recorded: '
                f'tools/eval_whole_scan.py failed: {record["error"]} '
                f'({record["log"]})']
    sens = dict(zip(record['fp_rates'], record['sensitivities']))
    return [
        f'Per-scan operating point for tools/infer_volume.py, in the '
        f'checkpoint: sensitivity {sens.get(4.0, float("nan")):.3f} at 4 '
        f'false findings per scan on {record["num_scans"]} val chunks',
        f'  ({record["num_lesions"]} lesions in 3D; a "scan" here is the '
        f'{record["scan_extent_mm"]:.0f} mm along z the demo stores around '
        'a key slice, not a whole CT).']


def summary_text(summary: dict, files: Sequence[Tuple[str, Path]]) -> str:
    """The end-of-run summary: headline numbers and every file written.

    Every number names its split: the headline the split the run evaluated
    (``split``, val) and the epoch of the model, a best checkpoint its val
    score; the test split is left to ``tools/test.py`` on the saved config.
    The seed and thread count the numbers were made with follow them
    (:func:`made_with`).

    Args:
        summary (dict): what ``froc_val.json`` holds (``metrics``,
            ``split``, ``epoch``, ``best``, ``train_and_eval_seconds``,
            ``run_dir``, ``seed`` and the :class:`ThreadRecord` fields).
        files (Sequence[tuple[str, Path]]): :func:`written_files`.

    Returns:
        str: the summary (about 20 lines).
    """
    from mmlesion.utils.reporting.summary import aligned_rows
    lines = ['', RULE, 'mmlesion demo: Faster R-CNN R18-FPN, 3 slices', RULE]
    lines += headline(summary['metrics'], summary.get('split', 'val'),
                      summary.get('epoch'))
    lines += [
        made_with(summary),
        'Per lesion type and size: "metrics" in froc_val.json, and the log.',
        'The test split is not evaluated here: tools/test.py with the '
        'config below tests it.',
        *scan_point_lines(summary.get('scan_operating_point')),
        f'Train + eval time: {summary["train_and_eval_seconds"]:.0f} s', '',
        f'Written to {summary["run_dir"]}{os.sep}'
    ]
    best = _best_scores(summary)
    lines += aligned_rows([(what, f'{path}{_file_note(path, best)}')
                           for what, path in files])
    lines.append(RULE)
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Generate, train, evaluate, summarise (see the module doc).

    Args:
        argv (Sequence[str], optional): the arguments (default: sys.argv).
    """
    args = parse_args(argv)
    import torch
    from mmengine.logging import print_log

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.utils.writing.atomic import atomic_write_text
    from mmlesion.utils.checkpoints.resume import recorded_last_checkpoint
    from mmlesion.utils.reporting.summary import best_checkpoints
    from mmlesion_cli.threads import thread_line, thread_record
    from mmlesion.utils.configs.cfg_options import ConfigOptionError
    start = time.time()
    try:  # a broken config or an option nothing reads: before any work
        cfg = build_cfg(args)
    except ConfigOptionError as err:
        sys.exit(f'error: {err}')
    data_root = Path(args.data_root)
    ensure_demo_data(data_root, args.seed)

    runner = build_runner(cfg)
    run_dir = Path(runner.log_dir)
    threads = thread_record(torch.get_num_threads())
    print_log(thread_line(threads), logger='current')  # and in the log
    runner.train()
    train_s = time.time() - start

    # Test the final model on the val split, drawing every val key slice.
    vis_dir = run_dir / 'vis_val'
    for hook in runner.hooks:
        if hasattr(hook, 'test_out_dir') and hasattr(hook, 'draw'):
            hook.draw = True
            hook.test_out_dir = str(vis_dir)  # absolute: not nested
    metrics = runner.test_val_split()  # the saved config keeps test
    last = recorded_last_checkpoint(str(run_dir))
    scan_point = None
    if last:  # the final model's per-scan point, for whole scans
        scan_point = record_scan_point(
            sorted(run_dir.glob('*.py'))[0], Path(last), data_root,
            run_dir, [p for p in run_dir.glob(
                f'best_*_epoch_{runner.epoch}.pth') if str(p) != last])
    total_s = time.time() - start

    out = run_dir / 'froc_val.json'
    summary = dict(
        config=args.config,
        data_root=str(data_root),
        train_and_eval_seconds=round(total_s, 1),
        train_seconds=round(train_s, 1),
        seed=args.seed,
        **dataclasses.asdict(threads),
        split='val',
        epoch=runner.epoch,
        metrics={k: float(v) for k, v in metrics.items()},
        best=[dataclasses.asdict(b) for b in best_checkpoints(runner)],
        run_dir=str(run_dir),
        log_dir=runner.log_dir,
        checkpoint=last or '',
        scan_operating_point=scan_point)
    files = [(what, p)
             for what, p in written_files(run_dir, runner.timestamp, vis_dir)
             if p != out] + [('FROC numbers', out)]
    summary['files'] = [[what, str(p)] for what, p in files]
    atomic_write_text(str(out), json.dumps(summary, indent=1))
    print_log(summary_text(summary, written_files(
        run_dir, runner.timestamp, vis_dir)), logger='current')
    if scan_point and 'error' in scan_point:
        sys.exit(1)  # the summary said why


if __name__ == '__main__':
    main()
