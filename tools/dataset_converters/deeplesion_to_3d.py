# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert DeepLesion (DL_info.csv + Images_png) into 3D scan chunks and the
common volume annotation file, with the rules of the 3D Aggregated Faster
R-CNN paper (Sec. V; see :mod:`mmlesion.datasets.deeplesion.as_3d`).

Every chunk (the released slices of a series, overlapping ranges joined) is
written as ``<out>/volumes/<series>_<first>-<last>.nii.gz`` (HU, native
spacing; ``LoadCTVolume(spacing_zyx=(1, 1, 1))`` resamples at load time),
and each official split as ``<out>/deeplesion3d_{train,val,test}.json``
(``<out>/REPLICA.txt`` too when the input is a release replica).
Annotations carry ``diameter_mm``, ``lesion_type`` and the merged
``dl_rows``; training lesions >= 48 mm are dropped (``--drop-large-mm``);
``Possibly_noisy`` rows are no lesions, only ignored boxes inside chunks of
other lesions (``--keep-noisy`` keeps them as lesions).

Example::

    python tools/dataset_converters/deeplesion_to_3d.py \\
        data/DeepLesion/DL_info.csv data/DeepLesion/Images_png \\
        data/DeepLesion3D

Bad input ends in one line naming the file and the DL_info row(s), not a
traceback: a malformed row (:func:`mmlesion.datasets.parse_dl_info`),
slices of a chunk that are missing or of other sizes, a lesion box outside
its slices. An input larger than ``--max-input-mb`` (default 100 MB; the
released DL_info.csv is about 5 MB) is refused before it is read, so a wrong
file (e.g. a 2 GB JSON) cannot fill the memory.
"""
import argparse
import os
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List

import numpy as np

from mmlesion_cli import tool_parser
from mmlesion_cli.package_data import package_json

SPLITS = {1: 'train', 2: 'val', 3: 'test'}
#: Largest DL_info input read (MB) unless ``--max-input-mb`` says otherwise.
MAX_INPUT_MB = 100.


def check_input_sizes(paths: List[str], max_mb: float) -> None:
    """Refuse missing inputs and inputs over ``max_mb`` before reading."""
    for path in paths:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: no such DL_info.csv file')
        size_mb = osp.getsize(path) / 2**20
        if size_mb > max_mb:
            raise ValueError(
                f'{path}: {size_mb:.0f} MB, more than --max-input-mb '
                f'{max_mb:g} (the released DL_info.csv is about 5 MB): not a '
                'DL_info.csv? Raise --max-input-mb if it is one')


def _chunk_entry(image_root: str, series: str, first: int, last: int,
                 spacing_xyz, lesions, where: str):
    """Load one chunk and its annotations; errors name the DL_info rows."""
    from mmlesion.datasets.deeplesion.as_3d import (lesion_box,
                                                    load_chunk_volume)
    rows = sorted({r for les in lesions for r in les.rows})
    try:
        vol = load_chunk_volume(image_root, series, first, last, spacing_xyz)
    except ValueError as err:  # slices of other sizes, unreadable PNG
        raise ValueError(f'{where}: rows {rows} (series {series}, slices '
                         f'{first}-{last}): {err}') from err
    anns = []
    size_xyz = vol.shape_zyx[::-1]
    for les in lesions:
        box = lesion_box(les, spacing_xyz)
        if not all(np.isfinite(box)) or not all(
                box[k] < size_xyz[k] and box[k + 3] > 0 for k in range(3)):
            raise ValueError(
                f'{where}: rows {les.rows}, field Bounding_boxes / '
                f'Key_slice_index: the lesion box {box} (voxels) lies '
                f'outside its slices (x, y, z size {size_xyz})')
        centre = vol.voxel_to_world(les.centre_xyz[::-1][None])[0]
        anns.append(dict(
            bbox=box, center_world=centre.tolist(),
            diameter_mm=float(les.diameter_mm), label=0,
            ignore=bool(les.ignore), lesion_type=int(les.lesion_type),
            dl_rows=les.rows))
    return vol, anns


def convert(dl_info: List[str], image_root: str, out_dir: str,
            settings=None, overwrite: bool = False,
            max_input_mb: float = MAX_INPUT_MB) -> Dict[str, int]:
    """Run the conversion with ``settings`` (an ``As3DSettings``; None:
    its defaults); returns lesion counts per split (ignored
    ``Possibly_noisy`` boxes not counted)."""
    import SimpleITK as sitk
    from mmengine.utils import track_iter_progress

    from mmlesion.apps.own_data.common import mark_replica_outputs
    from mmlesion.datasets.deeplesion.as_3d import (As3DSettings,
                                                    deeplesion_to_3d)
    from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
    from mmlesion.datasets.volumes.annotation_file import (
        volume_entry, write_annotation_file)
    from mmlesion.utils.writing.atomic import atomic_save_with
    check_input_sizes(dl_info, max_input_mb)
    records = [r for path in dl_info for r in parse_dl_info(path)]
    settings = settings or As3DSettings()
    chunks = deeplesion_to_3d(records, settings)
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
        vol, anns = _chunk_entry(image_root, series, first, last,
                                 spacing[series], lesions, ', '.join(dl_info))
        rel = osp.join('volumes', f'{series}_{first:03d}-{last:03d}.nii.gz')
        path = osp.join(out_dir, rel)
        if osp.exists(path) and not overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite')
        atomic_save_with(path, lambda p: sitk.WriteImage(vol.to_sitk(), p))
        split = SPLITS[split_of[series]]
        entries[split].append(volume_entry(
            vol, f'{series}_{first:03d}-{last:03d}', rel, anns))
        counts[split] += sum(not a['ignore'] for a in anns)
    for split, path in outputs.items():
        write_annotation_file(path, 'deeplesion3d', ['lesion'],
                              entries[split], overwrite=overwrite,
                              small_mm=settings.small_mm,
                              drop_large_mm=settings.drop_large_mm,
                              drop_noisy=settings.drop_noisy)
    # chunks of a release replica are synthetic too: out_dir says so
    mark_replica_outputs([*dl_info, image_root], folders=[out_dir],
                         made_by='tools/dataset_converters/'
                         'deeplesion_to_3d.py')
    return dict(counts)


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    shown = package_json('datasets/deeplesion/tool_defaults.json')[
        'As3DSettings']
    parser.add_argument('dl_info', nargs='+', help='DL_info.csv file(s) '
                        'followed by the Images_png folder and out dir')
    parser.add_argument(
        '--small-mm', type=float, default=shown['small_mm'],
        help='lesions with a diameter under this (mm) are small ones for the '
        'sub-volume rule')
    parser.add_argument(
        '--drop-large-mm', type=float, default=shown['drop_large_mm'],
        help='training lesions with a diameter of at least this (mm) are '
        'dropped')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='replace existing outputs')
    parser.add_argument('--keep-noisy', action='store_true',
                        help='keep Possibly_noisy rows as lesions (the paper '
                        'removes them)')
    parser.add_argument(
        '--max-input-mb', type=float, default=MAX_INPUT_MB,
        help='refuse DL_info inputs larger than this (MB) before reading')
    args = parser.parse_args(argv)
    if len(args.dl_info) < 3:
        parser.error('give DL_info.csv file(s), Images_png and an out dir')
    return args


def main(argv=None) -> Dict[str, int]:
    args = parse_args(argv)
    *csvs, images, out = args.dl_info
    from mmlesion.datasets.deeplesion.as_3d import As3DSettings
    settings = As3DSettings(args.small_mm, args.drop_large_mm,
                            drop_noisy=not args.keep_noisy)
    counts = convert(csvs, images, out, settings, args.overwrite,
                     max_input_mb=args.max_input_mb)
    print(f'lesions per split: {counts} -> {out}')
    return counts


def cli(argv=None) -> int:
    """:func:`main` with bad input as one line on stderr and status 1."""
    try:
        main(argv)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(cli())
