# Copyright (c) mmlesion contributors. All rights reserved.
"""Settings and constants of the synthetic CT volume set
(:mod:`.volumes`)."""
from dataclasses import dataclass
from typing import Tuple

from mmlesion.apps.demo.settings import check_probabilities, check_range
from .generator_tool import shown_defaults

#: The defaults ``generate_demo_volumes.py --help`` shows.
_VOLUME_SHOWN = shown_defaults('DemoVolumeConfig')

#: Marker file: a folder holding it was written by this generator.
GROUND_TRUTH_FILE = 'ground_truth.json'

#: Header of the official LUNA16 ``annotations.csv`` and
#: ``annotations_excluded.csv``.
LUNA16_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm')

VOLUME_GENERATOR_VERSION = 1

#: Direction matrices (row-major, SimpleITK) of the stored files.
KITS_DIRECTION = (0., 0., 1., 0., 1., 0., -1., 0., 0.)
LITS_DIRECTION = (-1., 0., 0., 0., -1., 0., 0., 0., 1.)

# DICOM UID root of the synthetic series (pydicom's root, for test data).
UID_ROOT = '1.2.826.0.1.3680043.8.498.'


@dataclass
class DemoVolumeConfig:
    """Settings of the synthetic volume set.

    Args:
        num_luna (int): chest scans (LUNA16 layout).
        num_kits (int): kidney scans (KiTS19 layout).
        num_lits (int): liver scans (LiTS layout).
        val_fraction (float): fraction of each dataset's scans (the last
            ones) in the ``val`` split of ``ground_truth.json``.
        size_range (tuple): in-plane size range (px, square slices).
        spacing_range (tuple): in-plane spacing range (mm/px).
        slice_thicknesses (tuple): slice intervals a scan may have (mm).
        num_slices_range (tuple): number of slices range.
        nodules_per_scan (tuple): inclusive range of nodules >= 3 mm.
        nodule_diameter_range (tuple): nodule diameters (mm).
        part_solid_prob (float): probability that a nodule is part-solid.
        nodule_hu_range (tuple): HU of solid nodules and of the cores of
            part-solid ones. Defaults to (0, 60), soft tissue; (250, 350)
            gives bright nodules a tiny detector learns quickly.
        small_nodule_prob (float): probability that a chest scan also has a
            nodule < 3 mm (``annotations_excluded.csv``).
        max_lookalikes (int): vessel bifurcations listed in
            ``annotations_excluded.csv`` per chest scan (at most).
        unannotated_prob (float): probability that a lesion is left out of
            the annotation files (and the label maps).
        noise_sigma_range (tuple): noise inside the body (HU), one per scan.
        seed (int): random seed; same seed, same bytes.
    """
    num_luna: int = _VOLUME_SHOWN['num_luna']
    num_kits: int = _VOLUME_SHOWN['num_kits']
    num_lits: int = _VOLUME_SHOWN['num_lits']
    val_fraction: float = _VOLUME_SHOWN['val_fraction']
    size_range: Tuple[int, int] = (128, 160)
    spacing_range: Tuple[float, float] = (.6, .9)
    slice_thicknesses: Tuple[float, ...] = (1., 1.25, 1.5, 2., 2.5)
    num_slices_range: Tuple[int, int] = (60, 120)
    nodules_per_scan: Tuple[int, int] = (1, 4)
    nodule_diameter_range: Tuple[float, float] = (3., 30.)
    part_solid_prob: float = .3
    nodule_hu_range: Tuple[float, float] = (0., 60.)
    small_nodule_prob: float = .4
    max_lookalikes: int = 3
    unannotated_prob: float = .15
    noise_sigma_range: Tuple[float, float] = (10., 25.)
    seed: int = _VOLUME_SHOWN['seed']

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        for name in ('num_luna', 'num_kits', 'num_lits', 'max_lookalikes'):
            if int(getattr(self, name)) < 0:
                raise ValueError(f'DemoVolumeConfig.{name} must be >= 0')
        if self.num_luna + self.num_kits + self.num_lits <= 0:
            raise ValueError('DemoVolumeConfig: no scan requested')
        check_range(self, 'size_range', 32, 512)
        check_range(self, 'spacing_range', 0, open_low=True)
        if not self.slice_thicknesses or min(self.slice_thicknesses) <= 0:
            raise ValueError('DemoVolumeConfig.slice_thicknesses must be '
                             f'positive, got {self.slice_thicknesses}')
        check_range(self, 'num_slices_range', 8)
        check_range(self, 'nodules_per_scan', 0, 8)
        check_range(self, 'nodule_diameter_range', 3., 40.)
        check_probabilities(self, ('val_fraction', 'part_solid_prob',
                                   'small_nodule_prob', 'unannotated_prob'))
        check_range(self, 'nodule_hu_range', -1000, 3071, open_low=True)
        check_range(self, 'noise_sigma_range', 0)
