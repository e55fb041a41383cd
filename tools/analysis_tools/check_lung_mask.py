# Copyright (c) mmlesion contributors. All rights reserved.
"""Compare the computed lung mask of a CT with a reference label map.

Prints the Dice of :func:`mmlesion.datasets.volumes.compute_lung_mask`
against the reference lung labels (e.g. TotalSegmentator's five lobes,
labels 10-14 of its v2 ``total`` task, or LUNA16's ``seg-lungs-LUNA16``
masks, labels 3 and 4), the share of reference voxels the crop of
``CropToLungs`` keeps at each margin, and the crop box against the
reference's box, on the scan's own grid and optionally resampled.

Example (the check quoted in configs/aggregated3d/README.md, on
TotalSegmentator's example CT and its label map)::

    python tools/analysis_tools/check_lung_mask.py \\
        totalsegmentator/example_ct_sm.nii.gz \\
        totalsegmentator/example_seg.nii.gz \\
        --labels 10 11 12 13 14 --spacing 1 1 1
"""
import time
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from mmlesion_cli import tool_parser

if TYPE_CHECKING:
    from mmlesion.datasets.volumes import CTVolume


def check(vol: 'CTVolume', ref: np.ndarray, margins: Sequence[float]) -> dict:
    """Dice, time and crop coverage of the computed mask on one grid."""
    from mmlesion.datasets.volumes import (CTVolume, compute_lung_mask,
                                           mask_region)
    t0 = time.perf_counter()
    mask = compute_lung_mask(vol)
    seconds = time.perf_counter() - t0
    dice = 2 * (mask & ref).sum() / max(mask.sum() + ref.sum(), 1)
    out = dict(shape=vol.shape_zyx, spacing=vol.spacing_zyx,
               dice=float(dice), seconds=seconds, ref_voxels=int(ref.sum()),
               ref_box=mask_region(CTVolume(ref, vol.spacing_zyx,
                                            vol.origin_xyz, vol.direction),
                                   vol))
    mask_vol = CTVolume(mask, vol.spacing_zyx, vol.origin_xyz, vol.direction)
    out['crops'] = []
    for margin in margins:
        region = mask_region(mask_vol, vol, margin)
        inside = 0 if region is None else int(ref[tuple(
            slice(a, b) for a, b in zip(*region))].sum())
        out['crops'].append((margin, region, inside))
    return out


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = tool_parser(__doc__)
    parser.add_argument('ct', help='the CT (NIfTI, .mhd or DICOM folder)')
    parser.add_argument('reference', help='label map on the CT grid')
    parser.add_argument('--labels', type=int, nargs='+', required=True,
                        help='lung labels of the reference')
    parser.add_argument('--margins', type=float, nargs='+',
                        default=[10., 15.], help='crop margins (mm)')
    parser.add_argument('--spacing', type=float, nargs=3,
                        help='also check on this (z, y, x) grid (mm)')
    args = parser.parse_args(argv)
    from mmlesion.datasets.volumes import (CTVolume, VolumeOptions,
                                           load_ct_volume, resample_volume)
    vol = load_ct_volume(args.ct)
    seg = load_ct_volume(args.reference, scan_checks=dict(force_ct=True),
                         options=VolumeOptions(dtype=None))
    if seg.shape_zyx != vol.shape_zyx:
        parser.error(f'{args.reference}: shape {seg.shape_zyx} differs from '
                     f'the CT {vol.shape_zyx}')
    ref = np.isin(seg.array, args.labels)
    grids = {'native': (vol, ref)}
    if args.spacing:
        ref_res = resample_volume(
            CTVolume(ref.astype(np.uint8), vol.spacing_zyx, vol.origin_xyz,
                     vol.direction), args.spacing, 'nearest', 0.).array > 0
        grids['resampled'] = (resample_volume(vol, args.spacing), ref_res)
    results = {}
    for name, (v, r) in grids.items():
        res = check(v, r, args.margins)
        results[name] = res
        print(f"{name} grid {res['shape']} at {res['spacing']} mm: Dice "
              f"{res['dice']:.3f} ({res['ref_voxels']} reference voxels, "
              f"{res['seconds']:.2f} s); reference box {res['ref_box']}")
        for margin, region, inside in res['crops']:
            print(f'  crop with {margin:g} mm margin {region}: keeps '
                  f"{inside}/{res['ref_voxels']} reference voxels")
    return results


if __name__ == '__main__':
    main()
