# Copyright (c) mmlesion contributors. All rights reserved.
"""Deterministic synthetic CT volumes in the LUNA16, KiTS19 and LiTS layouts.

The 3D counterpart of :mod:`mmlesion.datasets.demo.generator`: whole phantom
CT scans (the torso of :class:`~mmlesion.datasets.demo.phantom.CTPhantom`,
rendered slice by slice) with planted lesions, written as the public 3D
datasets ship them, so the volume readers, the dataset converters, the 3D
detectors and the LUNA16 / 3D FROC evaluators run end to end on a CPU::

    <out>/luna16/subset0/<seriesuid>.mhd + .raw   # MetaImage, int16 HU
    <out>/luna16/annotations.csv                  # official LUNA16 formats
    <out>/luna16/annotations_excluded.csv
    <out>/luna16/seriesuids.csv                   # one uid a line, no header
    <out>/kits/case_XXXXX/imaging.nii.gz          # KiTS19: 1 kidney,
    <out>/kits/case_XXXXX/segmentation.nii.gz     #         2 tumour
    <out>/kits/kits.json                          # case_id, voxel_spacing
    <out>/lits/volume-N.nii.gz                    # LiTS: 1 liver, 2 tumour
    <out>/lits/segmentation-N.nii.gz
    <out>/ground_truth.json                       # every planted lesion

Scans are small (a targeted reconstruction: 128-160 px in-plane at 0.6-0.9
mm, i.e. a 8-14 cm display field of view centred on one lung, one kidney or
the liver; 60-120 slices of 1-2.5 mm), so a 3D demo trains in minutes.
Intensities are those of a contrast-enhanced CT: air -1000, lung -860, fat
-100, muscle 50, liver 55-70, spleen 60-75, kidney 140-170, pulmonary
vessels 30-60, aorta 150-200, bone cortex 600-700 HU, then the scanner's
point spread and 10-25 HU of correlated noise
(:func:`~mmlesion.datasets.demo.phantom.simulate_acquisition`).

Lesions:

* **chest scans (LUNA16)**: 1-4 nodules of 3-30 mm (log-normal, median
  8 mm; ellipsoids with axes 0.8-1.1 x the diameter), solid (0-60 HU) or
  part-solid (a ground-glass ellipsoid of -650 to -450 HU around a solid
  core of 30-60 % of its diameter; ``nodule_hu_range``). As in LUNA16, ``annotations.csv`` lists
  nodules >= 3 mm; ``annotations_excluded.csv`` lists the planted nodules
  < 3 mm (with their diameter) and a few **vessel bifurcations** inside the
  lung (the classic nodule look-alike) with diameter -1. Some nodules
  (``unannotated_prob``) are deliberately in neither file (the readers'
  misses that LENS mines; ``"annotated": false`` in ``ground_truth.json``).
* **kidney scans (KiTS19)**: 1-2 hypodense renal tumours of 15-45 mm, some
  exophytic; label 1 kidney, 2 tumour. An unannotated tumour keeps the
  kidney label (1) inside the kidney and 0 outside it.
* **liver scans (LiTS)**: 1-4 liver tumours of 8-50 mm, mostly hypodense;
  label 1 liver, 2 tumour (unannotated ones: liver).

World coordinates follow SimpleITK / LPS (x to the patient's left, y to the
back, z towards the head). Every scan is generated in one canonical axial
grid (index ``(z, y, x)``, identity direction, slice 0 the most inferior),
then stored as each dataset does:

* LUNA16 ``.mhd``: that grid, identity ``TransformMatrix``;
* KiTS19: the axis order of the released files (the first NIfTI axis is the
  axial one: SimpleITK size ``(z, y, x)``, direction
  ``[[0, 0, 1], [0, 1, 0], [-1, 0, 0]]``, as in ``case_00002``);
* LiTS: rows and columns flipped (direction ``diag(-1, -1, 1)``), as NIfTI
  files converted from DICOM often are.

So a reader that reorients to LPS (``DICOMOrient(img, 'LPS')``) gets the
canonical grid back, and ``ground_truth.json`` gives every lesion's world
centre plus its canonical voxel centre and 3D box ``[x1, y1, z1, x2, y2,
z2]`` (continuous voxel coordinates of the canonical grid, SimpleITK's
continuous index: voxel centres at integers).

Same seed and settings give byte-identical files.
"""
import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .dataset_writer import merge_config, write_dataset_dir
from .phantom import (CTPhantom, Lesion, PatientAnatomy, SliceGrid, Tissue,
                      simulate_acquisition, tissue_lut)

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
_UID_ROOT = '1.2.826.0.1.3680043.8.498.'

