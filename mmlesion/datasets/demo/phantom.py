# Copyright (c) mmlesion contributors. All rights reserved.
"""A 3D torso phantom that can be sampled at any axial position.

The phantom is the drawing half of the demo-data generator
(:mod:`mmlesion.datasets.demo.generator`). Every structure is defined in
patient millimetres as a function of the axial position ``z`` (head to feet),
so consecutive slices of a series change smoothly: organs grow and shrink,
vessels move, and lesions (3D ellipsoids) shrink away from their central
slice, as in the DeepLesion key slices and their neighbours (Yan et al.,
"DeepLesion", J. Med. Imaging 2018, Sec. 2).

Conventions (radiological, as in DeepLesion PNGs):

* image columns grow towards the patient's left (the liver is on the image
  left), image rows grow towards the patient's back;
* ``t = z / length`` is the normalised body position used by the CSV column
  ``Normalized_lesion_location`` (lungs ~0.3-0.5, liver ~0.5-0.65,
  pelvis ~0.8);
* values are Hounsfield units (air -1000, fat -100, muscle 50,
  contrast-enhanced liver ~110, bone cortex ~700).
"""
import functools
import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

HU_MIN = -1024
HU_MAX = 3071


class Tissue(IntEnum):
    """Labels of the phantom's label map (one per pixel)."""
    AIR = 0
    TABLE = 1
    SUBCUT_FAT = 2
    MUSCLE = 3
    VISCERAL_FAT = 4
    BOWEL = 5
    GAS = 6
    LUNG = 7
    HEART = 8
    LIVER = 9
    SPLEEN = 10
    KIDNEY = 11
    BLADDER = 12
    VESSEL = 13
    BONE_CORTEX = 14
    BONE_MARROW = 15
    DISC = 16
    CANAL = 17
    LESION = 18


@dataclass(frozen=True)
class SliceGrid:
    """Pixel grid of one series: square image, isotropic in-plane spacing.

    Args:
        size (int): image height and width in pixels.
        spacing (float): in-plane pixel spacing in mm/px.
        offset_x (float): position of the patient axis relative to the image
            centre along the columns, in mm.
        offset_y (float): same along the rows, in mm.
    """
    size: int
    spacing: float
    offset_x: float = 0.
    offset_y: float = 0.

    def mm_to_pixel(self, x: np.ndarray, y: np.ndarray
                    ) -> Tuple[np.ndarray, np.ndarray]:
        """Patient mm -> 0-based (column, row) pixel coordinates."""
        c = (self.size - 1) / 2.
        return ((np.asarray(x) + self.offset_x) / self.spacing + c,
                (np.asarray(y) + self.offset_y) / self.spacing + c)

    def pixel_to_mm(self, col: np.ndarray, row: np.ndarray
                    ) -> Tuple[np.ndarray, np.ndarray]:
        """0-based (column, row) pixel coordinates -> patient mm."""
        c = (self.size - 1) / 2.
        return ((np.asarray(col) - c) * self.spacing - self.offset_x,
                (np.asarray(row) - c) * self.spacing - self.offset_y)

    def coords(self) -> Tuple[np.ndarray, np.ndarray]:
        """Patient mm of every pixel centre, each ``(size, size)`` float32."""
        idx = np.arange(self.size, dtype=np.float64)
        x, _ = self.pixel_to_mm(idx, idx)
        _, y = self.pixel_to_mm(idx, idx)
        xx, yy = np.meshgrid(x.astype(np.float32), y.astype(np.float32))
        return xx, yy


