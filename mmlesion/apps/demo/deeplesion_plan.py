# Copyright (c) mmlesion contributors. All rights reserved.
"""Planning the synthetic DeepLesion dataset: patients, series, key slices
and lesions, with the CSV rows they give (no pixels, no files)."""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from mmlesion.datasets.deeplesion.as_3d import merge_ranges

from .anatomy import NOT_BODY, Lesion, PatientAnatomy, SliceGrid, tissue_lut
from .phantom import CTPhantom
from .settings import (BOX_PADDING, SPLIT_CODES, _REGIONS, _REGION_PROBS,
                       _TYPE_SPECS)


@dataclass
class _KeySlice:
    index: int
    z: float
    lesions: List[Lesion]
    window: Tuple[float, float]
    body_box: Tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels)
    rows: List[dict] = field(default_factory=list)
    # per lesion: its number within the patient, shared by its instances in
    # the patient's studies (``lesion_id`` in demo_meta.json)
    lesion_nums: List[int] = field(default_factory=list)


@dataclass
class _Series:
    patient: int
    study: int
    series: int
    split: str
    gender: str
    age: Optional[int]
    region: str
    interval: float
    z_start: float
    grid: SliceGrid
    noise_sigma: float
    air_sigma: float
    fov_fill: Optional[float]
    phantom: CTPhantom
    keys: List[_KeySlice] = field(default_factory=list)
    blocks: List[Tuple[int, int]] = field(default_factory=list)

    @property
    def dir_name(self) -> str:
        return f'{self.patient:06d}_{self.study:02d}_{self.series:02d}'

    def z_of(self, index: int) -> float:
        return self.z_start + (index - 1) * self.interval

    def indices(self) -> List[int]:
        return [i for lo, hi in self.blocks for i in range(lo, hi + 1)]


