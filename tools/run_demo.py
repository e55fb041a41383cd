# Copyright (c) mmlesion contributors. All rights reserved.
"""The main job of the README, on the synthetic demo data.

1. Generates the demo DeepLesion set (release layout) if it is missing.
2. Trains the demo baseline (mmdet Faster R-CNN, ResNet-18 FPN, 3 slices,
   no pretrained weights) with mmengine's Runner.
3. Evaluates the final model on the demo **val** split with the official
   FROC protocol (``FROCMetric``, PROTOCOLS.md Sec. 1) and COCO mAP, draws
   detections (green) and ground truth (red) on some val key slices.

Everything lands in a new folder ``<work-dir>/<timestamp>/`` (an earlier
run is never overwritten): the checkpoint, the training log, the FROC table
(``froc_val.json`` and the log), ``froc_curve.png`` and every val key
slice drawn in ``vis_val/``.

Example::

    python tools/run_demo.py                      # defaults below
    python tools/run_demo.py --epochs 2 --work-dir work_dirs/quick
"""
import argparse
import json
import os
import os.path as osp
import time
from pathlib import Path

from mmengine.config import Config, DictAction

from mmlesion_cli import tool_parser

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / 'configs' / 'demo' / \
    'faster_rcnn_r18_fpn_1x_demo_deeplesion.py'


def parse_args() -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--config', default=str(DEFAULT_CONFIG),
        help='the demo config')
    parser.add_argument(
        '--data-root',
        default=str(REPO / 'data' / 'demo_deeplesion'),
        help='demo data folder; generated there if it has no DL_info.csv')
    parser.add_argument(
        '--work-dir', default=str(REPO / 'work_dirs' / 'demo'),
        help='checkpoints, logs and the results')
    parser.add_argument('--epochs', type=int, help='override max_epochs')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='training seed')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs')
    return parser.parse_args()


def ensure_demo_data(data_root: Path, seed: int) -> None:
    """Generate the demo set into ``data_root`` unless it is already there."""
    from mmengine.logging import print_log

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.datasets.demo import generate_demo_deeplesion
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


def build_cfg(args: argparse.Namespace, run_dir: Path) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    data_root = osp.join(osp.abspath(args.data_root), '')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    if args.epochs is not None:
        cfg.train_cfg.max_epochs = args.epochs
        cfg.train_cfg.val_interval = max(args.epochs, 1)
    cfg.work_dir = str(run_dir)
    cfg.randomness = dict(seed=args.seed)
    # Final evaluation on the val split (the demo's test split stays unseen).
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    return cfg


def main() -> None:
    args = parse_args()
    from mmengine.runner import Runner

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.utils.atomic_io import atomic_write_text
    torch_threads = os.environ.get('OMP_NUM_THREADS')
    start = time.time()
    data_root = Path(args.data_root)
    ensure_demo_data(data_root, args.seed)

    run_dir = Path(args.work_dir) / time.strftime('%Y%m%d_%H%M%S')
    if run_dir.exists():
        raise FileExistsError(f'{run_dir} already exists; not overwriting.')
    cfg = build_cfg(args, run_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_s = time.time() - start

    # Test the final model on the val split, drawing every val key slice.
    for hook in runner.hooks:
        if hasattr(hook, 'test_out_dir') and hasattr(hook, 'draw'):
            hook.draw = True
            hook.test_out_dir = 'vis_val'
    metrics = runner.test()
    total_s = time.time() - start

    summary = dict(
        config=args.config,
        data_root=str(data_root),
        train_and_eval_seconds=round(total_s, 1),
        train_seconds=round(train_s, 1),
        omp_num_threads=torch_threads,
        metrics={k: float(v) for k, v in metrics.items()},
        log_dir=runner.log_dir,
        checkpoint=_last_checkpoint(run_dir))
    out = Path(runner.log_dir) / 'froc_val.json'
    atomic_write_text(str(out), json.dumps(summary, indent=1))
    _print_summary(summary, Path(runner.log_dir))


def _last_checkpoint(run_dir: Path) -> str:
    last = run_dir / 'last_checkpoint'
    return last.read_text().strip() if last.is_file() else ''


def _print_summary(summary: dict, log_dir: Path) -> None:
    from mmengine.logging import print_log
    m = summary['metrics']
    lines = ['', '=' * 64, 'mmlesion demo: Faster R-CNN R18-FPN, 3 slices',
             '=' * 64]
    rates = [k for k in m if k.startswith('froc/sens@')]
    for key in rates:
        lines.append(f'  val sensitivity at {key[10:]:>4} FPs/image: '
                     f'{m[key]:.3f}')
    for key in ('froc/mean@0.5-4', 'froc/bbox_mAP',
                'froc/bbox_mAP_50'):
        if key in m:
            lines.append(f'  {key:<28}: {m[key]:.3f}')
    lines += [
        f'  train + eval time           : '
        f'{summary["train_and_eval_seconds"]:.0f} s',
        f'  checkpoint                  : {summary["checkpoint"]}',
        f'  log, FROC curve, detections : {log_dir}',
        f'  drawn val slices            : {log_dir / "vis_val"}',
        '=' * 64
    ]
    print_log('\n'.join(lines), logger='current')


if __name__ == '__main__':
    main()