@dataclass
class Lesion:
    """A lesion: a 3D ellipsoid with one HU value and a soft edge.

    Args:
        center (tuple): (x, y, z) in patient mm.
        semi_axes (tuple): (a, b, c) in mm; ``a >= b`` are the in-plane long
            and short semi-axes, ``c`` the axial one.
        angle (float): in-plane direction of the long axis, radians, in
            image coordinates (columns, rows).
        hu (float): lesion attenuation.
        lesion_type (int): DeepLesion coarse type 1..8.
        host (int): :class:`Tissue` of the organ it sits in.
        host_hu (float): attenuation of that organ (for contrast stats).
        annotated (bool): whether the CSV gets a row for it.
    """
    center: Tuple[float, float, float]
    semi_axes: Tuple[float, float, float]
    angle: float
    hu: float
    lesion_type: int
    host: int
    host_hu: float
    annotated: bool = True

    def cross_section(self, z: float) -> Optional[Tuple[float, float]]:
        """In-plane semi-axes (a, b) of the section at ``z`` or None."""
        dz = (z - self.center[2]) / self.semi_axes[2]
        if abs(dz) >= 1.:
            return None
        s = math.sqrt(1. - dz * dz)
        return self.semi_axes[0] * s, self.semi_axes[1] * s

    def recist_mm(self, z: float) -> Optional[np.ndarray]:
        """RECIST end points of the section at ``z`` in patient mm.

        Returns:
            np.ndarray | None: (4, 2) long-axis end points then short-axis
            end points, or None if the section is empty.
        """
        sec = self.cross_section(z)
        if sec is None:
            return None
        a, b = sec
        cx, cy = self.center[:2]
        ux, uy = math.cos(self.angle), math.sin(self.angle)
        return np.array(
            [[cx + a * ux, cy + a * uy], [cx - a * ux, cy - a * uy],
             [cx - b * uy, cy + b * ux], [cx + b * uy, cy - b * ux]],
            dtype=np.float64)


@dataclass
class VesselSegment:
    """A straight piece of a contrast-filled vessel (a capsule).

    Args:
        p0 (np.ndarray): start point (x, y, z) in mm.
        p1 (np.ndarray): end point (x, y, z) in mm.
        radius (float): radius in mm.
        hu (float): absolute attenuation, or a delta over the host when
            ``relative`` is True.
        hosts (tuple): tissues the vessel may be drawn into.
        relative (bool): see ``hu``.
    """
    p0: np.ndarray
    p1: np.ndarray
    radius: float
    hu: float
    hosts: Tuple[int, ...]
    relative: bool = False


def _smoothstep(e0: float, e1: float, x: float) -> float:
    u = min(max((x - e0) / (e1 - e0), 0.), 1.)
    return u * u * (3. - 2. * u)


def organ_scale(t: float,
                t0: float,
                t1: float,
                peak: float = .5,
                power: float = .5) -> float:
    """Size factor in [0, 1] of an organ spanning ``[t0, t1]`` along z.

    A sine bump whose maximum is at the fraction ``peak`` of the span, so
    domes (liver, lungs) can be asymmetric; a smaller ``power`` gives a
    flatter top and steeper ends.
    """
    if t1 <= t0:
        return 0.
    u = (t - t0) / (t1 - t0)
    if u <= 0. or u >= 1.:
        return 0.
    k = math.log(.5) / math.log(peak)
    return math.sin(math.pi * u**k)**power


