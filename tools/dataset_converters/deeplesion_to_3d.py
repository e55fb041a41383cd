# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert DeepLesion (DL_info.csv + Images_png) into 3D scan chunks and the
common volume annotation file, with the rules of the 3D Aggregated Faster
R-CNN paper (Sec. V; see :mod:`mmlesion.datasets.deeplesion_3d`).

Every chunk (the released slices of a series, overlapping ranges joined) is
written as ``<out>/volumes/<series>_<first>-<last>.nii.gz`` (HU, native
spacing; ``LoadCTVolume(spacing_zyx=(1, 1, 1))`` resamples at load time),
and each official split as ``<out>/deeplesion3d_{train,val,test}.json``.
Annotations carry ``diameter_mm``, ``lesion_type`` and the merged
``dl_rows``; training lesions >= 48 mm are dropped (``--drop-large-mm``);
``Possibly_noisy`` rows are no lesions, only ignored boxes inside chunks of
other lesions (``--keep-noisy`` keeps them as lesions).

Example::

    python tools/dataset_converters/deeplesion_to_3d.py \\
        data/DeepLesion/DL_info.csv data/DeepLesion/Images_png \\
        data/DeepLesion3D
"""
import argparse
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List

import numpy as np
import SimpleITK as sitk
from mmengine.utils import track_iter_progress

from mmlesion.datasets.deeplesion_3d import (deeplesion_to_3d, lesion_box,
                                             load_chunk_volume)
from mmlesion.datasets.dl_info import parse_dl_info
from mmlesion.datasets.volumes.annotation_file import (volume_entry,
                                                       write_annotation_file)
from mmlesion.utils.atomic_io import atomic_save_with

SPLITS = {1: 'train', 2: 'val', 3: 'test'}


def convert(dl_info: List[str], image_root: str, out_dir: str,
            small_mm: float = 10.0, drop_large_mm: float = 48.0,
            overwrite: bool = False, drop_noisy: bool = True
            ) -> Dict[str, int]:
    """Run the conversion; returns lesion counts per split (ignored
    ``Possibly_noisy`` boxes not counted)."""
    records = [r for path in dl_info for r in parse_dl_info(path)]
    chunks = deeplesion_to_3d(records, small_mm, drop_large_mm,
                              drop_noisy=drop_noisy)
    spacing = {}
    split_of = {}
    for rec in records:
        series = rec.file_name.rsplit('_', 1)[0]
        spacing[series] = rec.spacing
        split_of[series] = rec.split
    outputs = {s: osp.join(out_dir, f'deeplesion3d_{s}.json')
               for s in SPLITS.values()}
    for path in outputs.values():
        if osp.exists(path) and not overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite')
    entries = defaultdict(list)
    counts = defaultdict(int)
    os.makedirs(osp.join(out_dir, 'volumes'), exist_ok=True)
    for (series, first, last), lesions in track_iter_progress(
            list(chunks.items())):
        sp = spacing[series]
        vol = load_chunk_volume(image_root, series, first, last, sp)
        rel = osp.join('volumes', f'{series}_{first:03d}-{last:03d}.nii.gz')
        path = osp.join(out_dir, rel)
        if osp.exists(path) and not overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite')
        atomic_save_with(path, lambda p: sitk.WriteImage(vol.to_sitk(), p))
        anns = []
        for les in lesions:
            centre = vol.voxel_to_world(les.centre_xyz[::-1][None])[0]
            anns.append(dict(
                bbox=lesion_box(les, sp), center_world=centre.tolist(),
                diameter_mm=float(les.diameter_mm), label=0,
                ignore=bool(les.ignore), lesion_type=int(les.lesion_type),
                dl_rows=les.rows))
        split = SPLITS[split_of[series]]
        entries[split].append(volume_entry(
            vol, f'{series}_{first:03d}-{last:03d}', rel, anns))
        counts[split] += sum(not a['ignore'] for a in anns)
    for split, path in outputs.items():
        write_annotation_file(path, 'deeplesion3d', ['lesion'],
                              entries[split], overwrite=overwrite,
                              small_mm=small_mm, drop_large_mm=drop_large_mm,
                              drop_noisy=drop_noisy)
    return dict(counts)


def main(argv=None) -> Dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('dl_info', nargs='+', help='DL_info.csv file(s) '
                        'followed by the Images_png folder and out dir')
    parser.add_argument('--small-mm', type=float, default=10.0)
    parser.add_argument('--drop-large-mm', type=float, default=48.0)
    parser.add_argument('--overwrite', action='store_true')
    parser.add_argument('--keep-noisy', action='store_true',
                        help='keep Possibly_noisy rows as lesions (the paper '
                        'removes them)')
    args = parser.parse_args(argv)
    if len(args.dl_info) < 3:
        parser.error('give DL_info.csv file(s), Images_png and an out dir')
    *csvs, images, out = args.dl_info
    counts = convert(csvs, images, out, args.small_mm, args.drop_large_mm,
                     args.overwrite, drop_noisy=not args.keep_noisy)
    print(f'lesions per split: {counts} -> {out}')
    return counts


if __name__ == '__main__':
    main()