_NOT_BODY = tissue_lut((Tissue.AIR, Tissue.TABLE))


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
        nodule_hu_range (tuple): attenuation of solid nodules and of the
            solid cores of part-solid ones (HU). Defaults to (0, 60), soft
            tissue; e.g. (250, 350) gives bright (calcified-like) nodules
            that a tiny detector learns in a few hundred steps.
        small_nodule_prob (float): probability that a chest scan also has a
            nodule < 3 mm (``annotations_excluded.csv``).
        max_lookalikes (int): vessel bifurcations listed in
            ``annotations_excluded.csv`` per chest scan (at most).
        unannotated_prob (float): probability that a lesion is left out of
            the annotation files (and the label maps).
        noise_sigma_range (tuple): noise inside the body (HU), one per scan.
        seed (int): random seed; same seed, same bytes.
    """
    num_luna: int = 20
    num_kits: int = 6
    num_lits: int = 6
    val_fraction: float = .25
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
    seed: int = 0

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        for name in ('num_luna', 'num_kits', 'num_lits', 'max_lookalikes'):
            if int(getattr(self, name)) < 0:
                raise ValueError(f'DemoVolumeConfig.{name} must be >= 0')
        if self.num_luna + self.num_kits + self.num_lits <= 0:
            raise ValueError('DemoVolumeConfig: no scan requested')
        lo, hi = self.size_range
        if not 32 <= lo <= hi <= 512:
            raise ValueError('DemoVolumeConfig.size_range must satisfy '
                             f'32 <= lo <= hi <= 512, got {self.size_range}')
        lo, hi = self.spacing_range
        if not 0 < lo <= hi:
            raise ValueError('DemoVolumeConfig.spacing_range must be '
                             f'0 < lo <= hi, got {self.spacing_range}')
        if not self.slice_thicknesses or min(self.slice_thicknesses) <= 0:
            raise ValueError('DemoVolumeConfig.slice_thicknesses must be '
                             f'positive, got {self.slice_thicknesses}')
        lo, hi = self.num_slices_range
        if not 8 <= lo <= hi:
            raise ValueError('DemoVolumeConfig.num_slices_range must satisfy'
                             f' 8 <= lo <= hi, got {self.num_slices_range}')
        lo, hi = self.nodules_per_scan
        if not 0 <= lo <= hi <= 8:
            raise ValueError('DemoVolumeConfig.nodules_per_scan must satisfy'
                             f' 0 <= lo <= hi <= 8, got '
                             f'{self.nodules_per_scan}')
        lo, hi = self.nodule_diameter_range
        if not 3. <= lo <= hi <= 40.:
            raise ValueError('DemoVolumeConfig.nodule_diameter_range must '
                             'satisfy 3 <= lo <= hi <= 40, got '
                             f'{self.nodule_diameter_range}')
        for name in ('val_fraction', 'part_solid_prob', 'small_nodule_prob',
                     'unannotated_prob'):
            if not 0. <= getattr(self, name) <= 1.:
                raise ValueError(f'DemoVolumeConfig.{name} must be in [0, 1]')
        lo, hi = self.nodule_hu_range
        if not -1000 < lo <= hi <= 3071:
            raise ValueError('DemoVolumeConfig.nodule_hu_range must satisfy'
                             f' -1000 < lo <= hi <= 3071, got '
                             f'{self.nodule_hu_range}')
        lo, hi = self.noise_sigma_range
        if not 0 <= lo <= hi:
            raise ValueError('DemoVolumeConfig.noise_sigma_range must be '
                             f'0 <= lo <= hi, got {self.noise_sigma_range}')


@dataclass
class PlantedLesion:
    """A lesion planted in a scan (one or two phantom ellipsoids).

    Args:
        kind (str): ``solid_nodule``, ``part_solid_nodule``,
            ``small_nodule``, ``kidney_tumour`` or ``liver_tumour``.
        parts (list[Lesion]): the drawn ellipsoids (outer first).
        annotated (bool): listed in the annotation file / label map.
        excluded (bool): listed in ``annotations_excluded.csv``.
    """
    kind: str
    parts: List[Lesion]
    annotated: bool
    excluded: bool = False

    @property
    def outer(self) -> Lesion:
        return self.parts[0]

    @property
    def diameter_mm(self) -> float:
        """Long diameter: twice the largest semi-axis of the outer part."""
        return 2. * max(self.outer.semi_axes)


@dataclass
class _Scan:
    dataset: str
    index: int
    scan_id: str
    series_uid: Optional[str]
    split: str
    grid: SliceGrid
    thickness: float
    num_slices: int
    z_top: float  # phantom z (mm, towards the feet) of the last slice
    noise_sigma: float
    air_sigma: float
    phantom: CTPhantom
    lesions: List[PlantedLesion] = field(default_factory=list)
    lookalikes: List[np.ndarray] = field(default_factory=list)

    # -------------------------------------------------------------
    # geometry of the canonical grid (z, y, x), identity direction
    @property
    def shape_zyx(self) -> Tuple[int, int, int]:
        return self.num_slices, self.grid.size, self.grid.size

    @property
    def spacing_zyx(self) -> Tuple[float, float, float]:
        return self.thickness, self.grid.spacing, self.grid.spacing

    def phantom_z(self, k: np.ndarray) -> np.ndarray:
        """Phantom z (mm, head to feet) of slice ``k`` (0 = most inferior).
        """
        return self.z_top + (self.num_slices - 1 - np.asarray(k)) * \
            self.thickness

    @property
    def origin_xyz(self) -> Tuple[float, float, float]:
        """World (LPS) position of voxel (0, 0, 0): world x, y = phantom
        x, y; world z = -phantom z."""
        x0, y0 = self.grid.pixel_to_mm(0., 0.)
        return float(x0), float(y0), float(-self.phantom_z(0))

    def world_to_voxel(self, xyz: np.ndarray) -> np.ndarray:
        """World (x, y, z) -> continuous canonical index (z, y, x)."""
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        sz, sy, sx = self.spacing_zyx
        o = self.origin_xyz
        return np.stack([(xyz[:, 2] - o[2]) / sz, (xyz[:, 1] - o[1]) / sy,
                         (xyz[:, 0] - o[0]) / sx], axis=1)

    def lesion_world(self, les: Lesion) -> np.ndarray:
        x, y, z = les.center
        return np.array([x, y, -z], dtype=np.float64)


def _ellipsoid_extent(les: Lesion) -> Tuple[float, float, float]:
    """Half extents (x, y, z) in mm of a lesion's axis-aligned box."""
    a, b, c = les.semi_axes
    ca, sa = math.cos(les.angle), math.sin(les.angle)
    return (math.sqrt((a * ca)**2 + (b * sa)**2),
            math.sqrt((a * sa)**2 + (b * ca)**2), c)


