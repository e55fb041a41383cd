# Copyright (c) mmlesion contributors. All rights reserved.
"""Deterministic synthetic dataset in the exact DeepLesion release layout.

Writes what the NIH release contains (Yan et al., "DeepLesion", J. Med.
Imaging 2018, Sec. 2 and the release's README)::

    <out>/Images_png/<patient:06d>_<study:02d>_<series:02d>/<slice:03d>.png
    <out>/DL_info.csv        # the 18 official columns, official formatting
    <out>/demo_meta.json     # generator settings and every lesion drawn

PNGs are 16-bit grayscale with ``value = HU + 32768``. CSV coordinates are
1-based like the official file (its box is the RECIST extent padded by
5 pixels on each side, as measured on the released rows). Each key slice
comes with its stored neighbours (``context_mm`` on each side) so multi-slice
inputs (3 or 9 slices at 2 mm) can be interpolated. Like DeepLesion, some
lesions visible on a key slice have no CSV row, a few rows are flagged
``Possibly_noisy`` and splits are made by patient. With ``followup_prob``
a patient's second study can be a follow-up scan of the first showing the
same lesions, some of them annotated only in the first study (the partial
labels LENS's intra-patient matching recovers); ``demo_meta.json`` links
the instances of a lesion by ``lesion_id`` and gives each key slice
``followup`` (bool) and ``followup_of`` (the first study's series folder or
null).

Same seed and settings give byte-identical files.
"""
import csv
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..dl_info import format_dl_number as _fmt
from ..dl_info import format_dl_numbers as _fmt_list
from .phantom import (CTPhantom, Lesion, PatientAnatomy, SliceGrid, Tissue,
                      simulate_acquisition, tissue_lut)

#: The columns of ``DL_info.csv`` in the official order.
DL_INFO_COLUMNS = (
    'File_name', 'Patient_index', 'Study_index', 'Series_ID',
    'Key_slice_index', 'Measurement_coordinates', 'Bounding_boxes',
    'Lesion_diameters_Pixel_', 'Normalized_lesion_location',
    'Coarse_lesion_type', 'Possibly_noisy', 'Slice_range', 'Spacing_mm_px_',
    'Image_size', 'DICOM_windows', 'Patient_gender', 'Patient_age',
    'Train_Val_Test')

#: ``Train_Val_Test`` codes of the official file.
SPLIT_CODES = {'train': 1, 'val': 2, 'test': 3}

#: Marker file: a folder holding it was written by this generator.
META_FILE = 'demo_meta.json'

#: Padding of ``Bounding_boxes`` around the RECIST end points (pixels),
#: measured on the released DL_info rows (always 5).
BOX_PADDING = 5.

GENERATOR_VERSION = 1

# Per coarse type: where its centre may lie, which tissues may surround it,
# its long-diameter distribution (log-normal, mm) and its attenuation.
_TYPE_SPECS: Dict[int, dict] = {
    1: dict(name='bone', center=(Tissue.BONE_MARROW, ),
            accept=(Tissue.BONE_MARROW, Tissue.BONE_CORTEX, Tissue.DISC),
            median=15., sigma=.3, lo=6., hi=28., weight=.5, inside=.85),
    2: dict(name='abdomen', center=(Tissue.VISCERAL_FAT, ),
            accept=(Tissue.VISCERAL_FAT, Tissue.BOWEL, Tissue.VESSEL),
            median=25., sigma=.4, lo=8., hi=60., weight=1.5, inside=.9),
    3: dict(name='mediastinum', center=(Tissue.VISCERAL_FAT, ),
            accept=(Tissue.VISCERAL_FAT, Tissue.VESSEL, Tissue.HEART),
            median=20., sigma=.35, lo=8., hi=45., weight=1.5, inside=.75),
    4: dict(name='liver', center=(Tissue.LIVER, ),
            accept=(Tissue.LIVER, Tissue.VESSEL),
            median=24., sigma=.5, lo=6., hi=60., weight=3., inside=.95),
    5: dict(name='lung', center=(Tissue.LUNG, ),
            accept=(Tissue.LUNG, Tissue.VESSEL),
            median=14., sigma=.5, lo=3., hi=45., weight=3., inside=.95),
    6: dict(name='kidney', center=(Tissue.KIDNEY, ),
            accept=(Tissue.KIDNEY, Tissue.VISCERAL_FAT),
            median=20., sigma=.4, lo=6., hi=45., weight=1., inside=.7),
    7: dict(name='soft tissue', center=(Tissue.SUBCUT_FAT, ),
            accept=(Tissue.SUBCUT_FAT, Tissue.MUSCLE),
            median=18., sigma=.35, lo=8., hi=35., weight=.6, inside=.9),
    8: dict(name='pelvis', center=(Tissue.VISCERAL_FAT, ),
            accept=(Tissue.VISCERAL_FAT, Tissue.BOWEL, Tissue.BLADDER,
                    Tissue.VESSEL),
            median=26., sigma=.4, lo=8., hi=60., weight=1.5, inside=.9),
}

