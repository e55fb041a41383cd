# Copyright (c) mmlesion contributors. All rights reserved.
"""A 3D torso phantom (the patient model of :mod:`.anatomy`) sampled at
any axial position ``z`` (mm, head to feet): every structure is a smooth
function of ``z``, so neighbouring slices change as real ones do.

Radiological conventions, as DeepLesion's PNGs: columns grow towards the
patient's left, rows towards the back; ``t = z / length`` is the CSV's
normalised z (lungs ~0.3-0.5, liver ~0.5-0.65, pelvis ~0.8); values in HU.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .anatomy import (HU_MAX, HU_MIN, Lesion, PatientAnatomy, SliceGrid,
                      Tissue, _smoothstep, organ_scale, tissue_lut)


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
        n = self.grid.size
        c0, r0 = self.grid.mm_to_pixel(cx - rx, cy - ry)
        c1, r1 = self.grid.mm_to_pixel(cx + rx, cy + ry)
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


@dataclass(frozen=True)
class Acquisition:
    """The scanner :func:`simulate_acquisition` imitates.

    Args:
        noise_sigma (float): noise standard deviation inside the body (HU).
        air_sigma (float): noise standard deviation outside the body.
        psf_sigma_px (float): Gaussian PSF sigma in pixels.
        fov_fill (float, optional): HU written outside the inscribed circle
            (the reconstruction field of view); None keeps the air there.
    """
    noise_sigma: float
    air_sigma: float = 6.
    psf_sigma_px: float = .7
    fov_fill: Optional[float] = None


def simulate_acquisition(hu: np.ndarray,
                         scanner: Acquisition,
                         rng: np.random.Generator,
                         body: Optional[np.ndarray] = None) -> np.ndarray:
    """Blur with the scanner's point-spread function and add noise (as in
    DeepLesion: ~5-7 HU in the air, 10-40 HU inside, often a constant
    outside the circular field of view).

    Args:
        hu (np.ndarray): noise-free HU image (float32).
        scanner (Acquisition): noise, point-spread function, field of view.
        rng (np.random.Generator): noise source.
        body (np.ndarray, optional): boolean body mask; without it the
            noise is ``scanner.noise_sigma`` everywhere.

    Returns:
        np.ndarray: int16 HU image clipped to [-1024, 3071].
    """
    noise_sigma, air_sigma, psf_sigma_px, fov_fill = (
        scanner.noise_sigma, scanner.air_sigma, scanner.psf_sigma_px,
        scanner.fov_fill)
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