@dataclass
class PatientAnatomy:
    """Per-patient anatomical parameters (mm unless stated).

    Use :meth:`sample` to draw a plausible (slim) adult torso.

    Attributes:
        length (float): mm per unit of the normalised position ``t``.
        half_width, half_depth (float): body outline semi-axes.
        exponent (float): super-ellipse exponent of the outline.
        fat, muscle (float): thickness of the subcutaneous fat and of the
            muscle wall.
        t_lung_top, t_diaphragm, t_liver_end, t_kidney (float): organ
            landmarks along ``t``.
        vertebra_radius, disc_period, disc_phase (float): spine.
        liver_hu, spleen_hu, kidney_hu, aorta_hu (float): enhancement.
        depth_phase (float): phase of the outline's slow change along z.
        rib_phases (np.ndarray): (2, 8) rib positions.
        bowel_fields (np.ndarray): (2, 64, 64) smooth fields whose
            z-rotation draws the bowel loops.
        vessels (list[VesselSegment]): pulmonary, hepatic/portal and
            mesenteric trees.
    """
    length: float
    half_width: float
    half_depth: float
    exponent: float
    fat: float
    muscle: float
    t_lung_top: float
    t_diaphragm: float
    t_liver_end: float
    t_kidney: float
    vertebra_radius: float
    disc_period: float
    disc_phase: float
    liver_hu: float
    spleen_hu: float
    kidney_hu: float
    aorta_hu: float
    depth_phase: float
    rib_phases: np.ndarray
    bowel_fields: np.ndarray
    vessels: List[VesselSegment] = field(default_factory=list)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> 'PatientAnatomy':
        """Draw an anatomy, vessel trees included."""
        t_diaphragm = rng.uniform(.49, .52)
        coarse = rng.standard_normal((2, 64, 64))
        fields = np.stack(
            [gaussian_filter(f, 1., mode='wrap') for f in coarse])
        fields /= fields.std(axis=(1, 2), keepdims=True)
        anatomy = cls(
            length=rng.uniform(900., 1000.),
            half_width=rng.uniform(120., 150.),
            half_depth=rng.uniform(85., 110.),
            exponent=rng.uniform(2.2, 2.8),
            fat=rng.uniform(9., 26.),
            muscle=rng.uniform(6., 11.),
            t_lung_top=rng.uniform(.27, .30),
            t_diaphragm=t_diaphragm,
            t_liver_end=rng.uniform(.64, .68),
            t_kidney=rng.uniform(.62, .65),
            vertebra_radius=rng.uniform(15., 19.),
            disc_period=rng.uniform(28., 34.),
            disc_phase=rng.uniform(0., 34.),
            liver_hu=rng.uniform(100., 120.),
            spleen_hu=rng.uniform(110., 125.),
            kidney_hu=rng.uniform(160., 190.),
            aorta_hu=rng.uniform(180., 230.),
            depth_phase=rng.uniform(0., 2 * math.pi),
            rib_phases=rng.uniform(0., 1., size=(2, 8)),
            bowel_fields=fields.astype(np.float32))
        anatomy.vessels = anatomy._sample_vessels(rng)
        return anatomy

    # ------------------------------------------------------------------
    # body geometry as a function of the normalised position t
    def body_axes(self, t: float) -> Tuple[float, float]:
        """Half width and half depth of the body outline at ``t``."""
        a = self.half_width * (1. + .08 * _smoothstep(.66, .84, t))
        b = self.half_depth * (1. + .05 * math.sin(2 * math.pi * t / .45 +
                                                   self.depth_phase))
        return a, b

    def cavity_axes(self, t: float) -> Tuple[float, float]:
        """Half axes of the space inside the fat and muscle layers."""
        a, b = self.body_axes(t)
        wall = self.fat + self.muscle
        return a - wall, b - wall

    def aorta_center(self, t: float) -> Tuple[float, float]:
        ai, bi = self.cavity_axes(t)
        u = _smoothstep(.45, .6, t)
        return ((.18 - .12 * u) * ai, (.38 - .05 * u) * bi)

    def vertebra_center(self, t: float) -> Tuple[float, float]:
        _, bi = self.cavity_axes(t)
        return 0., .58 * bi

    def _sample_vessels(self, rng: np.random.Generator) -> List[VesselSegment]:
        """Branching trees: pulmonary, hepatic/portal and mesenteric."""
        vessels: List[VesselSegment] = []
        for t_root in (.37, .42, .47):
            ai, bi = self.cavity_axes(t_root)
            for side in (-1., 1.):
                root = np.array([side * .3 * ai, .05 * bi,
                                 t_root * self.length])
                for dz, dy in ((-.8, -.5), (-.5, .6), (0., -.7), (0., .7),
                               (.6, -.5), (.9, .5)):
                    direction = np.array([side * 1., dy, dz])
                    self._grow(vessels, rng, root, direction, 3.5, 40., 3,
                               hu=rng.uniform(30., 60.),
                               hosts=(Tissue.LUNG, ), relative=False)
        ai, bi = self.cavity_axes(.56)
        porta = np.array([-.25 * ai, .1 * bi, .56 * self.length])
        for direction in ([-1., -.6, -.3], [-1., .4, .4], [.2, -1., -.4]):
            self._grow(vessels, rng, porta, np.array(direction), 6., 40., 3,
                       hu=rng.uniform(170., 220.), hosts=(Tissue.LIVER, ),
                       relative=True)
        hepatic = np.array([-.12 * ai, .25 * bi, (self.t_diaphragm + .015) *
                            self.length])
        for direction in ([-1., -.8, .6], [-.3, -1., .7]):
            self._grow(vessels, rng, hepatic, np.array(direction), 5.5, 45.,
                       3, hu=rng.uniform(170., 220.),
                       hosts=(Tissue.LIVER, ), relative=True)
        ai, bi = self.cavity_axes(.64)
        sma = np.array([.03 * ai, .2 * bi, .61 * self.length])
        for direction in ([.3, -1., 1.], [-.6, -.7, 1.], [.8, -.4, 1.2],
                          [-.2, -1., .4]):
            self._grow(vessels, rng, sma, np.array(direction), 4., 45., 4,
                       hu=rng.uniform(180., 230.),
                       hosts=(Tissue.VISCERAL_FAT, Tissue.BOWEL),
                       relative=False)
        return vessels

    def _grow(self, out: List[VesselSegment], rng: np.random.Generator,
              start: np.ndarray, direction: np.ndarray, radius: float,
              length: float, depth: int, hu: float, hosts: Tuple[int, ...],
              relative: bool) -> None:
        direction = direction / math.sqrt(float(direction @ direction))
        end = start + direction * length * rng.uniform(.8, 1.2)
        out.append(
            VesselSegment(start.copy(), end, radius, hu, hosts, relative))
        if depth <= 1:
            return
        for sign in (-1., 1.):
            jitter = rng.normal(0., .45, size=3)
            jitter[0] *= sign
            child = direction + jitter
            self._grow(out, rng, end, child, max(radius * .7, 1.2),
                       length * .8, depth - 1, hu, hosts, relative)


