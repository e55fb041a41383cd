# Copyright (c) mmlesion contributors. All rights reserved.
"""Benchmark the dataset converter: scans per minute against the plain read.

Writes ``--scans`` synthetic CT volumes with label masks (NIfTI, ``--size``
slices of 256 x 256, two lesions each) into a temporary folder and times,
in one run and on the same files:

- baseline: the plain read of every scan and its mask
  (``load_ct_volume``, one process), what any conversion must do;
- the converter (``convert_dataset``, preset ``folder``) with each of
  ``--workers`` (processes; 1: none): read, components, boxes, records,
  the annotation file.

Prints scans per minute (wall clock) of each and its ratio to the
baseline; the converter's annotation files must be identical across the
worker counts::

    python projects/benchmarks/benchmark_convert_dataset.py
    python projects/benchmarks/benchmark_convert_dataset.py --scans 16 \
        --workers 1 2 4

On a shared machine the wall clock varies with the others' load: compare
the ratios of one run, not runs of different times.

Exit status: 0 when the annotation files are identical, 1 otherwise.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time
from typing import Optional, Sequence

import numpy as np

from mmlesion_cli import tool_parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--scans', type=int, default=8,
                        help='synthetic scans written')
    parser.add_argument('--size', type=int, default=48,
                        help='slices per scan (256 x 256 each)')
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2],
                        help='process counts of the converter timed')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    return parser.parse_args(argv)


def write_scans(root: str, num: int, depth: int, seed: int) -> None:
    """``num`` CT volumes under ``root/img`` and masks under ``root/lab``."""
    from mmlesion.testing.volume_files import write_volume
    rng = np.random.default_rng(seed)
    for i in range(num):
        img = rng.normal(-100, 40, (depth, 256, 256)).astype(np.int16)
        img[:, :8] = -1000  # air: a CT in HU
        seg = np.zeros(img.shape, np.uint8)
        for _ in range(2):
            z, y, x = rng.integers(4, (depth - 10, 240, 240))
            seg[z:z + 6, y:y + 12, x:x + 12] = 1
        write_volume(osp.join(root, 'img', f'scan{i:03d}.nii.gz'), img)
        write_volume(osp.join(root, 'lab', f'scan{i:03d}.nii.gz'), seg)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mmlesion.apps.own_data import ConvertSettings, convert_dataset
    from mmlesion.datasets.volumes import VolumeOptions, load_ct_volume
    with tempfile.TemporaryDirectory() as root:
        write_scans(root, args.scans, args.size, args.seed)
        img, lab = osp.join(root, 'img'), osp.join(root, 'lab')
        t0 = time.perf_counter()
        for name in sorted(os.listdir(img)):
            load_ct_volume(osp.join(img, name))
            load_ct_volume(osp.join(lab, name),
                           scan_checks=dict(force_ct=True),
                           options=VolumeOptions(dtype=None))
        base = args.scans * 60 / (time.perf_counter() - t0)
        print(f'plain read: {base:.1f} scans / min (1 process)')
        texts = set()
        for workers in args.workers:
            out = osp.join(root, f'w{workers}.json')
            t0 = time.perf_counter()
            convert_dataset(ConvertSettings(img, out, masks=lab,
                                            workers=workers,
                                            show_progress=False))
            rate = args.scans * 60 / (time.perf_counter() - t0)
            print(f'converter, {workers} worker(s): {rate:.1f} scans / min, '
                  f'{rate / base:.2f} x the plain read')
            with open(out) as f:
                texts.add(f.read())
    same = len(texts) == 1
    print('annotation files identical across worker counts:', same)
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main())