# Noise is nearly incompressible: Huffman-only deflate is as small as the
# default strategy and faster.
_PNG_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY
]

_NOT_BODY = tissue_lut((Tissue.AIR, Tissue.TABLE))

# Body regions a series covers, as ranges of the normalised position t.
_REGIONS = ('chest', 'abdomen', 'pelvis')
_REGION_PROBS = (.35, .45, .2)
# Regions where a coarse type can be drawn (``_place_lesion``'s rules: the
# mediastinum above the diaphragm, abdomen / pelvis below or above t=0.765,
# the liver and kidneys below the diaphragm, the lungs above it).
_TYPE_REGIONS: Dict[int, Tuple[str, ...]] = {
    1: _REGIONS, 2: ('abdomen', ), 3: ('chest', ), 4: ('abdomen', ),
    5: ('chest', ), 6: ('abdomen', ), 7: _REGIONS, 8: ('pelvis', )
}


@dataclass
class DemoDataConfig:
    """Settings of the demo dataset.

    Args:
        num_train (int): key slices in the train split.
        num_val (int): key slices in the val split.
        num_test (int): key slices in the test split.
        image_size (int): height and width of every slice in pixels.
        spacing_range (tuple): preferred in-plane spacing range (mm/px); it
            is raised when the body would not fit the image.
        slice_intervals (tuple): slice intervals (mm) a series may have.
        slice_interval_probs (tuple): their probabilities.
        context_mm (float): stored neighbours on each side of a key slice.
        lesions_per_key (tuple): inclusive range of annotated lesions on a
            key slice.
        unannotated_prob (float): probability that a key slice also shows a
            lesion without a CSV row.
        noisy_prob (float): probability that a row is ``Possibly_noisy``
            (its measurement is then perturbed).
        noise_sigma_range (tuple): image noise (HU) range, one per series.
        nan_age_prob (float): probability of an unknown age ('NaN').
        lesion_types (tuple, optional): draw only these coarse types (1..8,
            e.g. ``(5, )`` for a lung-nodule-only set, a single-type
            dataset as LUNA16 in LENS); series are then planned only in
            the body regions where these types occur. None: all eight.
        followup_prob (float): probability that a patient's second study
            is a longitudinal follow-up of the first (same body position,
            the same lesions grown or shrunk by a factor in [0.8, 1.25],
            its own acquisition settings) instead of an independent scan.
            This is what LENS's intra-patient lesion matching (Sec. V-B of
            the LENS paper) needs. 0 (the default) draws no extra random
            number: the files are those of a set made without follow-ups.
        followup_missing_prob (float): probability that a lesion annotated
            in the first study has no CSV row in its follow-up (at least
            one lesion of each follow-up key slice keeps its row, as every
            key slice of DeepLesion has one). Such a lesion is listed in
            ``demo_meta.json`` with ``annotated: false`` and the
            ``lesion_id`` of its annotated instance in the first study.
        seed (int): random seed; same seed, same bytes.
    """
    num_train: int = 150
    num_val: int = 40
    num_test: int = 40
    image_size: int = 256
    spacing_range: Tuple[float, float] = (1.2, 1.6)
    slice_intervals: Tuple[float, ...] = (1., 2., 5.)
    slice_interval_probs: Tuple[float, ...] = (.2, .35, .45)
    context_mm: float = 10.
    lesions_per_key: Tuple[int, int] = (1, 3)
    unannotated_prob: float = .2
    noisy_prob: float = .02
    noise_sigma_range: Tuple[float, float] = (10., 20.)
    nan_age_prob: float = .02
    lesion_types: Optional[Tuple[int, ...]] = None
    followup_prob: float = 0.
    followup_missing_prob: float = .5
    seed: int = 0

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        for name in ('num_train', 'num_val', 'num_test'):
            if int(getattr(self, name)) < 0:
                raise ValueError(f'DemoDataConfig.{name} must be >= 0')
        if self.num_train + self.num_val + self.num_test <= 0:
            raise ValueError('DemoDataConfig: no key slice requested')
        if not 64 <= int(self.image_size) <= 1024:
            raise ValueError('DemoDataConfig.image_size must be in [64, 1024]'
                             f', got {self.image_size}')
        lo, hi = self.spacing_range
        if not 0 < lo <= hi:
            raise ValueError('DemoDataConfig.spacing_range must be (lo, hi) '
                             f'with 0 < lo <= hi, got {self.spacing_range}')
        if (len(self.slice_intervals) != len(self.slice_interval_probs)
                or not self.slice_intervals
                or min(self.slice_intervals) <= 0
                or min(self.slice_interval_probs) < 0
                or sum(self.slice_interval_probs) <= 0):
            raise ValueError('DemoDataConfig.slice_intervals / '
                             'slice_interval_probs must be positive and of '
                             'the same length')
        if self.context_mm < 0:
            raise ValueError('DemoDataConfig.context_mm must be >= 0')
        lo, hi = self.lesions_per_key
        if not 1 <= lo <= hi <= 6:
            raise ValueError('DemoDataConfig.lesions_per_key must satisfy '
                             f'1 <= lo <= hi <= 6, got {self.lesions_per_key}')
        for name in ('unannotated_prob', 'noisy_prob', 'nan_age_prob',
                     'followup_prob', 'followup_missing_prob'):
            if not 0. <= getattr(self, name) <= 1.:
                raise ValueError(f'DemoDataConfig.{name} must be in [0, 1]')
        if self.lesion_types is not None:
            types = tuple(self.lesion_types)
            if not types or any(int(t) != t or t not in _TYPE_SPECS
                                for t in types):
                raise ValueError('DemoDataConfig.lesion_types must be a '
                                 'non-empty subset of the coarse types '
                                 f'{sorted(_TYPE_SPECS)}, got '
                                 f'{self.lesion_types}')
        lo, hi = self.noise_sigma_range
        if not 0 <= lo <= hi:
            raise ValueError('DemoDataConfig.noise_sigma_range must be '
                             f'(lo, hi) with 0 <= lo <= hi, got '
                             f'{self.noise_sigma_range}')


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
    followup_of: Optional['_Series'] = None  # the patient's first study

    @property
    def dir_name(self) -> str:
        return f'{self.patient:06d}_{self.study:02d}_{self.series:02d}'

    def z_of(self, index: int) -> float:
        return self.z_start + (index - 1) * self.interval

    def indices(self) -> List[int]:
        return [i for lo, hi in self.blocks for i in range(lo, hi + 1)]


