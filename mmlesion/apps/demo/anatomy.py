# Copyright (c) mmlesion contributors. All rights reserved.
"""The patient model of the synthetic CT: tissues, slice grid, lesions,
vessels and the per-patient anatomy the phantom draws."""
import functools
import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import List, Optional, Sequence, Tuple

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
        x, y = self.pixel_to_mm(idx, idx)
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


#: ``NOT_BODY[labels]``: the pixels outside the patient.
NOT_BODY = tissue_lut((Tissue.AIR, Tissue.TABLE))
