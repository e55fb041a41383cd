# Copyright (c) mmlesion contributors. All rights reserved.
"""DeepLesion release replica: the NIH release's files (``data/README.md``
lists them), in miniature.

The images and ``DL_info.csv`` are those of
:class:`~mmlesion.apps.demo.DeepLesionDemoGenerator` (16-bit PNGs,
``HU + 32768``; the CSV header, column order, number formatting, 1-based
coordinates and ``Train_Val_Test`` codes 1/2/3 of the official file; 30 mm
of stored slices on each side of a key slice, as the release's
``Slice_range``; 2 and 5 mm slice intervals, which keep it small), without
the generator's ``demo_meta.json`` (not part of the release).

``DeepLesion_manual_1K_test_release.pkl`` has the format of the manual test
set of Yan et al. (LENS): a pickle (protocol 3) of ``{'val': {name: B},
'test': {name: B}}`` where ``name`` is ``<series>_<first:03d>-<last:03d>``
(a block of stored slices) and ``B`` a float64 ``(n, 6)`` array of inclusive
integer boxes ``[x1, y1, z1, x2, y2, z2]`` (0-based pixel columns / rows,
slice numbers as in the PNG names) of **every** lesion in the block,
annotated in ``DL_info.csv`` or not (the manual set is fully labelled).
"""
import math
import pickle
from pathlib import Path
from typing import Dict

import numpy as np

from mmlesion.apps.demo.deeplesion_plan import _Series
from mmlesion.apps.demo.generator import DeepLesionDemoGenerator
from projects.study_demo.synthetic.deeplesion import StudyDemoGenerator
from .marker import ReplicaSize

#: Slices stored on each side of a key slice: 30 mm, as in the release
#: (``Slice_range`` of the official rows).
CONTEXT_MM = 30.
#: The manual 3D test set's file name.
MANUAL_3D_FILE = 'DeepLesion_manual_1K_test_release.pkl'


def deeplesion_generator(size: ReplicaSize,
                         seed: int) -> StudyDemoGenerator:
    """The demo generator that draws the replica (the study generator, no
    study option set: the main job's generator's bytes; a test plans
    follow-ups with it)."""
    num_train, num_val, num_test = size.dl_key_slices
    return StudyDemoGenerator(
        seed=seed, num_train=num_train, num_val=num_val, num_test=num_test,
        image_size=size.dl_image_px, context_mm=CONTEXT_MM,
        slice_intervals=(2., 5.), slice_interval_probs=(.3, .7),
        noisy_prob=.1, unannotated_prob=.3)


def _lesion_box(les, s: _Series, lo: int, hi: int):
    """Inclusive ``[x1, y1, z1, x2, y2, z2]`` of a lesion over slices
    ``lo..hi`` of a series, or None if it crosses none of them."""
    boxes = []
    ux, uy = math.cos(les.angle), math.sin(les.angle)
    for index in range(lo, hi + 1):
        sec = les.cross_section(s.z_of(index))
        if sec is None:
            continue
        a, b = sec
        ex = math.sqrt((a * ux)**2 + (b * uy)**2)
        ey = math.sqrt((a * uy)**2 + (b * ux)**2)
        cx, cy = les.center[:2]
        c0, r0 = s.grid.mm_to_pixel(cx - ex, cy - ey)
        c1, r1 = s.grid.mm_to_pixel(cx + ex, cy + ey)
        boxes.append([c0, r0, index, c1, r1, index])
    if not boxes:
        return None
    arr = np.asarray(boxes, dtype=np.float64)
    last = s.grid.size - 1
    x1, y1 = (np.clip(np.floor(arr[:, i].min()), 0, last) for i in (0, 1))
    x2, y2 = (np.clip(np.ceil(arr[:, i].max()), 0, last) for i in (3, 4))
    return [x1, y1, arr[:, 2].min(), x2, y2, arr[:, 5].max()]


def manual_3d_annotations(gen: DeepLesionDemoGenerator
                          ) -> Dict[str, Dict[str, np.ndarray]]:
    """The content of :data:`MANUAL_3D_FILE` for the planned replica."""
    out: Dict[str, Dict[str, np.ndarray]] = {'val': {}, 'test': {}}
    for s in gen.plan():
        if s.split not in out:
            continue
        # each lesion of the series' key slices once, in order
        lesions = list({id(les): les for key in s.keys
                        for les in key.lesions}.values())
        for lo, hi in s.blocks:
            boxes = [b for b in (_lesion_box(les, s, lo, hi)
                                 for les in lesions) if b is not None]
            if boxes:
                out[s.split][f'{s.dir_name}_{lo:03d}-{hi:03d}'] = np.asarray(
                    boxes, dtype=np.float64)
    return out


def write_deeplesion_replica(root: Path, size: ReplicaSize, seed: int,
                             progress=None) -> Dict[str, int]:
    """Write the DeepLesion replica's files into ``root`` (an empty folder).

    Returns:
        dict: counts (``images``, ``lesions``, ``manual_3d_subvolumes``).
    """
    gen = deeplesion_generator(size, seed)
    series = gen.plan()
    for s in series:
        gen._write_series(root, s, progress)
    gen.write_csv(root / 'DL_info.csv')
    manual = manual_3d_annotations(gen)
    with open(root / MANUAL_3D_FILE, 'wb') as handle:
        pickle.dump(manual, handle, protocol=3)
    return dict(images=gen.num_images(), series=len(series),
                lesions=len(gen.csv_rows()),
                manual_3d_subvolumes=sum(len(v) for v in manual.values()))
