# Copyright (c) mmlesion contributors. All rights reserved.
"""Smoke-run configs: train a few iterations, predict, one table.

For every full-size config (or those given), build the model without
pretrained weights, run ``--iters`` training iterations with the config's
own optimiser wrapper, iteration-based schedulers and losses on synthetic
batches that have what its heads need (masks, 3D crops, LENS dataset ids,
FPR patches; :mod:`projects.study_demo.config_smoke`), in fp32 and with AMP
(``AmpOptimWrapper``; needs CUDA, skipped on a CPU), then predict one batch.
Prints one table (config, precision, first / last loss, finite, s/iter,
peak memory, predictions) and writes it as JSON. Exit status 1 when a run
failed.

On a GPU this proves the full-size configs; on a CPU use a size override
(``--size 64 --size-3d 32 --patch-size 8 32 32``), as the tests do.

Examples::

    python projects/study_demo/tools/smoke_configs.py --json work_dirs/smoke.json
    python projects/study_demo/tools/smoke_configs.py \\
        configs/lens/lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion.py \\
        --device cpu --precision fp32 --iters 3 --patch-size 8 32 32
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import os.path as osp
import sys
from typing import List, Optional, Sequence

from mmlesion_cli import tool_parser

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        'configs', nargs='*',
        help='config files (default: every full-size config under '
        'configs/, i.e. not _base_, demo or tiny)')
    parser.add_argument('--iters', type=int, default=10,
                        help='training iterations per run (>= 2)')
    parser.add_argument('--precision', nargs='+', default=['fp32', 'amp'],
                        choices=['fp32', 'amp'],
                        help='runs per config; AMP needs CUDA')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda, cuda:1 ... (default: cuda when '
                        'available, else cpu)')
    parser.add_argument('--batch-size', type=int,
                        help="images per batch (default: the config's, at "
                        'most 4 on a CPU)')
    parser.add_argument('--size', type=int, default=512,
                        help='2.5D image size in pixels')
    parser.add_argument('--size-3d', type=int,
                        help="3D crop edge in voxels (default: the config's "
                        'crop_size)')
    parser.add_argument('--patch-size', type=int, nargs=3,
                        metavar=('Z', 'Y', 'X'),
                        help="FPR patch (default: the config's patch_size)")
    parser.add_argument('--json', help='also write the rows here')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --json file')
    args = parser.parse_args(argv)
    if args.iters < 2:
        parser.error('--iters must be >= 2 (first and last loss)')
    if args.json and osp.exists(args.json) and not args.overwrite:
        parser.error(f'{args.json} exists; pass --overwrite to replace it')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.config_smoke import (format_smoke_table,
                                            full_size_configs, smoke_config)
    from mmlesion.utils import atomic_write_json, get_tool_logger
    logger = get_tool_logger('smoke_configs')
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    configs: List[str] = args.configs or full_size_configs(
        osp.join(ROOT, 'configs'))
    missing = [c for c in configs if not osp.isfile(c)]
    if missing:
        print(f'error: no such config: {missing}', file=sys.stderr)
        return 2
    rows = []
    total = len(configs) * len(args.precision)
    for config in configs:
        for precision in args.precision:
            row = smoke_config(
                config,
                iters=args.iters,
                amp=precision == 'amp',
                device=device,
                batch_size=args.batch_size,
                size=args.size,
                size_3d=args.size_3d,
                patch_size=args.patch_size)
            row['config'] = osp.relpath(config, ROOT) if osp.abspath(
                config).startswith(ROOT) else config
            rows.append(row)
            logger.info(f"[{len(rows)}/{total}] {row['config']} "
                        f"{precision}: {row['status']}"
                        + (f" ({row['reason']})" if row['reason'] else ''))
    print(format_smoke_table(rows))
    for row in rows:
        if row.get('where'):
            print(f"{row['config']} {row['precision']}: {row['reason']}\n    "
                  + '\n    '.join(row['where']))
    failed = [r for r in rows if r['status'] == 'failed']
    print(f'{len(rows) - len(failed)} of {len(rows)} runs ok or skipped, '
          f'{len(failed)} failed, device {device}')
    if args.json:
        atomic_write_json(args.json,
                          dict(device=device, iters=args.iters, rows=rows),
                          indent=1)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
