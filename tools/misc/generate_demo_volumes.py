# Copyright (c) mmlesion contributors. All rights reserved.
"""Write the synthetic CT volume set (LUNA16, KiTS19 and LiTS layouts).

Example::

    python tools/misc/generate_demo_volumes.py --out data/demo_volumes

See :mod:`mmlesion.apps.demo.volumes` for what is written.
"""
import argparse
import json
import sys
import time

from mmlesion_cli import package_json, tool_parser

def parse_args(argv=None) -> argparse.Namespace:
    # DemoVolumeConfig's defaults, read without importing mmlesion
    config = package_json(
        'apps/demo/tool_defaults.json')['DemoVolumeConfig']
    parser = tool_parser(__doc__)
    parser.add_argument('--out', default='data/demo_volumes',
                        help='output folder')
    parser.add_argument('--seed', type=int, default=config['seed'],
                        help='random seed')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='replace a set previously written by this tool')
    parser.add_argument('--num-luna', type=int,
                        default=config['num_luna'],
                        help='chest scans (LUNA16 layout)')
    parser.add_argument('--num-kits', type=int,
                        default=config['num_kits'],
                        help='kidney scans (KiTS19 layout)')
    parser.add_argument('--num-lits', type=int,
                        default=config['num_lits'],
                        help='liver scans (LiTS layout)')
    parser.add_argument('--val-fraction', type=float,
                        default=config['val_fraction'],
                        help='fraction of each dataset in the val split')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar or summary')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmlesion.apps.demo.volumes import DemoVolumeGenerator
    try:
        gen = DemoVolumeGenerator(
            seed=args.seed, num_luna=args.num_luna, num_kits=args.num_kits,
            num_lits=args.num_lits, val_fraction=args.val_fraction)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        summary = gen.generate(args.out, overwrite=args.overwrite,
                               show_progress=not args.quiet)
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if not args.quiet:
        summary['seconds'] = round(time.perf_counter() - start, 1)
        print(json.dumps(summary, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
