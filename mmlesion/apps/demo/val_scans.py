# Copyright (c) mmlesion contributors. All rights reserved.
"""The demo DeepLesion set's validation chunks as scans with their lesions
in 3D (:func:`write_val_scans`), for the per-scan operating point
``tools/run_demo.py`` records (``tools/eval_whole_scan.py --calibrate``).

A chunk is what the release stores of a series: the slices within
``context_mm`` of its key slices, overlapping ranges joined
(:func:`~mmlesion.datasets.deeplesion.as_3d.chunk_ranges`, the 3D
Aggregated Faster R-CNN's sub-volumes), 20-25 mm along z. Its lesions are
every lesion the generator drew in it (``demo_meta.json``), annotated in
``DL_info.csv`` or not, each the box of its ellipsoid: unlike DeepLesion's
own key-slice boxes, the demo knows every lesion's 3D extent.
"""
import json
import math
import os.path as osp
from pathlib import Path
from typing import Dict, List

import numpy as np

from .settings import META_FILE

#: The annotation file :func:`write_val_scans` writes in its folder.
VAL_SCANS_FILE = 'val_scans.json'


def ellipsoid_box(lesion: dict, spacing: float, z_offset: float,
                  interval: float) -> List[float]:
    """The continuous voxel box ``[x1, y1, z1, x2, y2, z2]`` of a
    ``demo_meta.json`` lesion (voxel centres at integers, as its
    ``center_px``): its in-plane ellipse turned by ``angle``, its axial
    semi-axis along z.

    Args:
        lesion (dict): ``center_px``, ``center_mm``, ``semi_axes_mm`` and
            ``angle`` (radians, in image coordinates).
        spacing (float): pixel spacing (mm).
        z_offset (float): the chunk's first slice position (mm).
        interval (float): slice interval (mm).
    """
    a, b, c = lesion['semi_axes_mm']
    cos, sin = math.cos(lesion['angle']), math.sin(lesion['angle'])
    half_x = math.hypot(a * cos, b * sin) / spacing
    half_y = math.hypot(a * sin, b * cos) / spacing
    x, y = lesion['center_px']
    z = (lesion['center_mm'][2] - z_offset) / interval
    half_z = c / interval
    return [x - half_x, y - half_y, z - half_z, x + half_x, y + half_y,
            z + half_z]


def _series_lesions(meta_path: str) -> Dict[str, dict]:
    """Per series of ``demo_meta.json``: its first key slice's
    ``key_index``, ``z_mm``, ``interval`` and ``spacing``, and every lesion
    drawn for its key slices (``lesions``, each once)."""
    with open(meta_path) as f:
        meta = json.load(f)
    out: Dict[str, dict] = {}
    for key in meta['key_slices']:
        series, index = osp.splitext(key['file_name'])[0].rsplit('_', 1)
        entry = out.setdefault(series, dict(
            key_index=int(index), z_mm=float(key['z_mm']),
            interval=float(key['slice_interval']),
            spacing=float(key['spacing']), lesions={}))
        for lesion in key['lesions']:
            entry['lesions'].setdefault(lesion['lesion_id'], lesion)
    return out


def write_val_scans(data_root: str, out_dir: str) -> Path:
    """Write every validation chunk of the demo set in ``data_root`` as a
    NIfTI scan into ``out_dir/volumes/`` and the common volume annotation
    file ``out_dir/val_scans.json`` (module doc); returns its path.

    Raises:
        FileNotFoundError: no ``DL_info.csv`` or ``demo_meta.json``, or a
            slice of a chunk.
        ValueError: no validation row.
    """
    import SimpleITK as sitk

    from mmlesion.datasets.deeplesion.as_3d import (chunk_ranges,
                                                    load_chunk_volume)
    from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
    from mmlesion.datasets.volumes.annotation_file import (
        volume_entry, write_annotation_file)
    from mmlesion.utils.writing.atomic import atomic_save_with
    records = [r for r in parse_dl_info(osp.join(data_root, 'DL_info.csv'))
               if r.split == 2]
    truth = _series_lesions(osp.join(data_root, META_FILE))
    spacing = {r.series_name: r.spacing for r in records}
    entries = []
    out = Path(out_dir)
    (out / 'volumes').mkdir(parents=True, exist_ok=True)
    for series, ranges in sorted(chunk_ranges(records).items()):
        info = truth[series]
        for first, last in ranges:
            volume = load_chunk_volume(osp.join(data_root, 'Images_png'),
                                       series, first, last, spacing[series])
            z_offset = info['z_mm'] + (first - info['key_index']) * info[
                'interval']
            annotations = []
            for lesion in info['lesions'].values():
                box = ellipsoid_box(lesion, info['spacing'], z_offset,
                                    info['interval'])
                if box[5] < -.5 or box[2] > last - first + .5:
                    continue  # outside this chunk's slices
                # the part within them
                box[2], box[5] = max(box[2], -.5), min(box[5],
                                                       last - first + .5)
                annotations.append(dict(
                    bbox=[round(v, 3) for v in box],
                    center_world=volume.voxel_to_world(np.array([[
                        (box[5] + box[2]) / 2, (box[4] + box[1]) / 2,
                        (box[3] + box[0]) / 2]]))[0].tolist(),
                    diameter_mm=2 * float(max(lesion['semi_axes_mm'])),
                    label=0, ignore=False,
                    annotated=bool(lesion['annotated'])))
            name = f'{series}_{first:03d}-{last:03d}'
            rel = f'volumes/{name}.nii.gz'
            atomic_save_with(str(out / rel), lambda p, v=volume:
                             sitk.WriteImage(v.to_sitk(), p))
            entries.append(volume_entry(volume, name, rel, annotations,
                                        split=2))
    if not entries:
        raise ValueError(f'{data_root}/DL_info.csv: no validation row '
                         '(Train_Val_Test 2)')
    path = out / VAL_SCANS_FILE
    write_annotation_file(str(path), 'demo_deeplesion_val_scans', ['lesion'],
                          entries, overwrite=True)
    return path