def tissue_lut(tissues: Sequence[int]) -> np.ndarray:
    """Boolean look-up table: ``tissue_lut(t)[labels]`` is ``isin``."""
    return _tissue_lut(tuple(int(t) for t in tissues))


@functools.lru_cache(maxsize=None)
def _tissue_lut(tissues: Tuple[int, ...]) -> np.ndarray:
    lut = np.zeros(256, dtype=bool)
    lut[list(tissues)] = True
    lut.setflags(write=False)
    return lut


class _Canvas:
    """HU and label images being painted, with patch helpers."""

    def __init__(self, grid: SliceGrid, xx: np.ndarray, yy: np.ndarray):
        self.grid = grid
        self.xx, self.yy = xx, yy
        n = grid.size
        self.hu = np.full((n, n), -1000., dtype=np.float32)
        self.labels = np.zeros((n, n), dtype=np.uint8)

    def window(self, cx: float, cy: float, rx: float,
               ry: float) -> Optional[Tuple[slice, slice]]:
        """Row/column slices covering the mm box ``c +- r`` (or None)."""
        g = self.grid
        n = g.size
        half = (n - 1) / 2.
        c0 = (cx - rx + g.offset_x) / g.spacing + half
        c1 = (cx + rx + g.offset_x) / g.spacing + half
        r0 = (cy - ry + g.offset_y) / g.spacing + half
        r1 = (cy + ry + g.offset_y) / g.spacing + half
        cs = max(int(math.floor(c0)) - 1, 0)
        ce = min(int(math.ceil(c1)) + 2, n)
        rs = max(int(math.floor(r0)) - 1, 0)
        re = min(int(math.ceil(r1)) + 2, n)
        if cs >= ce or rs >= re:
            return None
        return slice(rs, re), slice(cs, ce)

    def ellipse_q(self, cx: float, cy: float, a: float, b: float,
                  angle: float = 0.):
        """Normalised squared radius of an ellipse over its bounding patch.

        Returns:
            tuple | None: (patch slices, q) with q < 1 inside.
        """
        if a <= 0. or b <= 0.:
            return None
        r = max(a, b)
        win = self.window(cx, cy, r, r)
        if win is None:
            return None
        dx = self.xx[win] - cx
        dy = self.yy[win] - cy
        if angle:
            ca, sa = math.cos(angle), math.sin(angle)
            dx, dy = dx * ca + dy * sa, -dx * sa + dy * ca
        return win, (dx / a)**2 + (dy / b)**2

    def paint(self, win, mask: np.ndarray, hu: float, label: int,
              hosts: Optional[Sequence[int]] = None) -> None:
        """Set HU and label where ``mask`` (and the host labels) hold."""
        if hosts is not None:
            mask = mask & tissue_lut(hosts)[self.labels[win]]
        self.hu[win][mask] = hu
        self.labels[win][mask] = label

    def ellipse(self, cx: float, cy: float, a: float, b: float, hu: float,
                label: int, angle: float = 0.,
                hosts: Optional[Sequence[int]] = None) -> None:
        res = self.ellipse_q(cx, cy, a, b, angle)
        if res is not None:
            win, q = res
            self.paint(win, q < 1., hu, label, hosts)

    def blend(self, win, weight: np.ndarray, hu, label: int,
              hosts: Optional[Sequence[int]] = None) -> None:
        """Anti-aliased painting: ``hu = (1 - w) hu + w value``."""
        if hosts is not None:
            weight = weight * tissue_lut(hosts)[self.labels[win]]
        if not weight.any():
            return
        patch = self.hu[win]
        patch += weight * (np.asarray(hu, dtype=np.float32) - patch)
        self.labels[win][weight > .5] = label