class DeepLesionDemoPlanner:
    """Draw the synthetic dataset: patients, series, key slices, lesions.

    The half of :class:`DeepLesionDemoGenerator` that draws no pixels: it
    reads ``self.config``. A subclass changes a patient's studies
    (:meth:`_num_studies`, :meth:`_plan_study`), the body regions
    (:meth:`_region_probs`), the lesion types (:meth:`_type_specs`) and
    sizes (:meth:`_draw_size`, :meth:`_key_slice_axes`); ``SERIES`` is the
    series class it plans.
    """
    SERIES = _Series

    def _draw_plan(self) -> List[_Series]:
        """Draw patients, series, key slices and lesions (no pixels yet)."""
        cfg = self.config
        seed = int(cfg.seed)
        patients: List[List[_Series]] = []
        for split, code in SPLIT_CODES.items():
            budget = int(getattr(cfg, f'num_{split}'))
            j = 0
            while budget > 0:
                rng = np.random.default_rng([seed, code, j])
                series = self._plan_patient(rng, split, budget)
                j += 1
                n_keys = sum(len(s.keys) for s in series)
                if n_keys:
                    budget -= n_keys
                    patients.append(series)
                if j > 100 * int(getattr(cfg, f'num_{split}')) + 100:
                    raise RuntimeError('Could not place lesions; check the '
                                       'DemoDataConfig settings')
        # interleave the splits and give patient indices with small gaps
        rng = np.random.default_rng([seed, 7])
        order = rng.permutation(len(patients))
        gaps = rng.integers(1, 4, size=len(patients))
        pid = 0
        out: List[_Series] = []
        for k, gap in zip(order, gaps):
            pid += int(gap)
            for s in patients[k]:
                s.patient = pid
                out.append(s)
        return out

    def _plan_patient(self, rng: np.random.Generator, split: str,
                      budget: int) -> List[_Series]:
        cfg = self.config
        anatomy = PatientAnatomy.sample(rng)
        gender = 'M' if rng.random() < .55 else 'F'
        age = int(rng.integers(20, 86))
        nan_age = rng.random() < cfg.nan_age_prob
        n_studies = self._num_studies(rng)
        out: List[_Series] = []
        num_lesions = 0
        for study in range(1, n_studies + 1):
            if budget <= 0:
                break
            series = self._plan_study(rng, anatomy, out, split, study, budget)
            for key in series.keys:
                if not key.lesion_nums:  # new lesions (not a follow-up's)
                    key.lesion_nums = list(
                        range(num_lesions, num_lesions + len(key.lesions)))
                    num_lesions += len(key.lesions)
            series.gender = gender
            series.age = None if nan_age else age + int(
                rng.integers(0, 3)) * (study - 1)
            if series.keys:
                budget -= len(series.keys)
                out.append(series)
        return out

    @staticmethod
    def _num_studies(rng: np.random.Generator) -> int:
        """Studies of a patient: 2 with probability 0.35, else 1."""
        return 2 if rng.random() >= .65 else 1

    def _plan_study(self, rng: np.random.Generator, anatomy: PatientAnatomy,
                    earlier: List[_Series], split: str, study: int,
                    budget: int) -> _Series:
        """The patient's next study (after ``earlier``): a new series of
        1 or 2 key slices (at most ``budget``)."""
        n_keys = min(1 if rng.random() < .65 else 2, budget)
        return self._plan_series(rng, anatomy, split, study, n_keys)

    def _plan_series(self, rng: np.random.Generator, anatomy: PatientAnatomy,
                     split: str, study: int, n_keys: int) -> _Series:
        cfg = self.config
        series = self._draw_series(rng, anatomy, split, study)
        t_lo, t_hi = self._region_range(anatomy, series.region)
        margin = int(math.ceil(cfg.context_mm / series.interval))
        for _ in range(n_keys):
            for _attempt in range(20):
                t = rng.uniform(t_lo, t_hi)
                index = int(
                    round((t * anatomy.length - series.z_start) /
                          series.interval)) + 1
                index = max(index, margin + 1)
                key = self._plan_key(rng, series, index)
                if key is not None:
                    series.keys.append(key)
                    series.phantom.lesions.extend(key.lesions)
                    break
        self._finish_series(rng, series)
        return series

    def _finish_series(self, rng: np.random.Generator,
                       series: _Series) -> None:
        """Sort the key slices, add their stored neighbours and CSV rows."""
        margin = int(math.ceil(self.config.context_mm / series.interval))
        series.keys.sort(key=lambda k: k.index)
        series.blocks = merge_ranges([(k.index - margin, k.index + margin)
                                      for k in series.keys])
        for key in series.keys:
            key.rows = self._rows_for_key(rng, series, key)
        series.phantom.clear_cache()

    def _draw_series(self, rng: np.random.Generator, anatomy: PatientAnatomy,
                     split: str, study: int,
                     region: Optional[str] = None) -> _Series:
        """Acquisition settings of a new series (no key slice yet); the body
        region is drawn unless given."""
        cfg = self.config
        n = int(cfg.image_size)
        probs = np.asarray(cfg.slice_interval_probs, dtype=np.float64)
        interval = float(cfg.slice_intervals[rng.choice(
            len(probs), p=probs / probs.sum())])
        # in-plane spacing: preferred range, raised so the body fits
        a_max = anatomy.half_width * 1.08
        b_max = anatomy.half_depth * 1.05 + 25.
        need = 2 * max(a_max + 10., b_max + 20.) / (.94 * n)
        spacing = max(rng.uniform(*cfg.spacing_range), need)
        spacing = math.ceil(spacing * 100.) / 100.
        grid = SliceGrid(n, spacing, offset_x=round(rng.uniform(-8., 8.), 1),
                         offset_y=round(rng.uniform(-12., 2.), 1))
        if region is None:
            region = _REGIONS[rng.choice(3, p=self._region_probs())]
        t_lo, t_hi = self._region_range(anatomy, region)
        z_start = round((t_lo * anatomy.length) - rng.uniform(30., 80.), 1)
        series = self.SERIES(
            patient=0, study=study,
            series=int(rng.choice([1, 2, 3], p=[.8, .12, .08])), split=split,
            gender='M', age=None, region=region, interval=interval,
            z_start=z_start, grid=grid,
            noise_sigma=float(rng.uniform(*cfg.noise_sigma_range)),
            air_sigma=float(rng.uniform(4., 7.)),
            fov_fill=-1024. if rng.random() < .7 else None,
            phantom=CTPhantom(anatomy))
        return series

    def _region_probs(self) -> np.ndarray:
        """Probabilities of the body regions (``_REGIONS``) a series
        covers."""
        return np.asarray(_REGION_PROBS, np.float64)

    def _type_specs(self) -> dict:
        """The lesion types that may be drawn: type -> its spec."""
        return _TYPE_SPECS

    @staticmethod
    def _region_range(anatomy: PatientAnatomy,
                      region: str) -> Tuple[float, float]:
        if region == 'chest':
            return anatomy.t_lung_top + .05, anatomy.t_diaphragm - .005
        if region == 'abdomen':
            return anatomy.t_diaphragm + .01, .76
        return .77, .9

    def _plan_key(self, rng: np.random.Generator, series: _Series,
                  index: int) -> Optional[_KeySlice]:
        cfg = self.config
        z = series.z_of(index)
        # no two key slices of a series may show each other's lesions
        for key in series.keys:
            if key.index == index:
                return None
            for les in key.lesions:
                if abs(les.center[2] - z) < les.semi_axes[2] + 2.:
                    return None
        hu, labels = series.phantom.render(z, series.grid, with_lesions=False)
        areas = np.bincount(labels.ravel(), minlength=256)
        lo, hi = cfg.lesions_per_key
        n_annotated = int(rng.integers(lo, hi + 1))
        n_extra = int(rng.random() < cfg.unannotated_prob)
        lesions: List[Lesion] = []
        for k in range(n_annotated + n_extra):
            les = self._place_lesion(rng, series, z, hu, labels, areas,
                                     lesions, annotated=k < n_annotated)
            if les is not None:
                lesions.append(les)
        if not any(les.annotated for les in lesions):
            return None
        for key in series.keys:
            for les in lesions:
                if abs(les.center[2] - key.z) < les.semi_axes[2] + 2.:
                    return None
        return self._make_key(rng, index, z, lesions, labels)

    @staticmethod
    def _make_key(rng: np.random.Generator, index: int, z: float,
                  lesions: List[Lesion], labels: np.ndarray) -> _KeySlice:
        """A key slice with its DICOM window and body box."""
        lung = any(les.lesion_type == 5 for les in lesions)
        if lung:
            window = (-1500., 500.)
        else:
            window = (-175., 275.) if rng.random() < .9 else (-160., 240.)
        body = NOT_BODY[labels] == 0
        rows = np.nonzero(body.any(axis=1))[0]
        cols = np.nonzero(body.any(axis=0))[0]
        return _KeySlice(index=index, z=z, lesions=lesions, window=window,
                         body_box=(int(cols[0]), int(rows[0]), int(cols[-1]),
                                   int(rows[-1])))

    def _place_lesion(self, rng: np.random.Generator, series: _Series,
                      z: float, hu: np.ndarray, labels: np.ndarray,
                      areas: np.ndarray, others: List[Lesion],
                      annotated: bool) -> Optional[Lesion]:
        grid = series.grid
        anatomy = series.phantom.anatomy
        t = z / anatomy.length
        chest = t < anatomy.t_diaphragm
        candidates, weights = [], []
        specs = self._type_specs()
        for ltype, spec in specs.items():
            if ltype == 3 and not chest:
                continue
            if ltype == 2 and (chest or t > .765):
                continue
            if ltype == 8 and t <= .765:
                continue
            area = areas[list(spec['center'])].sum() * grid.spacing**2
            if area < 150.:
                continue
            candidates.append(ltype)
            weights.append(spec['weight'])
        if not candidates:
            return None
        w = np.asarray(weights) / np.sum(weights)
        ltype = candidates[rng.choice(len(candidates), p=w)]
        spec = specs[ltype]
        host_rows, host_cols = np.nonzero(
            tissue_lut(spec['center'])[labels])
        long_mm, ratio = self._draw_size(rng, ltype)
        for attempt in range(45):
            if attempt and attempt % 15 == 0:
                long_mm, ratio = self._draw_size(rng, ltype, (long_mm, ratio))
            a = long_mm / 2.
            b = a * ratio
            c = max(1.5, a * rng.uniform(.6, 1.1))
            pick = int(rng.integers(len(host_rows)))
            x, y = grid.pixel_to_mm(host_cols[pick] + rng.uniform(-.5, .5),
                                    host_rows[pick] + rng.uniform(-.5, .5))
            dz = rng.uniform(-.4, .4) * min(series.interval, c)
            a, b = self._key_slice_axes(a, b, c, dz)
            les = Lesion(
                center=(float(x), float(y), float(z + dz)),
                semi_axes=(a, b, c), angle=float(rng.uniform(0., math.pi)),
                hu=0., lesion_type=ltype, host=int(spec['center'][0]),
                host_hu=0., annotated=annotated)
            host_hu = self._check_fit(les, z, grid, hu, labels, others, spec)
            if host_hu is None:
                continue
            les.host_hu = host_hu
            les.hu = self._lesion_hu(ltype, host_hu, rng)
            return les
        return None

    @staticmethod
    def _draw_size(rng: np.random.Generator, ltype: int,
                   failed: Optional[Tuple[float, float]] = None
                   ) -> Tuple[float, float]:
        """A lesion's ``(long axis mm, short / long ratio)``: log-normal
        per type (``_TYPE_SPECS``), or after 15 failed placements of
        ``failed``, its long axis shrunk by 0.7."""
        if failed is not None:
            return max(failed[0] * .7, 3.), failed[1]
        spec = _TYPE_SPECS[ltype]
        long_mm = float(np.clip(
            spec['median'] * math.exp(rng.normal(0., spec['sigma'])),
            spec['lo'], spec['hi']))
        return long_mm, rng.uniform(.55, .95)

    @staticmethod
    def _key_slice_axes(a: float, b: float, c: float,
                        dz: float) -> Tuple[float, float]:
        """In-plane semi-axes of a lesion of drawn size ``a, b`` whose
        centre lies ``dz`` off the key slice (axial semi-axis ``c``)."""
        return a, b

    @staticmethod
    def _check_fit(les: Lesion, z: float, grid: SliceGrid, hu: np.ndarray,
                   labels: np.ndarray, others: List[Lesion],
                   spec: dict) -> Optional[float]:
        """Host HU if the lesion fits at the key slice, else None."""
        n = grid.size
        pts = les.recist_mm(z)
        if pts is None:
            return None
        cols, rows = grid.mm_to_pixel(pts[:, 0], pts[:, 1])
        lo, hi = BOX_PADDING + 1., n - BOX_PADDING - 2.
        if cols.min() < lo or rows.min() < lo or cols.max() > hi \
                or rows.max() > hi:
            return None
        for other in others:
            dist = math.hypot(les.center[0] - other.center[0],
                              les.center[1] - other.center[1])
            if dist < les.semi_axes[0] + other.semi_axes[0] + 4.:
                return None
        a, b = les.cross_section(z)
        cc, rr = grid.mm_to_pixel(les.center[0], les.center[1])
        r_px = a / grid.spacing + 1
        r0, r1 = max(int(rr - r_px), 0), min(int(rr + r_px) + 2, n)
        c0, c1 = max(int(cc - r_px), 0), min(int(cc + r_px) + 2, n)
        yy, xx = np.mgrid[r0:r1, c0:c1]
        xm, ym = grid.pixel_to_mm(xx, yy)
        dx, dy = xm - les.center[0], ym - les.center[1]
        ca, sa = math.cos(les.angle), math.sin(les.angle)
        inside = ((dx * ca + dy * sa) / a)**2 + (
            (-dx * sa + dy * ca) / b)**2 < 1.
        if not inside.any():  # sub-pixel lesion: its centre pixel
            row = min(max(int(round(rr)) - r0, 0), inside.shape[0] - 1)
            col = min(max(int(round(cc)) - c0, 0), inside.shape[1] - 1)
            inside[row, col] = True
        lab = labels[r0:r1, c0:c1][inside]
        if tissue_lut(spec['accept'])[lab].mean() < spec['inside']:
            return None
        host = tissue_lut(spec['center'])[lab]
        if not host.any():
            return None
        return float(np.median(hu[r0:r1, c0:c1][inside][host]))

    @staticmethod
    def _lesion_hu(ltype: int, host_hu: float,
                   rng: np.random.Generator) -> float:
        """Attenuation: hypo- or hyper-dense relative to the host organ."""
        u = rng.random()
        if ltype == 1:  # lytic or sclerotic
            value = rng.uniform(30., 90.) if u < .75 else rng.uniform(
                650., 850.)
        elif ltype == 4:  # mostly hypodense (metastasis, cyst); some
            # hyperdense ones, kept below the brighter hepatic vessels
            value = host_hu - rng.uniform(70., 110.) if u < .85 else \
                host_hu + rng.uniform(60., 90.)
        elif ltype == 5:  # solid or ground-glass nodule
            value = rng.uniform(10., 60.) if u < .9 else rng.uniform(
                -450., -300.)
        elif ltype == 6:  # cyst or solid mass
            value = rng.uniform(0., 20.) if u < .6 else rng.uniform(60., 90.)
        elif ltype == 3:  # lymph node in mediastinal fat
            value = rng.uniform(60., 100.)
        else:  # enhancing node or mass in fat
            value = rng.uniform(80., 120.)
        return round(float(value), 1)

    def _rows_for_key(self, rng: np.random.Generator, series: _Series,
                      key: _KeySlice) -> List[dict]:
        cfg = self.config
        grid = series.grid
        n = grid.size
        anatomy = series.phantom.anatomy
        bx0, by0, bx1, by1 = key.body_box
        block = next(b for b in series.blocks if b[0] <= key.index <= b[1])
        rows = []
        for les in key.lesions:
            if not les.annotated:
                continue
            pts = les.recist_mm(key.z)
            cols, rws = grid.mm_to_pixel(pts[:, 0], pts[:, 1])
            px = np.stack([cols, rws], axis=1)
            # the reader's click jitter (small against small lesions)
            sigma = min(.2, .03 * float(np.linalg.norm(px[0] - px[1])))
            px += rng.normal(0., sigma, size=px.shape)
            noisy = bool(rng.random() < cfg.noisy_prob)
            if noisy:  # a measurement that does not fit the lesion well
                center = px.mean(axis=0)
                scale = rng.uniform(1.3, 1.6) if rng.random() < .5 else \
                    rng.uniform(.5, .7)
                px = center + (px - center) * scale
            px = np.clip(px, 0., n - 1.)
            box = np.array([
                px[:, 0].min() - BOX_PADDING, px[:, 1].min() - BOX_PADDING,
                px[:, 0].max() + BOX_PADDING, px[:, 1].max() + BOX_PADDING
            ])
            box = np.clip(box, 0., n - 1.)
            long_px = float(np.linalg.norm(px[0] - px[1]))
            short_px = float(np.linalg.norm(px[2] - px[3]))
            cc, rr = grid.mm_to_pixel(les.center[0], les.center[1])
            loc = (
                (cc - bx0) / max(bx1 - bx0, 1),
                (rr - by0) / max(by1 - by0, 1),
                les.center[2] / anatomy.length,
            )
            loc = [min(max(float(v), 1e-3), 1 - 1e-3) for v in loc]
            rows.append(
                dict(
                    lesion=les, recist_px=px, box_px=box,
                    diameters_px=(long_px, short_px), location=loc,
                    noisy=noisy, slice_range=block))
        return rows
