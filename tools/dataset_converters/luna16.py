# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert LUNA16 to mmlesion's volume annotation file (+ 2D export).

Nodules of ``annotations.csv`` become boxes (the cube of the sphere of
their diameter around the world centre), findings of
``annotations_excluded.csv`` ``ignore: true`` boxes. See
``mmlesion/datasets/converters/luna16.py`` and ``data/README.md``.

Outputs made from a release replica (``REPLICA.txt`` in the input or
an ancestor) are marked synthetic too: ``REPLICA.txt`` in the export
folder, ``<out>.REPLICA.txt`` beside an annotation file outside the
replica.

Example::

    python tools/dataset_converters/luna16.py data/LUNA16 \
        --annotations data/LUNA16/annotations.csv \
        --excluded data/LUNA16/annotations_excluded.csv \
        --seriesuids data/LUNA16/seriesuids.csv \
        --out data/LUNA16/luna16_volumes.json \
        --export-2d data/LUNA16_2d --val-fraction 0.1 --test-fraction 0.2
"""
import argparse
import sys
from typing import Optional, Sequence

from mmlesion_cli import tool_parser
from mmlesion_cli.converter_args import add_common_args


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        'scan_root', help='folder with subset*/<seriesuid>.mhd (+ .raw)')
    parser.add_argument(
        '--annotations', required=True,
        help='annotations.csv (seriesuid, coordX, coordY, coordZ, '
        'diameter_mm)')
    parser.add_argument(
        '--excluded',
        help='annotations_excluded.csv: findings that become ignored boxes')
    parser.add_argument(
        '--seriesuids', help='seriesuids.csv: convert exactly these scans')
    add_common_args(parser, lesion_type=5, window=(-1350, 150))
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)

    from mmlesion.datasets.converters import convert_luna16
    from mmlesion.datasets.converters.cli import common_kwargs, run_cli
    return run_cli(
        lambda a: convert_luna16(
            a.scan_root, a.annotations, a.out, excluded=a.excluded,
            seriesuids=a.seriesuids, **common_kwargs(a)), args)


if __name__ == '__main__':
    sys.exit(main())