class CTPhantom:
    """A patient phantom with lesions, rendered slice by slice.

    Args:
        anatomy (PatientAnatomy): the patient.
        lesions (list[Lesion]): lesions drawn into the volume.
    """

    def __init__(self, anatomy: PatientAnatomy,
                 lesions: Optional[List[Lesion]] = None):
        self.anatomy = anatomy
        self.lesions: List[Lesion] = list(lesions or [])
        self._cache: Dict[SliceGrid, dict] = {}
        vessels = anatomy.vessels
        ends = np.array([[v.p0[2], v.p1[2]] for v in vessels]).reshape(-1, 2)
        radii = np.array([v.radius for v in vessels])
        self._vessel_zmin = ends.min(axis=1) - radii
        self._vessel_zmax = ends.max(axis=1) + radii

    def clear_cache(self) -> None:
        """Drop the per-grid arrays (about 2 MB per 256 x 256 grid)."""
        self._cache.clear()

    def _grid_data(self, grid: SliceGrid) -> dict:
        """Per-grid constants: coordinates, powers, table, bowel fields."""
        if grid not in self._cache:
            an = self.anatomy
            xx, yy = grid.coords()
            # the coarse bowel fields cover 640 x 640 mm at 10 mm per cell
            cells = an.bowel_fields.shape[-1]
            map_x = np.ascontiguousarray(xx / 10. + cells / 2.)
            map_y = np.ascontiguousarray(yy / 10. + cells / 2.)
            bowel = np.stack([
                cv2.remap(f, map_x, map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_WRAP)
                for f in an.bowel_fields
            ])
            ytab = an.half_depth * 1.06 + 16. - 6e-4 * xx**2
            table = (np.abs(yy - ytab) < 2.) & (
                np.abs(xx) < 1.35 * an.half_width)
            self._cache[grid] = dict(
                xx=xx, yy=yy, bowel=bowel, table=table,
                xp=np.abs(xx)**an.exponent, yp=np.abs(yy)**an.exponent)
        return self._cache[grid]

    def render(self, z: float, grid: SliceGrid,
               with_lesions: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """Noise-free HU image and label map of the axial slice at ``z``.

        Args:
            z (float): axial position in mm.
            grid (SliceGrid): pixel grid.
            with_lesions (bool): draw the lesions. Defaults to True.

        Returns:
            tuple: HU (float32, H x W) and labels (uint8, :class:`Tissue`).
        """
        data = self._grid_data(grid)
        an = self.anatomy
        t = z / an.length
        cv = _Canvas(grid, data['xx'], data['yy'])
        self._draw_body(cv, t, data)
        self._draw_abdomen(cv, t, z, data['bowel'])
        self._draw_chest(cv, t)
        self._draw_organs(cv, t)
        self._draw_bones(cv, t, z)
        self._draw_vessels(cv, z)
        if with_lesions:
            self._draw_lesions(cv, z)
        return cv.hu, cv.labels

    # ------------------------------------------------------------------
    def _draw_body(self, cv: _Canvas, t: float, data: dict) -> None:
        an = self.anatomy
        a, b = an.body_axes(t)
        p = an.exponent
        # CT table: a thin curved plate under the patient
        cv.hu[data['table']] = 250.
        cv.labels[data['table']] = Tissue.TABLE
        xp, yp = data['xp'], data['yp']
        for scale_a, scale_b, hu, label in (
            (a, b, -100., Tissue.SUBCUT_FAT),
            (a - an.fat, b - an.fat, 50., Tissue.MUSCLE),
            (a - an.fat - an.muscle, b - an.fat - an.muscle, -90.,
             Tissue.VISCERAL_FAT),
        ):
            inside = xp * np.float32(scale_a**-p) + yp * np.float32(
                scale_b**-p) < 1.
            cv.hu[inside] = hu
            cv.labels[inside] = label
        ai, bi = an.cavity_axes(t)
        # paraspinal muscles behind the spine
        for side in (-1., 1.):
            cv.ellipse(side * .2 * ai, .86 * bi, .17 * ai, .2 * bi, 50.,
                       Tissue.MUSCLE)

    def _draw_abdomen(self, cv: _Canvas, t: float, z: float,
                      bowel: np.ndarray) -> None:
        an = self.anatomy
        if t < an.t_diaphragm + .01:
            return
        # bowel loops: an enhancing wall around fluid, oral contrast or gas;
        # two smooth fields rotated along z keep loops continuous in 3D
        theta = 2 * math.pi * z / 90.
        ct, st = math.cos(theta), math.sin(theta)
        f = ct * bowel[0] + st * bowel[1]
        g = st * bowel[0] - ct * bowel[1]
        inside = cv.labels == Tissue.VISCERAL_FAT
        loops = inside & (f > .25)
        cv.hu[loops] = 45.
        cv.labels[loops] = Tissue.BOWEL
        lumen = inside & (f > .6)
        cv.hu[lumen] = np.where(g[lumen] > .7, 210., 12.)
        gas = lumen & (g < -1.)
        cv.hu[gas] = -950.
        cv.labels[gas] = Tissue.GAS
        ai, bi = an.cavity_axes(t)
        s = _smoothstep(.6, .85, t)
        if s > 0:
            for side in (-1., 1.):  # psoas
                cv.ellipse(side * .24 * ai, .5 * bi, 8. + 14. * s,
                           8. + 12. * s, 50., Tissue.MUSCLE)
        s = organ_scale(t, .83, .97, peak=.4)
        if s > 0:
            cv.ellipse(0., -.3 * bi, .38 * ai * s, .4 * bi * s, 8.,
                       Tissue.BLADDER)

    def _draw_chest(self, cv: _Canvas, t: float) -> None:
        an = self.anatomy
        ai, bi = an.cavity_axes(t)
        for side, t_base in ((-1., an.t_diaphragm),
                             (1., an.t_diaphragm + .015)):
            s = organ_scale(t, an.t_lung_top, t_base, peak=.62, power=.3)
            if s > 0:
                cv.ellipse(side * .5 * ai, .02 * bi, .44 * ai * s,
                           .86 * bi * s, -860., Tissue.LUNG,
                           angle=side * .1)
        s = organ_scale(t, .36, an.t_diaphragm + .01, peak=.55)
        if s > 0:
            cv.ellipse(.12 * ai, -.22 * bi, .36 * ai * s, .5 * bi * s, 130.,
                       Tissue.HEART, angle=-.5)
            cv.ellipse(.16 * ai, -.2 * bi, .2 * ai * s, .26 * bi * s, 170.,
                       Tissue.HEART, angle=-.5)
        if an.t_lung_top - .02 < t < .38:  # trachea
            cv.ellipse(0., -.12 * bi, 9., 8., -990., Tissue.GAS)

    def _draw_organs(self, cv: _Canvas, t: float) -> None:
        an = self.anatomy
        ai, bi = an.cavity_axes(t)
        s = organ_scale(t, an.t_diaphragm - .025, an.t_liver_end, peak=.25)
        if s > 0:
            cv.ellipse(-.4 * ai, .0 * bi, .56 * ai * s, .8 * bi * s,
                       an.liver_hu, Tissue.LIVER, angle=.25)
        s = organ_scale(t, an.t_diaphragm - .01, an.t_diaphragm + .07,
                        peak=.35)
        if s > 0:
            cv.ellipse(.02 * ai, -.42 * bi, .4 * ai * s, .32 * bi * s,
                       an.liver_hu, Tissue.LIVER, angle=-.15)
        s = organ_scale(t, an.t_diaphragm, an.t_diaphragm + .1)
        if s > 0:
            cv.ellipse(.6 * ai, .28 * bi, .22 * ai * s, .42 * bi * s,
                       an.spleen_hu, Tissue.SPLEEN, angle=.5)
        for side, dt in ((-1., .012), (1., -.005)):
            tk = an.t_kidney + dt
            s = organ_scale(t, tk - .06, tk + .06)
            if s > 0:
                kx, ky = side * .42 * ai, .52 * bi
                cv.ellipse(kx, ky, 30. * s, 23. * s, an.kidney_hu,
                           Tissue.KIDNEY, angle=side * -.5)
                # renal sinus fat opening medially (the hilum)
                cv.ellipse(kx - side * 20. * s, ky, 11. * s, 7. * s, -60.,
                           Tissue.VISCERAL_FAT, angle=side * -.5)
        if .33 < t < .75:
            ax_, ay_ = an.aorta_center(t)
            r = 12. - 2. * _smoothstep(.5, .75, t)
            cv.ellipse(ax_, ay_, r, r, an.aorta_hu, Tissue.VESSEL)
        if an.t_diaphragm < t < .77:  # inferior vena cava
            cv.ellipse(-.17 * ai, .38 * bi, 11., 9., an.aorta_hu - 60.,
                       Tissue.VESSEL)

    def _draw_bones(self, cv: _Canvas, t: float, z: float) -> None:
        an = self.anatomy
        ai, bi = an.cavity_axes(t)
        vx, vy = an.vertebra_center(t)
        rv = an.vertebra_radius * (1. + .35 * _smoothstep(.8, .9, t))
        phase = ((z - an.disc_phase) % an.disc_period) / an.disc_period
        in_disc = phase < .2
        if in_disc:
            cv.ellipse(vx, vy, rv, rv * .85, 85., Tissue.DISC)
        else:
            cv.ellipse(vx, vy, rv, rv * .85, 700., Tissue.BONE_CORTEX)
            cv.ellipse(vx, vy, rv - 2.5, rv * .85 - 2.5, 230.,
                       Tissue.BONE_MARROW)
        cy = vy + rv * .85 + 9.
        cv.ellipse(vx, cy, 13., 12., 650., Tissue.BONE_CORTEX)
        cv.ellipse(vx, cy, 8., 7.5, 15., Tissue.CANAL)
        cv.ellipse(vx, cy + 18., 4., 10., 650., Tissue.BONE_CORTEX)
        for side in (-1., 1.):
            cv.ellipse(side * 20., cy - 2., 12., 4., 650., Tissue.BONE_CORTEX,
                       angle=side * .3)
        if t < .62:  # ribs: intermittent blobs along the wall
            ra, rb = ai + an.muscle * .4, bi + an.muscle * .4
            for side in (0, 1):
                for k, phase0 in enumerate(an.rib_phases[side]):
                    vis = math.sin(2 * math.pi * (z / 27. + phase0))
                    if vis < .2:
                        continue
                    ang = math.pi * (.15 + .1 * k + .04 * phase0)
                    sgn = -1. if side == 0 else 1.
                    px = sgn * ra * math.sin(ang)
                    py = rb * math.cos(ang)
                    cv.ellipse(px, py, 7., 4.5, 600., Tissue.BONE_CORTEX,
                               angle=-sgn * ang + math.pi / 2)
                    cv.ellipse(px, py, 4.5, 2.2, 220., Tissue.BONE_MARROW,
                               angle=-sgn * ang + math.pi / 2)
        s = organ_scale(t, .74, .89, peak=.4)
        if s > 0:  # iliac wings
            for side in (-1., 1.):
                cx, cy2 = side * .58 * ai, .3 * bi
                cv.ellipse(cx, cy2, 12. * s + 2, .5 * bi * s, 650.,
                           Tissue.BONE_CORTEX, angle=side * .6)
                cv.ellipse(cx, cy2, 8. * s, .5 * bi * s - 3., 220.,
                           Tissue.BONE_MARROW, angle=side * .6)
        if t > .9:  # femoral heads
            for side in (-1., 1.):
                cv.ellipse(side * .6 * ai, .1 * bi, 23., 23., 650.,
                           Tissue.BONE_CORTEX)
                cv.ellipse(side * .6 * ai, .1 * bi, 20., 20., 230.,
                           Tissue.BONE_MARROW)

    def _draw_vessels(self, cv: _Canvas, z: float) -> None:
        inv_width = 1. / cv.grid.spacing  # edge ramp over one pixel
        hits = np.nonzero((self._vessel_zmin <= z)
                          & (self._vessel_zmax >= z))[0]
        for i in hits:
            seg = self.anatomy.vessels[i]
            r = seg.radius
            x0, y0, z0 = (float(v) for v in seg.p0)
            dx, dy, dz = (float(v) for v in seg.p1 - seg.p0)
            length2 = dx * dx + dy * dy + dz * dz
            # part of the segment within the slab |z' - z| <= r
            if abs(dz) > 1e-6:
                u0 = (z - r - z0) / dz
                u1 = (z + r - z0) / dz
                lo, hi = max(min(u0, u1), 0.), min(max(u0, u1), 1.)
            else:
                lo, hi = 0., 1.
            if lo > hi:
                continue
            cx = x0 + (lo + hi) / 2 * dx
            cy = y0 + (lo + hi) / 2 * dy
            rx = abs(dx) * (hi - lo) / 2 + r
            ry = abs(dy) * (hi - lo) / 2 + r
            win = cv.window(cx, cy, rx, ry)
            if win is None:
                continue
            px = cv.xx[win] - np.float32(x0)
            py = cv.yy[win] - np.float32(y0)
            pz = np.float32(z - z0)
            u = (px * np.float32(dx / length2) + py * np.float32(dy / length2)
                 + np.float32(pz * dz / length2))
            np.minimum(np.maximum(u, 0., out=u), 1., out=u)
            px -= u * np.float32(dx)
            py -= u * np.float32(dy)
            ez = pz - u * np.float32(dz)
            dist = np.sqrt(px * px + py * py + ez * ez)
            weight = (np.float32(r) - dist) * np.float32(inv_width) + .5
            np.minimum(np.maximum(weight, 0., out=weight), 1., out=weight)
            value = seg.hu
            if seg.relative:
                value = cv.hu[win] + seg.hu
            cv.blend(win, weight, value, Tissue.VESSEL, hosts=seg.hosts)

    def _draw_lesions(self, cv: _Canvas, z: float) -> None:
        for les in self.lesions:
            sec = les.cross_section(z)
            if sec is None:
                continue
            a, b = sec
            pad = cv.grid.spacing
            res = cv.ellipse_q(les.center[0], les.center[1], a + pad,
                               b + pad, les.angle)
            if res is None:
                continue
            win, _ = res
            dx = cv.xx[win] - les.center[0]
            dy = cv.yy[win] - les.center[1]
            ca, sa = math.cos(les.angle), math.sin(les.angle)
            du, dv = dx * ca + dy * sa, -dx * sa + dy * ca
            r = np.sqrt((du / a)**2 + (dv / b)**2)
            # anti-aliased edge over ~one pixel along the mean radius
            weight = np.clip(
                (1. - r) * math.sqrt(a * b) / cv.grid.spacing + .5, 0., 1.)
            cv.blend(win, weight, les.hu, Tissue.LESION)


def simulate_acquisition(hu: np.ndarray,
                         noise_sigma: float,
                         rng: np.random.Generator,
                         body: Optional[np.ndarray] = None,
                         air_sigma: float = 6.,
                         psf_sigma_px: float = .7,
                         fov_fill: Optional[float] = None) -> np.ndarray:
    """Blur with the scanner's point-spread function and add noise.

    Real DeepLesion slices have ~5-7 HU of noise in the air around the
    patient, 10-40 HU inside, and often a constant value outside the
    circular reconstruction field of view; all three are reproduced.

    Args:
        hu (np.ndarray): noise-free HU image (float32).
        noise_sigma (float): noise standard deviation inside the body (HU).
        rng (np.random.Generator): noise source.
        body (np.ndarray, optional): boolean body mask; without it the
            noise is ``noise_sigma`` everywhere.
        air_sigma (float): noise standard deviation outside the body.
        psf_sigma_px (float): Gaussian PSF sigma in pixels.
        fov_fill (float, optional): HU written outside the inscribed circle
            (the reconstruction field of view); None keeps the air there.

    Returns:
        np.ndarray: int16 HU image clipped to [-1024, 3071].
    """
    img = cv2.GaussianBlur(hu, (0, 0), psf_sigma_px)
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    # mildly correlated noise (CT noise is not white), rescaled to sigma
    noise_psf = .6
    ksize = 2 * int(math.ceil(3 * noise_psf)) + 1
    noise = cv2.GaussianBlur(noise, (ksize, ksize), noise_psf)
    k = cv2.getGaussianKernel(ksize, noise_psf)
    gain = 1. / float((k**2).sum())  # 1 / std of blurred unit white noise
    if body is None:
        sigma = np.float32(noise_sigma * gain)
    else:
        weight = cv2.GaussianBlur(body.astype(np.float32), (0, 0), 2.)
        sigma = (np.float32(air_sigma) + np.float32(noise_sigma - air_sigma) *
                 weight) * np.float32(gain)
    img += noise * sigma
    out = np.clip(np.rint(img), HU_MIN, HU_MAX).astype(np.int16)
    if fov_fill is not None:
        n_rows, n_cols = hu.shape
        yy, xx = np.ogrid[:n_rows, :n_cols]
        outside = ((xx - (n_cols - 1) / 2.)**2 + (yy - (n_rows - 1) / 2.)**2
                   > (min(n_rows, n_cols) / 2.)**2)
        out[outside] = int(np.clip(fov_fill, HU_MIN, HU_MAX))
    return out