def ellipsoid_mask(les: Lesion, scan: '_Scan',
                   box: Tuple[slice, slice, slice]) -> np.ndarray:
    """Voxels of the canonical grid inside a lesion, over a sub-box.

    The same ellipsoid the phantom draws (in-plane angle, axial semi-axis).

    Args:
        les (Lesion): the ellipsoid.
        scan (_Scan): its scan.
        box (tuple[slice]): (z, y, x) slices of the canonical grid.

    Returns:
        np.ndarray: boolean mask of the sub-box.
    """
    kz = np.arange(box[0].start, box[0].stop)
    rows = np.arange(box[1].start, box[1].stop)
    cols = np.arange(box[2].start, box[2].stop)
    x, _ = scan.grid.pixel_to_mm(cols, cols)
    _, y = scan.grid.pixel_to_mm(rows, rows)
    z = scan.phantom_z(kz)
    dx = x[None, None, :] - les.center[0]
    dy = y[None, :, None] - les.center[1]
    dz = (z[:, None, None] - les.center[2]) / les.semi_axes[2]
    ca, sa = math.cos(les.angle), math.sin(les.angle)
    du = (dx * ca + dy * sa) / les.semi_axes[0]
    dv = (-dx * sa + dy * ca) / les.semi_axes[1]
    return du * du + dv * dv + dz * dz < 1.


def _lesion_box(les: Lesion, scan: '_Scan',
                pad: float = 1.) -> Optional[Tuple[slice, slice, slice]]:
    """Canonical (z, y, x) index slices covering a lesion (None if out)."""
    ex, ey, ez = _ellipsoid_extent(les)
    center = scan.world_to_voxel(scan.lesion_world(les))[0]
    half = np.array([ez, ey, ex]) / np.array(scan.spacing_zyx) + pad
    lo = np.floor(center - half).astype(int)
    hi = np.ceil(center + half).astype(int) + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, scan.shape_zyx)
    if np.any(lo >= hi):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


