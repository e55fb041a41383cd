# Copyright (c) mmlesion contributors. All rights reserved.
"""Planning and rendering the synthetic CT volumes: scan geometry, planted
lesions and their masks (no files)."""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mmlesion.apps.demo.anatomy import (NOT_BODY, Lesion, PatientAnatomy,
                                        SliceGrid, Tissue, tissue_lut)
from mmlesion.apps.demo.phantom import (Acquisition, CTPhantom,
                                        simulate_acquisition)
from mmlesion.structures.ct_geometry import world_to_voxel
from .volume_settings import UID_ROOT


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

    # geometry of the canonical grid (z, y, x), identity direction
    @property
    def shape_zyx(self) -> Tuple[int, int, int]:
        return self.num_slices, self.grid.size, self.grid.size

    @property
    def spacing_zyx(self) -> Tuple[float, float, float]:
        return self.thickness, self.grid.spacing, self.grid.spacing

    def phantom_z(self, k: np.ndarray) -> np.ndarray:
        """Phantom z (mm, head to feet) of slice ``k`` (0: most inferior)."""
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
        return world_to_voxel(xyz, self.spacing_zyx, self.origin_xyz)

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


class DemoVolumePlanner:
    """Plan and render the synthetic CT volumes (no files).

    The half of :class:`DemoVolumeGenerator` that needs no files: it reads
    ``self.config``.
    """

    def _draw_plan(self) -> List[_Scan]:
        """Draw every scan's geometry (lesions are placed when rendered)."""
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
            uid = UID_ROOT + '.'.join(
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
        """World positions of pulmonary vessel branchings inside the lung."""
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
                hu[k], Acquisition(scan.noise_sigma, scan.air_sigma), rng,
                body=NOT_BODY[labels[k]] == 0)
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
