# Copyright (c) mmlesion contributors. All rights reserved.
"""Benchmark the reorientation of ``load_ct_volume`` against SimpleITK's.

``load_ct_volume`` brings every scan to the canonical LPS axial grid. It
does what ``SimpleITK.DICOMOrient(img, 'LPS')`` does, with one numpy
transpose / flip copy. This script writes a KiTS19-like volume (the first
NIfTI axis is the axial one, as in the released KiTS19 files), or takes a
given file, and compares in one run:

- baseline: ``sitk.ReadImage`` + ``sitk.DICOMOrient`` + ``GetArrayFromImage``;
- mmlesion: ``load_ct_volume(path, dtype=None)``.

It checks that the arrays, spacings and origins are identical and prints
both times (process CPU and wall clock, best of ``--repeat``) and the
ratio::

    python projects/benchmarks/benchmark_volume_io.py
    python projects/benchmarks/benchmark_volume_io.py \
        --file data/kits19/case_00005/segmentation.nii.gz

Exit status: 0 when the results are identical, 1 otherwise.
"""
import argparse
import os.path as osp
import sys
import tempfile
import time
from typing import Optional, Sequence

import numpy as np

from mmlesion_cli import tool_parser

# KiTS19's storage: index axis 0 is the axial one (see case_00002)
KITS_DIRECTION = (0., 0., 1., 0., 1., 0., -1., 0., 0.)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--file', help='a volume to read (default: write a '
                        'synthetic KiTS19-like one)')
    parser.add_argument('--slices', type=int, default=300,
                        help='slices of the synthetic volume (512 x 512)')
    parser.add_argument(
        '--repeat', type=int, default=3,
        help='timed reads of each reader (best kept)')
    return parser.parse_args(argv)


def _time(fn, repeat):
    best_cpu = best_wall = float('inf')
    out = None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return out, best_cpu, best_wall


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import SimpleITK as sitk

    from mmlesion.datasets.volumes import VolumeOptions, load_ct_volume
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            rng = np.random.default_rng(0)
            arr = rng.integers(0, 3, (512, 512, args.slices), dtype=np.uint8)
            img = sitk.GetImageFromArray(arr)  # size (slices, 512, 512)
            img.SetSpacing((2.5, 0.8, 0.8))
            img.SetDirection(KITS_DIRECTION)
            path = osp.join(tmp, 'segmentation.nii')
            sitk.WriteImage(img, path)

        def baseline():
            ref = sitk.DICOMOrient(sitk.ReadImage(path), 'LPS')
            return ref, sitk.GetArrayFromImage(ref)

        def ours():
            return load_ct_volume(path, scan_checks=dict(force_ct=True),
                                  options=VolumeOptions(dtype=None))

        (ref, ref_arr), b_cpu, b_wall = _time(baseline, args.repeat)
        vol, o_cpu, o_wall = _time(ours, args.repeat)
    same = (np.array_equal(vol.array, ref_arr)
            and np.allclose(vol.origin_xyz, ref.GetOrigin())
            and np.allclose(vol.spacing_zyx, ref.GetSpacing()[::-1]))
    print(f'volume {vol.shape_zyx} (z, y, x) {vol.array.dtype}, from '
          f'{path if args.file else "a synthetic KiTS19-like NIfTI"}')
    print(f'SimpleITK DICOMOrient: cpu {b_cpu:.2f} s, wall {b_wall:.2f} s')
    print(f'load_ct_volume:        cpu {o_cpu:.2f} s, wall {o_wall:.2f} s')
    print(f'ratio (baseline / mmlesion): cpu {b_cpu / o_cpu:.1f}x, wall '
          f'{b_wall / o_wall:.1f}x; identical: {same}')
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main())
