# Copyright (c) mmlesion contributors. All rights reserved.
"""Write the synthetic CT volume set (LUNA16, KiTS19 and LiTS layouts).

Example::

    python projects/study_demo/tools/generate_demo_volumes.py --out data/demo_volumes

See :mod:`projects.study_demo.synthetic.volumes` for what is written.
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import sys

from mmlesion_cli import tool_parser
from projects.study_demo.synthetic.generator_tool import (demo_data_tool,
                                                          shown_defaults)


def parse_args(argv=None) -> argparse.Namespace:
    # DemoVolumeConfig's defaults, read without importing mmlesion
    config = shown_defaults('DemoVolumeConfig')
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


def build_generator(args: argparse.Namespace):
    """The generator of the options."""
    from projects.study_demo.synthetic.volumes import DemoVolumeGenerator
    return DemoVolumeGenerator(
        seed=args.seed, num_luna=args.num_luna, num_kits=args.num_kits,
        num_lits=args.num_lits, val_fraction=args.val_fraction)


def main(argv=None) -> int:
    return demo_data_tool().main(argv, parse_args, build_generator)


if __name__ == '__main__':
    sys.exit(main())