def _left_out(series: _Series) -> List[int]:
    """Numbers of the lesions annotated in the first study that a follow-up
    ``series`` shows without a CSV row."""
    if series.followup_of is None:
        return []
    base = {num for key in series.followup_of.keys
            for les, num in zip(key.lesions, key.lesion_nums) if les.annotated}
    return [num for key in series.keys
            for les, num in zip(key.lesions, key.lesion_nums)
            if not les.annotated and num in base]


def _merge_blocks(blocks: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
    merged: List[Tuple[int, int]] = []
    for lo, hi in sorted(blocks):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


class DeepLesionDemoGenerator:
    """Plan and write a synthetic DeepLesion-format dataset.

    Args:
        config (DemoDataConfig, optional): settings; keyword arguments
            override its fields (e.g. ``seed=1, num_train=10``).

    Example:
        >>> gen = DeepLesionDemoGenerator(num_train=4, num_val=2, num_test=2)
        >>> summary = gen.generate('data/demo_deeplesion')
    """

    def __init__(self, config: Optional[DemoDataConfig] = None, **kwargs):
        self.config = merge_config(DemoDataConfig, config, kwargs)
        self._series: Optional[List[_Series]] = None

    # ------------------------------------------------------------------
    # planning
    def plan(self) -> List[_Series]:
        """Draw patients, series, key slices and lesions (no pixels yet)."""
        if self._series is not None:
            return self._series
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
        self._series = out
        return out

    def _plan_patient(self, rng: np.random.Generator, split: str,
                      budget: int) -> List[_Series]:
        cfg = self.config
        anatomy = PatientAnatomy.sample(rng)
        gender = 'M' if rng.random() < .55 else 'F'
        age = int(rng.integers(20, 86))
        nan_age = rng.random() < cfg.nan_age_prob
        n_studies = 1 if rng.random() < .65 else 2
        out: List[_Series] = []
        num_lesions = 0
        for study in range(1, n_studies + 1):
            if budget <= 0:
                break
            # no draw at all when follow-ups are off: same bytes as before
            if (out and cfg.followup_prob > 0.
                    and rng.random() < cfg.followup_prob):
                series = self._plan_followup(rng, out[0], study, budget)
            else:
                n_keys = min(1 if rng.random() < .65 else 2, budget)
                series = self._plan_series(rng, anatomy, split, study,
                                           n_keys)
                for key in series.keys:
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
        series.blocks = _merge_blocks([(k.index - margin, k.index + margin)
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
        series = _Series(
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
        """Region probabilities, restricted to the regions where the
        configured lesion types occur."""
        probs = np.asarray(_REGION_PROBS, np.float64)
        if self.config.lesion_types is None:
            return probs
        allowed = {r for t in self.config.lesion_types
                   for r in _TYPE_REGIONS[int(t)]}
        probs = probs * [r in allowed for r in _REGIONS]
        return probs / probs.sum()

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
        body = _NOT_BODY[labels] == 0
        rows = np.nonzero(body.any(axis=1))[0]
        cols = np.nonzero(body.any(axis=0))[0]
        return _KeySlice(index=index, z=z, lesions=lesions, window=window,
                         body_box=(int(cols[0]), int(rows[0]), int(cols[-1]),
                                   int(rows[-1])))

    def _plan_followup(self, rng: np.random.Generator, base: _Series,
                       study: int, budget: int) -> _Series:
        """A follow-up scan of ``base``, the patient's first study.

        Same anatomy and body region, its own acquisition (slice interval,
        grid, offsets, noise). Its key slices lie at the body positions of
        the first study's key slices: the first one exactly (the series'
        start is chosen so), the others at the nearest slice of the new
        interval. Each of their lesions comes back at the same patient-mm
        centre, type, host, angle and attenuation, its semi-axes scaled by
        one factor drawn in [0.8, 1.25] (growth or shrinkage); a lesion that
        no longer fits (:meth:`_check_fit`), or that would show on another
        key slice of the series, is left out of the scan. A lesion annotated
        in the first study loses its CSV row with probability
        ``followup_missing_prob`` (at least one per key slice keeps it); an
        unannotated one stays unannotated. This reproduces the partial
        labels LENS's intra-patient matching (Sec. V-B) recovers.
        """
        cfg = self.config
        anatomy = base.phantom.anatomy
        series = self._draw_series(rng, anatomy, base.split, study,
                                   region=base.region)
        series.followup_of = base
        interval = series.interval
        margin = int(math.ceil(cfg.context_mm / interval))
        base_keys = base.keys[:budget]
        first = int(round((base_keys[0].z - series.z_start) / interval)) + 1
        first = max(first, margin + 1)
        series.z_start = round(base_keys[0].z - (first - 1) * interval, 3)
        for base_key in base_keys:
            index = max(
                int(round((base_key.z - series.z_start) / interval)) + 1,
                margin + 1)
            z = series.z_of(index)
            if any(key.index == index or any(
                    abs(les.center[2] - z) < les.semi_axes[2] + 2.
                    for les in key.lesions) for key in series.keys):
                continue
            hu, labels = series.phantom.render(z, series.grid,
                                               with_lesions=False)
            lesions: List[Lesion] = []
            nums: List[int] = []
            for les, num in zip(base_key.lesions, base_key.lesion_nums):
                scale = rng.uniform(.8, 1.25)
                new = replace(les, semi_axes=tuple(
                    float(v * scale) for v in les.semi_axes))
                host_hu = self._check_fit(new, z, series.grid, hu, labels,
                                          lesions,
                                          _TYPE_SPECS[les.lesion_type])
                if host_hu is None or any(
                        abs(new.center[2] - key.z) < new.semi_axes[2] + 2.
                        for key in series.keys):
                    continue
                new.host_hu = host_hu
                lesions.append(new)
                nums.append(num)
            annotated = [i for i, les in enumerate(lesions) if les.annotated]
            if not annotated:
                continue
            missing = {i for i in annotated
                       if rng.random() < cfg.followup_missing_prob}
            if len(missing) == len(annotated):  # a key slice needs a row
                missing.discard(annotated[int(rng.integers(len(annotated)))])
            for i in missing:
                lesions[i].annotated = False
            key = self._make_key(rng, index, z, lesions, labels)
            key.lesion_nums = nums
            series.keys.append(key)
            series.phantom.lesions.extend(lesions)
        self._finish_series(rng, series)
        return series

    def _place_lesion(self, rng: np.random.Generator, series: _Series,
                      z: float, hu: np.ndarray, labels: np.ndarray,
                      areas: np.ndarray, others: List[Lesion],
                      annotated: bool) -> Optional[Lesion]:
        grid = series.grid
        anatomy = series.phantom.anatomy
        t = z / anatomy.length
        chest = t < anatomy.t_diaphragm
        candidates, weights = [], []
        types = self.config.lesion_types
        for ltype, spec in _TYPE_SPECS.items():
            if types is not None and ltype not in types:
                continue
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
        spec = _TYPE_SPECS[ltype]
        host_rows, host_cols = np.nonzero(
            tissue_lut(spec['center'])[labels])
        long_mm = float(
            np.clip(spec['median'] * math.exp(rng.normal(0., spec['sigma'])),
                    spec['lo'], spec['hi']))
        ratio = rng.uniform(.55, .95)
        for attempt in range(45):
            if attempt and attempt % 15 == 0:
                long_mm = max(long_mm * .7, 3.)
            a = long_mm / 2.
            b = a * ratio
            c = max(1.5, a * rng.uniform(.6, 1.1))
            pick = int(rng.integers(len(host_rows)))
            x, y = grid.pixel_to_mm(host_cols[pick] + rng.uniform(-.5, .5),
                                    host_rows[pick] + rng.uniform(-.5, .5))
            dz = rng.uniform(-.4, .4) * min(series.interval, c)
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

    # ------------------------------------------------------------------
    # writing
    def csv_rows(self) -> List[List[str]]:
        """The DL_info.csv rows (strings, header excluded)."""
        out = []
        for s in self.plan():
            spacing = _fmt_list([s.grid.spacing, s.grid.spacing, s.interval])
            size = _fmt_list([s.grid.size, s.grid.size])
            for key in s.keys:
                for row in key.rows:
                    les = row['lesion']
                    out.append([
                        f'{s.dir_name}_{key.index:03d}.png',
                        str(s.patient), str(s.study), str(s.series),
                        str(key.index),
                        _fmt_list((row['recist_px'] + 1.).ravel()),
                        _fmt_list(row['box_px'] + 1.),
                        _fmt_list(row['diameters_px']),
                        _fmt_list(row['location']),
                        str(les.lesion_type),
                        str(int(row['noisy'])),
                        _fmt_list(row['slice_range']),
                        spacing, size, _fmt_list(key.window), s.gender,
                        'NaN' if s.age is None else str(s.age),
                        str(SPLIT_CODES[s.split]),
                    ])
        return out

    def num_images(self) -> int:
        """Number of PNG slices :meth:`generate` writes."""
        return sum(len(s.indices()) for s in self.plan())

    def summary(self) -> dict:
        """Counts and distributions of the planned dataset."""
        series = self.plan()
        per_split: Dict[str, dict] = {
            k: dict(patients=set(), key_slices=0, lesions=0,
                    unannotated_lesions=0, noisy_rows=0, images=0)
            for k in SPLIT_CODES
        }
        long_mm, long_px, types, intervals = [], [], {}, {}
        contrast = []
        for s in series:
            d = per_split[s.split]
            d['patients'].add(s.patient)
            d['key_slices'] += len(s.keys)
            d['images'] += len(s.indices())
            key_interval = _fmt(s.interval)
            intervals[key_interval] = intervals.get(key_interval, 0) + len(
                s.keys)
            for key in s.keys:
                d['unannotated_lesions'] += sum(not les.annotated
                                                for les in key.lesions)
                for row in key.rows:
                    les = row['lesion']
                    d['lesions'] += 1
                    d['noisy_rows'] += int(row['noisy'])
                    long_px.append(row['diameters_px'][0])
                    long_mm.append(row['diameters_px'][0] * s.grid.spacing)
                    types[str(les.lesion_type)] = types.get(
                        str(les.lesion_type), 0) + 1
                    contrast.append(abs(les.hu - les.host_hu))
        for d in per_split.values():
            d['patients'] = len(d['patients'])
        followups = [s for s in series if s.followup_of is not None]
        lm = np.asarray(long_mm)
        pct = (0, 10, 25, 50, 75, 90, 100)
        return dict(
            splits=per_split,
            images=self.num_images(),
            series=len(series),
            followup_studies=len(followups),
            followup_key_slices=sum(len(s.keys) for s in followups),
            followup_left_out_lesions=sum(
                len(_left_out(s)) for s in followups),
            key_slices_by_slice_interval_mm=dict(sorted(intervals.items())),
            lesions_by_type=dict(
                sorted(types.items(), key=lambda x: int(x[0]))),
            long_diameter_mm_percentiles={
                str(p): round(float(np.percentile(lm, p)), 2)
                for p in pct
            } if len(lm) else {},
            long_diameter_px_percentiles={
                str(p): round(float(np.percentile(long_px, p)), 2)
                for p in pct
            } if len(lm) else {},
            long_diameter_mm_bins={
                '<10': int((lm < 10).sum()),
                '10-30': int(((lm >= 10) & (lm <= 30)).sum()),
                '>30': int((lm > 30).sum())
            },
            contrast_hu_percentiles={
                str(p): round(float(np.percentile(contrast, p)), 1)
                for p in (0, 10, 50, 90)
            } if contrast else {},
        )

    def _meta(self) -> dict:
        key_slices = []
        for s in self.plan():
            for key in s.keys:
                lesions = []
                for les, num in zip(key.lesions, key.lesion_nums):
                    cc, rr = s.grid.mm_to_pixel(les.center[0], les.center[1])
                    lesions.append(
                        dict(annotated=les.annotated,
                             lesion_id=f'{s.patient}-{num}',
                             lesion_type=les.lesion_type,
                             center_px=[round(float(cc), 3),
                                        round(float(rr), 3)],
                             center_mm=[round(float(v), 3)
                                        for v in les.center],
                             semi_axes_mm=[round(float(v), 3)
                                           for v in les.semi_axes],
                             angle=round(les.angle, 5), hu=les.hu,
                             host_hu=round(les.host_hu, 1)))
                key_slices.append(
                    dict(file_name=f'{s.dir_name}_{key.index:03d}.png',
                         split=s.split, region=s.region,
                         z_mm=round(key.z, 3),
                         slice_interval=s.interval, spacing=s.grid.spacing,
                         noise_sigma=round(s.noise_sigma, 2),
                         followup=s.followup_of is not None,
                         followup_of=None if s.followup_of is None else
                         s.followup_of.dir_name,
                         lesions=lesions))
        cfg = asdict(self.config)
        return dict(generator='mmlesion.datasets.demo',
                    version=GENERATOR_VERSION, config=cfg,
                    summary=self.summary(), key_slices=key_slices)

    def _write_series(self, root: Path, s: _Series, progress=None) -> None:
        folder = root / 'Images_png' / s.dir_name
        folder.mkdir(parents=True, exist_ok=True)
        seed = int(self.config.seed)
        for index in s.indices():
            hu, labels = s.phantom.render(s.z_of(index), s.grid)
            rng = np.random.default_rng(
                [seed, s.patient, s.study, s.series, index, 77])
            body = _NOT_BODY[labels] == 0
            img = simulate_acquisition(hu, s.noise_sigma, rng, body=body,
                                       air_sigma=s.air_sigma,
                                       fov_fill=s.fov_fill)
            png = (img.astype(np.int32) + 32768).astype(np.uint16)
            ok, buf = cv2.imencode('.png', png, _PNG_PARAMS)
            if not ok:
                raise RuntimeError(f'PNG encoding failed for {folder}')
            (folder / f'{index:03d}.png').write_bytes(buf.tobytes())
            if progress is not None:
                progress.update()
        s.phantom.clear_cache()

    def write_csv(self, path: Union[str, Path]) -> None:
        """Write ``DL_info.csv`` (header + rows) to ``path``."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator='\n')
        writer.writerow(DL_INFO_COLUMNS)
        writer.writerows(self.csv_rows())
        Path(path).write_text(buf.getvalue(), encoding='utf-8')

    def generate(self, out_dir: Union[str, Path], overwrite: bool = False,
                 show_progress: bool = False) -> dict:
        """Write the dataset into ``out_dir``.

        The files are written into a temporary sibling folder that is
        renamed to ``out_dir`` at the end, so an interrupted run leaves no
        half-written dataset.

        Args:
            out_dir (str | Path): dataset root to create.
            overwrite (bool): replace an existing non-empty ``out_dir``; only
                allowed for a folder this generator wrote (it holds
                ``demo_meta.json``). Defaults to False.
            show_progress (bool): show an mmengine progress bar over the
                images. Defaults to False.

        Returns:
            dict: :meth:`summary` plus ``out_dir``.

        Raises:
            FileExistsError: ``out_dir`` is a file, or a non-empty folder and
                ``overwrite`` is False, or not a generated dataset.
        """
        series = self.plan()

        def write(tmp: Path, progress) -> None:
            for s in series:
                self._write_series(tmp, s, progress)
            self.write_csv(tmp / 'DL_info.csv')
            (tmp / META_FILE).write_text(
                json.dumps(self._meta(), indent=1, sort_keys=True) + '\n',
                encoding='utf-8')

        out = write_dataset_dir(out_dir, write, overwrite, META_FILE,
                                self.num_images() if show_progress else 0)
        summary = self.summary()
        summary['out_dir'] = str(out)
        return summary


def check_output_dir(out: Path, overwrite: bool,
                     marker: str = META_FILE) -> None:
    """Refuse to clobber user data.

    Args:
        out (Path): the folder to write.
        overwrite (bool): allow replacing a folder holding ``marker``.
        marker (str): file that marks a folder written by a generator.

    Raises:
        FileExistsError: see :meth:`DeepLesionDemoGenerator.generate`.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f'{out} exists and is not a folder')
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(
            f'{out} exists and is not empty; pass overwrite=True '
            '(--overwrite) to replace a previously generated demo dataset')
    if not (out / marker).is_file():
        raise FileExistsError(
            f'{out} is not empty and has no {marker}: it was not written '
            'by the demo generator, refusing to overwrite it (remove it '
            'yourself or choose another --out)')


def _replace_dir(tmp: Path, out: Path, overwrite: bool,
                 marker: str = META_FILE) -> None:
    if out.exists():
        check_output_dir(out, overwrite, marker)  # it may have changed
        if any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f'.{out.name}.old-',
                                        dir=str(out.parent)))
            os.rmdir(old)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
            return
        os.rmdir(out)
    os.rename(tmp, out)


def merge_config(config_cls: type, config: Optional[object],
                 overrides: dict) -> object:
    """A validated settings dataclass: ``config`` (or the defaults) with
    keyword ``overrides``.

    Raises:
        TypeError: an override that is not a field of ``config_cls``.
        ValueError: from ``validate()``, naming the bad field.
    """
    config = config_cls() if config is None else config
    if overrides:
        unknown = set(overrides) - set(config_cls.__dataclass_fields__)
        if unknown:
            raise TypeError(f'Unknown {config_cls.__name__} fields: '
                            f'{unknown}')
        config = config_cls(**{**asdict(config), **overrides})
    config.validate()
    return config


def write_dataset_dir(out_dir: Union[str, Path], write, overwrite: bool,
                      marker: str, num_steps: int = 0) -> Path:
    """Write a generated dataset atomically into ``out_dir``.

    ``write(tmp, progress)`` fills a temporary sibling folder (``progress``
    is an mmengine ``ProgressBar`` over ``num_steps`` steps, or None), which
    then replaces ``out_dir``: an interrupted run leaves nothing
    half-written, and a user's folder (one without ``marker``) is never
    replaced.

    Args:
        out_dir (str | Path): the dataset root.
        write (callable): ``write(tmp: Path, progress) -> None``.
        overwrite (bool): replace a previously generated dataset.
        marker (str): the file that marks a generated dataset.
        num_steps (int): progress-bar length; 0 shows no bar.

    Returns:
        Path: the absolute ``out_dir``.
    """
    out = Path(out_dir).expanduser().absolute()
    check_output_dir(out, overwrite, marker)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.tmp-',
                                dir=str(out.parent)))
    try:
        os.chmod(tmp, 0o755)
        progress = None
        if num_steps:
            from mmlesion.utils.progress import progress_bar
            progress = progress_bar(num_steps, label='generating')
        write(tmp, progress)
        if progress is not None:
            progress.finish()
        _replace_dir(tmp, out, overwrite, marker)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def generate_demo_deeplesion(out_dir: Union[str, Path],
                             seed: int = 0,
                             overwrite: bool = False,
                             show_progress: bool = False,
                             **kwargs) -> dict:
    """Write the demo dataset; see :class:`DeepLesionDemoGenerator`.

    Args:
        out_dir (str | Path): dataset root.
        seed (int): random seed. Defaults to 0.
        overwrite (bool): replace a previously generated dataset.
        show_progress (bool): show a progress bar.
        **kwargs: other :class:`DemoDataConfig` fields.

    Returns:
        dict: summary statistics of the written dataset.
    """
    gen = DeepLesionDemoGenerator(seed=seed, **kwargs)
    return gen.generate(out_dir, overwrite=overwrite,
                        show_progress=show_progress)


def dataset_digest(root: Union[str, Path]) -> str:
    """SHA-256 over the relative paths and bytes of every file under root."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob('*') if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()
