# Copyright (c) mmlesion contributors. All rights reserved.
"""Scans of the volume replicas: the demo volume planner, sized and
rendered for a replica (no files written here)."""
from typing import List, NamedTuple

import numpy as np

from mmlesion.apps.demo.anatomy import SliceGrid
from projects.study_demo.synthetic.volume_plan import _Scan
from projects.study_demo.synthetic.volumes import DemoVolumeGenerator
from .marker import ReplicaSize

#: In-plane spacings are multiples of this (mm), offsets and slice positions
#: of 1/128 mm: exact in binary, so the headers carry short numbers as the
#: released files do.
_SPACING_STEP = 1. / 64.


def _exact(value: float) -> float:
    return round(value * 128.) / 128.


class ReplicaScans(NamedTuple):
    """A replica's generator (whose ``render_scan``, ``label_map`` and
    ``luna16_rows`` apply) and its planned scans."""
    generator: DemoVolumeGenerator
    scans: List['_Scan']


def replica_scans(dataset: str, num: int, size: ReplicaSize, seed: int,
                  with_lesions: bool = True
                  ) -> ReplicaScans:
    """Plan ``num`` scans of one demo dataset at the replica's size.

    The demo's targeted reconstructions (a small field of view on one lung,
    kidney or liver) become whole-body axial scans as released: the field
    of view (``size.fov_mm``) is centred on the body, with air around it
    (which the readers' Hounsfield-unit check looks for).

    Args:
        dataset (str): ``luna16`` (chest), ``kits`` (kidney) or ``lits``
            (liver) scans of :class:`DemoVolumeGenerator`.
        num (int): scans.
        size (ReplicaSize): the replica size.
        seed (int): the seed.
        with_lesions (bool): False plans chest scans without a nodule
            (LUNA16's negative patients; their vessel look-alikes stay).

    Returns:
        tuple: the generator (whose ``render_scan``, ``label_map`` and
        ``luna16_rows`` apply) and its planned scans. Every lesion is
        annotated (``unannotated_prob=0``): a replica's label maps and CSVs
        are its ground truth.
    """
    counts = dict(num_luna=0, num_kits=0, num_lits=0)
    code = {'luna16': 'num_luna', 'kits': 'num_kits', 'lits': 'num_lits'}
    counts[code[dataset]] = num
    gen = DemoVolumeGenerator(
        seed=seed, val_fraction=0., size_range=(size.scan_px, size.scan_px),
        slice_thicknesses=(2., 2.5), num_slices_range=size.num_slices,
        nodules_per_scan=(1, 2) if with_lesions else (0, 0),
        nodule_diameter_range=(8., 20.),
        small_nodule_prob=.5 if with_lesions else 0., max_lookalikes=2,
        unannotated_prob=0.,
        **counts)
    scans = gen.plan()
    for i, scan in enumerate(scans):
        rng = np.random.default_rng([seed, 99, list(code).index(dataset), i])
        fov = rng.uniform(*size.fov_mm)
        spacing = round(fov / size.scan_px / _SPACING_STEP) * _SPACING_STEP
        offset_x, offset_y = rng.uniform(-5., 5., 2)
        scan.grid = SliceGrid(size.scan_px, spacing, _exact(offset_x),
                              _exact(offset_y))
        scan.z_top = _exact(scan.z_top)
    return ReplicaScans(gen, scans)