class DemoVolumeGenerator:
    """Plan and write the synthetic CT volume set.

    Args:
        config (DemoVolumeConfig, optional): settings; keyword arguments
            override its fields (e.g. ``seed=1, num_luna=4``).

    Example:
        >>> gen = DemoVolumeGenerator(num_luna=4, num_kits=1, num_lits=1)
        >>> summary = gen.generate('data/demo_volumes')
    """

    def __init__(self, config: Optional[DemoVolumeConfig] = None, **kwargs):
        self.config = merge_config(DemoVolumeConfig, config, kwargs)
        self._scans: Optional[List[_Scan]] = None

    # ------------------------------------------------------------------
    # planning
    def plan(self) -> List[_Scan]:
        """Draw every scan's geometry (lesions are placed when rendered)."""
        if self._scans is not None:
            return self._scans
        cfg = self.config
        scans = []
        for code, (dataset, num) in enumerate(
            (('luna16', cfg.num_luna), ('kits', cfg.num_kits),
             ('lits', cfg.num_lits))):
            num = int(num)
            num_val = int(round(num * cfg.val_fraction))
            for i in range(num):
                rng = np.random.default_rng([int(cfg.seed), code, i])
                split = 'val' if i >= num - num_val else 'train'
                scans.append(self._plan_scan(rng, dataset, i, split))
        self._scans = scans
        return scans

    def _plan_scan(self, rng: np.random.Generator, dataset: str, index: int,
                   split: str) -> _Scan:
        cfg = self.config
        anatomy = PatientAnatomy.sample(rng)
        # enhancement of the brief (portal-venous phase, moderate contrast)
        anatomy.liver_hu = float(rng.uniform(55., 70.))
        anatomy.spleen_hu = anatomy.liver_hu + float(rng.uniform(0., 8.))
        anatomy.kidney_hu = float(rng.uniform(140., 170.))
        anatomy.aorta_hu = float(rng.uniform(150., 200.))
        size = int(rng.integers(cfg.size_range[0], cfg.size_range[1] + 1))
        spacing = round(float(rng.uniform(*cfg.spacing_range)), 3)
        thickness = float(cfg.slice_thicknesses[int(
            rng.integers(len(cfg.slice_thicknesses)))])
        num_slices = int(
            rng.integers(cfg.num_slices_range[0],
                         cfg.num_slices_range[1] + 1))
        side = -1. if rng.random() < .5 else 1.
        if dataset == 'luna16':
            t_mid = rng.uniform(anatomy.t_lung_top + .07,
                                anatomy.t_diaphragm - .06)
            ai, bi = anatomy.cavity_axes(t_mid)
            cx, cy = side * .5 * ai, .02 * bi
        elif dataset == 'kits':
            t_mid = anatomy.t_kidney + rng.uniform(-.01, .01)
            ai, bi = anatomy.cavity_axes(t_mid)
            cx, cy = side * .42 * ai, .52 * bi
        else:
            t_mid = rng.uniform(anatomy.t_diaphragm + .03,
                                anatomy.t_liver_end - .06)
            ai, bi = anatomy.cavity_axes(t_mid)
            cx, cy = -.4 * ai, 0.
        cx += rng.uniform(-6., 6.)
        cy += rng.uniform(-6., 6.)
        grid = SliceGrid(size, spacing, offset_x=round(-cx, 2),
                         offset_y=round(-cy, 2))
        z_mid = t_mid * anatomy.length
        z_top = round(z_mid - (num_slices - 1) * thickness / 2., 2)
        if dataset == 'luna16':
            uid = _UID_ROOT + '.'.join(
                str(int(v)) for v in rng.integers(1, 10**9, size=3))
            scan_id = uid
        elif dataset == 'kits':
            uid, scan_id = None, f'case_{index:05d}'
        else:
            uid, scan_id = None, f'volume-{index}'
        return _Scan(
            dataset=dataset, index=index, scan_id=scan_id, series_uid=uid,
            split=split, grid=grid, thickness=thickness,
            num_slices=num_slices, z_top=z_top,
            noise_sigma=float(rng.uniform(*cfg.noise_sigma_range)),
            air_sigma=float(rng.uniform(4., 7.)),
            phantom=CTPhantom(anatomy))

    # ------------------------------------------------------------------
    # rendering
    def _render(self, scan: _Scan, with_lesions: bool,
                slices: Optional[Sequence[int]] = None,
                out: Optional[Tuple[np.ndarray, np.ndarray]] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
        """Noise-free HU (float32) and tissue labels (uint8), (z, y, x)."""
        if out is None:
            hu = np.empty(scan.shape_zyx, np.float32)
            labels = np.empty(scan.shape_zyx, np.uint8)
        else:
            hu, labels = out
        ks = range(scan.num_slices) if slices is None else slices
        for k in ks:
            hu[k], labels[k] = scan.phantom.render(
                float(scan.phantom_z(k)), scan.grid,
                with_lesions=with_lesions)
        return hu, labels

    def _plan_lesions(self, rng: np.random.Generator, scan: _Scan,
                      hu: np.ndarray, labels: np.ndarray) -> None:
        cfg = self.config
        if scan.dataset == 'luna16':
            n = int(rng.integers(cfg.nodules_per_scan[0],
                                 cfg.nodules_per_scan[1] + 1))
            kinds = ['nodule'] * n
            if rng.random() < cfg.small_nodule_prob:
                kinds.append('small_nodule')
            host, accept, inside = Tissue.LUNG, (Tissue.LUNG,
                                                 Tissue.VESSEL), .9
        elif scan.dataset == 'kits':
            kinds = ['kidney_tumour'] * int(rng.integers(1, 3))
            host, accept, inside = Tissue.KIDNEY, (
                Tissue.KIDNEY, Tissue.VISCERAL_FAT), .7
        else:
            kinds = ['liver_tumour'] * int(rng.integers(1, 5))
            host, accept, inside = Tissue.LIVER, (Tissue.LIVER,
                                                  Tissue.VESSEL), .9
        host_voxels = np.argwhere(labels == host)
        if not len(host_voxels):
            return
        accept_lut = tissue_lut(accept)
        for kind in kinds:
            for attempt in range(60):
                les = self._draw_lesion(rng, scan, kind, host_voxels,
                                        shrink=.8**(attempt // 15))
                box = _lesion_box(les.outer, scan, pad=0.)
                if box is None or not self._fits(les, scan, box, labels,
                                                 accept_lut, inside, host):
                    continue
                host_hu = float(np.median(hu[box][ellipsoid_mask(
                    les.outer, scan, box) & (labels[box] == host)]))
                for part in les.parts:
                    part.host_hu = round(host_hu, 1)
                scan.lesions.append(les)
                break
        if scan.dataset == 'luna16':
            scan.lookalikes = self._vessel_bifurcations(rng, scan, labels)

    def _draw_lesion(self, rng: np.random.Generator, scan: _Scan, kind: str,
                     host_voxels: np.ndarray, shrink: float) -> PlantedLesion:
        cfg = self.config
        k, r, c = host_voxels[int(rng.integers(len(host_voxels)))]
        x, y = scan.grid.pixel_to_mm(c + rng.uniform(-.5, .5),
                                     r + rng.uniform(-.5, .5))
        z = float(scan.phantom_z(k + rng.uniform(-.5, .5)))
        annotated = bool(rng.random() >= cfg.unannotated_prob)
        if kind == 'small_nodule':
            d = rng.uniform(2., 2.9)
        elif kind == 'nodule':
            lo, hi = cfg.nodule_diameter_range
            d = float(np.clip(8. * math.exp(rng.normal(0., .55)), lo, hi))
        elif kind == 'kidney_tumour':
            d = rng.uniform(15., 45.)
        else:
            d = float(np.clip(20. * math.exp(rng.normal(0., .5)), 8., 50.))
        d = max(d * shrink, 2. if kind == 'small_nodule' else 3.)
        a = d / 2.
        if kind in ('nodule', 'small_nodule'):
            axes = (a, a * rng.uniform(.8, 1.), a * rng.uniform(.8, 1.1))
        else:
            axes = (a, a * rng.uniform(.7, 1.), a * rng.uniform(.7, 1.))
        # the long axis is the largest one (the reported diameter)
        axes = (max(axes), axes[1], min(axes[2], max(axes)))
        angle = float(rng.uniform(0., math.pi))
        ltype = {'kidney_tumour': 6, 'liver_tumour': 4}.get(kind, 5)
        host = {6: Tissue.KIDNEY, 4: Tissue.LIVER}.get(ltype, Tissue.LUNG)
        center = (float(x), float(y), z)

        def part(scale: float, hu: float) -> Lesion:
            return Lesion(center=center,
                          semi_axes=tuple(float(v) * scale for v in axes),
                          angle=angle, hu=round(float(hu), 1),
                          lesion_type=ltype, host=int(host), host_hu=0.,
                          annotated=annotated)

        if kind == 'nodule' and rng.random() < cfg.part_solid_prob:
            parts = [part(1., rng.uniform(-650., -450.)),
                     part(rng.uniform(.3, .6),
                          rng.uniform(*cfg.nodule_hu_range))]
            kind = 'part_solid_nodule'
        elif kind in ('nodule', 'small_nodule'):
            parts = [part(1., rng.uniform(*cfg.nodule_hu_range))]
            kind = 'solid_nodule' if kind == 'nodule' else kind
        elif kind == 'kidney_tumour':
            # clear-cell carcinoma or cyst: hypodense to the cortex
            parts = [part(1., rng.uniform(20., 60.) if rng.random() < .7
                          else rng.uniform(0., 15.))]
        else:
            hu = scan.phantom.anatomy.liver_hu
            parts = [part(1., hu - rng.uniform(30., 60.) if rng.random() < .8
                          else hu + rng.uniform(40., 70.))]
        # small nodules are listed (excluded), never "unannotated"
        excluded = kind == 'small_nodule'
        return PlantedLesion(kind=kind, parts=parts,
                             annotated=annotated and not excluded,
                             excluded=excluded)

    def _fits(self, les: PlantedLesion, scan: _Scan, box, labels: np.ndarray,
              accept_lut: np.ndarray, inside: float, host: int) -> bool:
        outer = les.outer
        # wholly inside the scan, one voxel of margin
        center = scan.world_to_voxel(scan.lesion_world(outer))[0]
        ex, ey, ez = _ellipsoid_extent(outer)
        half = np.array([ez, ey, ex]) / np.array(scan.spacing_zyx)
        if np.any(center - half < 1.) or np.any(
                center + half > np.array(scan.shape_zyx) - 2.):
            return False
        for other in scan.lesions:
            dist = np.linalg.norm(
                scan.lesion_world(outer) - scan.lesion_world(other.outer))
            if dist < max(outer.semi_axes) + max(other.outer.semi_axes) + 4.:
                return False
        mask = ellipsoid_mask(outer, scan, box)
        if not mask.any():
            return False
        lab = labels[box][mask]
        return bool(accept_lut[lab].mean() >= inside
                    and (lab == host).any())

    def _vessel_bifurcations(self, rng: np.random.Generator, scan: _Scan,
                             labels: np.ndarray) -> List[np.ndarray]:
        """World positions of pulmonary vessel branchings inside the lung.
        """
        cfg = self.config
        vessels = [v for v in scan.phantom.anatomy.vessels
                   if tuple(v.hosts) == (Tissue.LUNG, )]
        starts = np.array([v.p0 for v in vessels]).reshape(-1, 3)
        points = []
        for v in vessels:
            # a segment end where two children start is a bifurcation
            if (np.linalg.norm(starts - v.p1, axis=1) < 1e-6).sum() < 2:
                continue
            world = np.array([v.p1[0], v.p1[1], -v.p1[2]])
            kzyx = np.round(scan.world_to_voxel(world)[0]).astype(int)
            if np.any(kzyx < 2) or np.any(
                    kzyx > np.array(scan.shape_zyx) - 3):
                continue
            if labels[tuple(kzyx)] not in (Tissue.VESSEL, Tissue.LUNG):
                continue
            if any(np.linalg.norm(world - scan.lesion_world(les.outer)) <
                   max(les.outer.semi_axes) + 5. for les in scan.lesions):
                continue
            points.append(world)
        if len(points) > cfg.max_lookalikes:
            pick = rng.choice(len(points), cfg.max_lookalikes, replace=False)
            points = [points[i] for i in sorted(pick)]
        return points

    def render_scan(self, scan: _Scan) -> Tuple[np.ndarray, np.ndarray]:
        """Plan the lesions of ``scan`` and render it.

        Returns:
            tuple: the acquired int16 HU volume and the tissue labels
            **without the lesions** (what each voxel would be without
            them), both (z, y, x) in the canonical grid.
        """
        seed = int(self.config.seed)
        code = ('luna16', 'kits', 'lits').index(scan.dataset)
        hu, labels = self._render(scan, with_lesions=False)
        if not scan.lesions:
            rng = np.random.default_rng([seed, code, scan.index, 11])
            self._plan_lesions(rng, scan, hu, labels)
        tissue = labels.copy()
        scan.phantom.lesions = [p for les in scan.lesions for p in les.parts]
        if scan.phantom.lesions:
            ks = set()
            for les in scan.lesions:
                box = _lesion_box(les.outer, scan)
                ks.update(range(box[0].start, box[0].stop))
            self._render(scan, True, sorted(ks), out=(hu, labels))
        img = np.empty(scan.shape_zyx, np.int16)
        for k in range(scan.num_slices):
            rng = np.random.default_rng([seed, code, scan.index, 22, k])
            img[k] = simulate_acquisition(
                hu[k], scan.noise_sigma, rng,
                body=_NOT_BODY[labels[k]] == 0, air_sigma=scan.air_sigma)
        scan.phantom.clear_cache()
        return img, tissue

    def label_map(self, scan: _Scan, labels: np.ndarray) -> np.ndarray:
        """KiTS / LiTS label map: 1 organ, 2 annotated tumour (uint8).

        Args:
            scan (_Scan): a rendered kidney or liver scan.
            labels (np.ndarray): its lesion-free tissue labels
                (:meth:`render_scan`).

        Returns:
            np.ndarray: (z, y, x) uint8. An annotated tumour is its whole
            ellipsoid (exophytic parts included); an unannotated one keeps
            what lies under it (the organ, or 0), as a reader who missed it
            would have drawn.
        """
        organ = Tissue.KIDNEY if scan.dataset == 'kits' else Tissue.LIVER
        seg = (labels == organ).astype(np.uint8)
        for les in scan.lesions:
            if les.annotated:
                box = _lesion_box(les.outer, scan)
                seg[box][ellipsoid_mask(les.outer, scan, box)] = 2
        return seg

    # ------------------------------------------------------------------
    # records
    def lesion_record(self, scan: _Scan, les: PlantedLesion) -> dict:
        """The ``ground_truth.json`` entry of a lesion."""
        outer = les.outer
        world = scan.lesion_world(outer)
        zyx = scan.world_to_voxel(world)[0]
        ex, ey, ez = _ellipsoid_extent(outer)
        sz, sy, sx = scan.spacing_zyx
        bbox = [zyx[2] - ex / sx, zyx[1] - ey / sy, zyx[0] - ez / sz,
                zyx[2] + ex / sx, zyx[1] + ey / sy, zyx[0] + ez / sz]
        rec = dict(
            scan=scan.scan_id, dataset=scan.dataset,
            series_uid=scan.series_uid, kind=les.kind,
            center_world=[round(float(v), 4) for v in world],
            center_voxel_zyx=[round(float(v), 4) for v in zyx],
            bbox_voxel=[round(float(v), 4) for v in bbox],
            diameter_mm=round(les.diameter_mm, 4),
            semi_axes_mm=[round(float(v), 4) for v in outer.semi_axes],
            angle=round(outer.angle, 5), hu=outer.hu,
            host_hu=outer.host_hu, annotated=les.annotated,
            excluded=les.excluded)
        if len(les.parts) > 1:
            rec['core_hu'] = les.parts[1].hu
            rec['core_diameter_mm'] = round(
                2. * max(les.parts[1].semi_axes), 4)
        return rec

    def scan_record(self, scan: _Scan) -> dict:
        """The ``ground_truth.json`` entry of a scan."""
        if scan.dataset == 'luna16':
            file = f'luna16/subset0/{scan.series_uid}.mhd'
            label = None
            direction = (1., 0., 0., 0., 1., 0., 0., 0., 1.)
        elif scan.dataset == 'kits':
            file = f'kits/{scan.scan_id}/imaging.nii.gz'
            label = f'kits/{scan.scan_id}/segmentation.nii.gz'
            direction = KITS_DIRECTION
        else:
            file = f'lits/volume-{scan.index}.nii.gz'
            label = f'lits/segmentation-{scan.index}.nii.gz'
            direction = LITS_DIRECTION
        return dict(
            id=scan.scan_id, dataset=scan.dataset, split=scan.split,
            file=file, label_file=label, series_uid=scan.series_uid,
            shape_zyx=list(scan.shape_zyx),
            spacing_zyx=[float(v) for v in scan.spacing_zyx],
            origin_xyz=[round(v, 4) for v in scan.origin_xyz],
            direction=[1., 0., 0., 0., 1., 0., 0., 0., 1.],
            file_direction=list(direction),
            noise_sigma=round(scan.noise_sigma, 2))

    def ground_truth(self) -> dict:
        """The content of ``ground_truth.json`` (after rendering)."""
        scans = self.plan()
        lesions, lookalikes = [], []
        for s in scans:
            lesions.extend(self.lesion_record(s, les) for les in s.lesions)
            for p in s.lookalikes:
                lookalikes.append(
                    dict(scan=s.scan_id, dataset=s.dataset,
                         series_uid=s.series_uid, kind='vessel_bifurcation',
                         center_world=[round(float(v), 4) for v in p],
                         center_voxel_zyx=[
                             round(float(v), 4)
                             for v in s.world_to_voxel(p)[0]
                         ], diameter_mm=-1, excluded=True))
        return dict(
            generator='mmlesion.datasets.demo.volumes',
            version=VOLUME_GENERATOR_VERSION, config=asdict(self.config),
            box_format='x1y1z1x2y2z2_voxel',
            scans=[self.scan_record(s) for s in scans], lesions=lesions,
            lookalikes=lookalikes)

    def luna16_rows(self) -> Tuple[List[list], List[list]]:
        """Rows of ``annotations.csv`` and ``annotations_excluded.csv``."""
        ann, excl = [], []
        for s in self.plan():
            if s.dataset != 'luna16':
                continue
            for les in s.lesions:
                x, y, z = s.lesion_world(les.outer)
                row = [s.series_uid, _fmt(x), _fmt(y), _fmt(z),
                       _fmt(les.diameter_mm)]
                if les.excluded:
                    excl.append(row)
                elif les.annotated:
                    ann.append(row)
            for x, y, z in s.lookalikes:
                excl.append([s.series_uid, _fmt(x), _fmt(y), _fmt(z), '-1'])
        return ann, excl

    # ------------------------------------------------------------------
    # writing
    def _write_scan(self, root: Path, scan: _Scan) -> None:
        import SimpleITK as sitk
        img, labels = self.render_scan(scan)
        spacing_xyz = (scan.grid.spacing, scan.grid.spacing, scan.thickness)
        if scan.dataset == 'luna16':
            folder = root / 'luna16' / 'subset0'
            folder.mkdir(parents=True, exist_ok=True)
            image = sitk.GetImageFromArray(img)
            image.SetSpacing(spacing_xyz)
            image.SetOrigin(scan.origin_xyz)
            sitk.WriteImage(image, str(folder / f'{scan.series_uid}.mhd'))
            return
        seg = self.label_map(scan, labels)
        if scan.dataset == 'kits':
            folder = root / 'kits' / scan.scan_id
            paths = (folder / 'imaging.nii.gz',
                     folder / 'segmentation.nii.gz')
        else:
            folder = root / 'lits'
            paths = (folder / f'volume-{scan.index}.nii.gz',
                     folder / f'segmentation-{scan.index}.nii.gz')
        folder.mkdir(parents=True, exist_ok=True)
        for arr, path in zip((img, seg), paths):
            image = _to_file_layout(arr, scan)
            sitk.WriteImage(image, str(path), useCompression=True)

    def generate(self, out_dir: Union[str, Path], overwrite: bool = False,
                 show_progress: bool = False) -> dict:
        """Render and write every scan into ``out_dir``.

        Written into a temporary sibling folder renamed at the end, so an
        interrupted run leaves no half-written set.

        Args:
            out_dir (str | Path): root to create.
            overwrite (bool): replace an existing non-empty ``out_dir``;
                only allowed for a folder this generator wrote (it holds
                ``ground_truth.json``). Defaults to False.
            show_progress (bool): an mmengine progress bar over the scans.

        Returns:
            dict: :meth:`summary` plus ``out_dir``.

        Raises:
            FileExistsError: ``out_dir`` is a file, or a non-empty folder and
                ``overwrite`` is False, or not written by this generator.
        """
        scans = self.plan()

        def write(tmp: Path, progress) -> None:
            for scan in scans:
                self._write_scan(tmp, scan)
                if progress is not None:
                    progress.update()
            self._write_tables(tmp)
            (tmp / GROUND_TRUTH_FILE).write_text(
                json.dumps(self.ground_truth(), indent=1) + '\n',
                encoding='utf-8')

        out = write_dataset_dir(out_dir, write, overwrite, GROUND_TRUTH_FILE,
                                len(scans) if show_progress else 0)
        summary = self.summary()
        summary['out_dir'] = str(out)
        return summary

    def _write_tables(self, root: Path) -> None:
        scans = self.plan()
        if any(s.dataset == 'luna16' for s in scans):
            ann, excl = self.luna16_rows()
            for name, rows in (('annotations.csv', ann),
                               ('annotations_excluded.csv', excl)):
                buf = io.StringIO()
                writer = csv.writer(buf, lineterminator='\n')
                writer.writerow(LUNA16_COLUMNS)
                writer.writerows(rows)
                (root / 'luna16' / name).write_text(buf.getvalue(),
                                                    encoding='utf-8')
            (root / 'luna16' / 'seriesuids.csv').write_text(
                ''.join(f'{s.series_uid}\n' for s in scans
                        if s.dataset == 'luna16'), encoding='utf-8')
        kits = [s for s in scans if s.dataset == 'kits']
        if kits:
            info = [dict(case_id=s.scan_id,
                         voxel_spacing=dict(x_spacing=s.grid.spacing,
                                            y_spacing=s.grid.spacing,
                                            z_spacing=s.thickness))
                    for s in kits]
            (root / 'kits' / 'kits.json').write_text(
                json.dumps(info, indent=4) + '\n', encoding='utf-8')

    def summary(self) -> dict:
        """Counts of the planned (and, after rendering, planted) set."""
        scans = self.plan()
        out: Dict[str, dict] = {}
        for s in scans:
            d = out.setdefault(s.dataset, dict(scans=0, train=0, val=0,
                                               lesions={}, unannotated=0,
                                               lookalikes=0, slices=0))
            d['scans'] += 1
            d[s.split] += 1
            d['slices'] += s.num_slices
            d['lookalikes'] += len(s.lookalikes)
            for les in s.lesions:
                d['lesions'][les.kind] = d['lesions'].get(les.kind, 0) + 1
                d['unannotated'] += int(not les.annotated
                                        and not les.excluded)
        return out


def _fmt(value: float) -> str:
    """A float as the official LUNA16 CSVs write it (10 digits)."""
    text = f'{float(value):.10g}'
    return '0' if text == '-0' else text


def _to_file_layout(arr: np.ndarray, scan: _Scan):
    """A SimpleITK image of a canonical (z, y, x) array, in the dataset's
    stored axis order (see the module doc)."""
    import SimpleITK as sitk
    sp, thk = scan.grid.spacing, scan.thickness
    ox, oy, oz = scan.origin_xyz
    nz, ny, nx = arr.shape
    if scan.dataset == 'kits':
        # first file axis = axial, running head -> feet (world -z)
        image = sitk.GetImageFromArray(
            np.ascontiguousarray(arr[::-1].transpose(2, 1, 0)))
        image.SetSpacing((thk, sp, sp))
        image.SetOrigin((ox, oy, oz + (nz - 1) * thk))
        image.SetDirection(KITS_DIRECTION)
    else:  # LiTS: rows and columns flipped
        image = sitk.GetImageFromArray(np.ascontiguousarray(arr[:, ::-1,
                                                                ::-1]))
        image.SetSpacing((sp, sp, thk))
        image.SetOrigin((ox + (nx - 1) * sp, oy + (ny - 1) * sp, oz))
        image.SetDirection(LITS_DIRECTION)
    return image


def generate_demo_volumes(out_dir: Union[str, Path],
                          seed: int = 0,
                          overwrite: bool = False,
                          show_progress: bool = False,
                          **kwargs) -> dict:
    """Write the synthetic volume set; see :class:`DemoVolumeGenerator`.

    Args:
        out_dir (str | Path): root folder.
        seed (int): random seed. Defaults to 0.
        overwrite (bool): replace a previously generated set.
        show_progress (bool): show a progress bar.
        **kwargs: other :class:`DemoVolumeConfig` fields.

    Returns:
        dict: summary counts of the written set.
    """
    gen = DemoVolumeGenerator(seed=seed, **kwargs)
    return gen.generate(out_dir, overwrite=overwrite,
                        show_progress=show_progress)
