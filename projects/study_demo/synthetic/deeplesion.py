# Copyright (c) mmlesion contributors. All rights reserved.
"""The study options of the synthetic DeepLesion set: follow-up studies
(LENS's intra-patient matching, Sec. V-B), single-type sets (LENS's
lung-nodule set), several studies per patient and real DeepLesion lesion
sizes (:mod:`.sizes`), on top of the main job's generator
(:class:`~mmlesion.apps.demo.DeepLesionDemoGenerator`, whose defaults it
keeps: with the default study settings it writes the same
``DL_info.csv`` and images).

``demo_meta.json`` also gives each key slice ``followup`` and
``followup_of`` (the first study's series folder), and the summary the
follow-up counts.
"""
import math
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import numpy as np

from mmlesion.apps.demo.anatomy import Lesion, PatientAnatomy
from mmlesion.apps.demo.deeplesion_plan import _Series
from mmlesion.apps.demo.generator import DeepLesionDemoGenerator
from mmlesion.apps.demo.settings import (_REGIONS, _TYPE_SPECS,
                                         DemoDataConfig,
                                         check_probabilities)
from .generator_tool import shown_defaults
from .sizes import SIZE_SOURCES, LesionSizeTable, size_table

#: The defaults ``generate_study_data.py --help`` shows.
STUDY_SHOWN = shown_defaults('StudyDataConfig')

# Regions where a coarse type can be drawn (``_place_lesion``'s rules: the
# mediastinum above the diaphragm, abdomen / pelvis below or above t=0.765,
# the liver and kidneys below the diaphragm, the lungs above it).
_TYPE_REGIONS = {
    1: _REGIONS, 2: ('abdomen', ), 3: ('chest', ), 4: ('abdomen', ),
    5: ('chest', ), 6: ('abdomen', ), 7: _REGIONS, 8: ('pelvis', )
}


@dataclass
class StudyDataConfig(DemoDataConfig):
    """:class:`~mmlesion.apps.demo.DemoDataConfig` and the study options.

    Args:
        lesion_types (tuple, optional): draw only these coarse types (1..8,
            e.g. ``(5, )`` for a lung-nodule-only set, a single-type
            dataset as LUNA16 in LENS); series are then planned only in
            the body regions where these types occur. None: all eight.
        followup_prob (float): probability that a patient's later study is
            a follow-up of the first (LENS Sec. V-B; see
            ``_plan_followup``). 0 (default) draws no extra random number.
        followup_missing_prob (float): probability that a lesion annotated
            in the first study has no CSV row in a follow-up
            (``annotated: false`` in ``demo_meta.json``).
        followup_slice_shift (bool): a follow-up's slices lie off the first
            study's key slices, at another interval (False, default: no
            extra random number drawn).
        multi_study_prob (float): probability that a patient has more than
            one study (DeepLesion's patients have 2.4 on average).
        num_studies (int): studies of such a patient, in [2, 6].
        size_source (str): ``'builtin'`` (default: the per-type log-normal
            long axis of ``_TYPE_SPECS``), ``'deeplesion'`` or
            ``'deeplesion_quantiles'`` (:mod:`.sizes`; the key slice's
            RECIST size, re-drawn rather than shrunk to fit).
        size_annotation_dir (str, optional): folder of the DL_info files
            for ``size_source='deeplesion'`` (default: the shared data's
            ``deeplesion/annotations``).
    """
    lesion_types: Optional[Tuple[int, ...]] = None
    followup_prob: float = STUDY_SHOWN['followup_prob']
    followup_missing_prob: float = STUDY_SHOWN['followup_missing_prob']
    followup_slice_shift: bool = STUDY_SHOWN['followup_slice_shift']
    multi_study_prob: float = .35
    num_studies: int = 2
    size_source: str = STUDY_SHOWN['size_source']
    size_annotation_dir: Optional[str] = None

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        super().validate()
        check_probabilities(self, ('followup_prob', 'followup_missing_prob',
                                   'multi_study_prob'))
        if int(self.num_studies) != self.num_studies or not (
                2 <= self.num_studies <= 6):
            raise ValueError('StudyDataConfig.num_studies must be an '
                             f'integer in [2, 6], got {self.num_studies}')
        if self.lesion_types is not None:
            types = tuple(self.lesion_types)
            if not types or any(int(t) != t or t not in _TYPE_SPECS
                                for t in types):
                raise ValueError('StudyDataConfig.lesion_types must be a '
                                 'non-empty subset of the coarse types '
                                 f'{sorted(_TYPE_SPECS)}, got '
                                 f'{self.lesion_types}')
        if self.size_source not in SIZE_SOURCES:
            raise ValueError('StudyDataConfig.size_source must be one of '
                             f'{SIZE_SOURCES}, got {self.size_source!r}')


@dataclass
class _StudySeries(_Series):
    followup_of: Optional[_Series] = None  # the patient's first study


def _left_out(series: _StudySeries) -> List[int]:
    """Numbers of the lesions annotated in the first study that a follow-up
    ``series`` shows without a CSV row."""
    if series.followup_of is None:
        return []
    base = {num for key in series.followup_of.keys
            for les, num in zip(key.lesions, key.lesion_nums) if les.annotated}
    return [num for key in series.keys
            for les, num in zip(key.lesions, key.lesion_nums)
            if not les.annotated and num in base]


class StudyDemoGenerator(DeepLesionDemoGenerator):
    """The demo generator with the study options (:class:`StudyDataConfig`).

    Example:
        >>> gen = StudyDemoGenerator(num_train=8, followup_prob=1.)
        >>> summary = gen.generate('data/demo_followups')
    """
    CONFIG = StudyDataConfig
    SERIES = _StudySeries

    def _size_table(self) -> Optional[LesionSizeTable]:
        """The configured real-size table (None: the built-in model),
        loaded once."""
        cfg = self.config
        key = (cfg.size_source, cfg.size_annotation_dir)
        cached = getattr(self, '_sizes_cache', None)
        if cached is None or cached[0] != key:
            cached = (key, size_table(cfg.size_source,
                                      cfg.size_annotation_dir))
            self._sizes_cache = cached
        return cached[1]

    def _num_studies(self, rng: np.random.Generator) -> int:
        cfg = self.config
        # r >= 1 - p, not r < p: the same bytes as ``1 if r < .65 else 2``
        return (int(cfg.num_studies)
                if rng.random() >= 1. - cfg.multi_study_prob else 1)

    def _plan_study(self, rng: np.random.Generator, anatomy: PatientAnatomy,
                    earlier: List[_Series], split: str, study: int,
                    budget: int) -> _Series:
        # no draw at all when follow-ups are off
        if (earlier and self.config.followup_prob > 0.
                and rng.random() < self.config.followup_prob):
            return self._plan_followup(rng, earlier[0], study, budget)
        return super()._plan_study(rng, anatomy, earlier, split, study,
                                   budget)

    def _region_probs(self) -> np.ndarray:
        """Region probabilities, restricted to the regions where the
        configured lesion types occur."""
        probs = super()._region_probs()
        if self.config.lesion_types is None:
            return probs
        allowed = {r for t in self.config.lesion_types
                   for r in _TYPE_REGIONS[int(t)]}
        probs = probs * [r in allowed for r in _REGIONS]
        return probs / probs.sum()

    def _type_specs(self) -> dict:
        types = self.config.lesion_types
        return {t: spec for t, spec in _TYPE_SPECS.items()
                if types is None or t in types}

    def _draw_size(self, rng: np.random.Generator, ltype: int,
                   failed: Optional[Tuple[float, float]] = None
                   ) -> Tuple[float, float]:
        sizes = self._size_table()
        if sizes is None:
            return super()._draw_size(rng, ltype, failed)
        # another real size: shrinking would skew the table
        return sizes.sample(rng, ltype)

    def _key_slice_axes(self, a: float, b: float, c: float,
                        dz: float) -> Tuple[float, float]:
        if self._size_table() is None:
            return a, b
        # the drawn size is the key-slice size
        grow = 1. / math.sqrt(1. - (dz / c)**2)
        return a * grow, b * grow

    def _plan_followup(self, rng: np.random.Generator, base: _Series,
                       study: int, budget: int) -> '_StudySeries':
        """A follow-up scan of ``base``, the patient's first study.

        Same anatomy and body region, its own acquisition; its key slices
        lie at the body positions of the first study's (the first exactly,
        the others at the nearest slice; with ``followup_slice_shift`` off
        them by 0.2-0.8 of another interval). Each lesion comes back moved by a
        shift common to the study (sd 3 mm per axis) plus its own (sd 2 mm;
        z within 0.4 of its axial semi-axis), scaled by a factor
        log-uniform in [0.6, 1.6], and its HU shifted by the study's
        contrast phase (+-25 HU) plus its own (sd 10 HU). A lesion that no
        longer fits, or would show on another key slice, is left out. A
        lesion annotated in the first study loses its CSV row with
        probability ``followup_missing_prob`` (at least one per key slice
        keeps it): the partial labels LENS's intra-patient matching
        (Sec. V-B) recovers.
        """
        cfg = self.config
        anatomy = base.phantom.anatomy
        series = self._draw_series(rng, anatomy, base.split, study,
                                   region=base.region)
        series.followup_of = base
        if cfg.followup_slice_shift:  # another interval than the first's
            others = [v for v in cfg.slice_intervals if v != base.interval]
            if others:
                series.interval = float(others[rng.integers(len(others))])
        interval = series.interval
        margin = int(math.ceil(cfg.context_mm / interval))
        base_keys = base.keys[:budget]
        body_shift = rng.normal(0., 3., size=3)
        phase_hu = rng.uniform(-25., 25.)
        first = int(round((base_keys[0].z - series.z_start) / interval)) + 1
        first = max(first, margin + 1)
        series.z_start = round(base_keys[0].z - (first - 1) * interval, 3)
        if cfg.followup_slice_shift:  # slices off the first study's
            series.z_start = round(
                series.z_start + rng.uniform(.2, .8) * interval, 3)
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
                scale = math.exp(rng.uniform(math.log(.6), math.log(1.6)))
                axes = tuple(float(v * scale) for v in les.semi_axes)
                shift = body_shift + rng.normal(0., 2., size=3)
                shift[2] = np.clip(shift[2], -.4 * axes[2], .4 * axes[2])
                new = replace(
                    les, semi_axes=axes,
                    center=tuple(float(c + d)
                                 for c, d in zip(les.center, shift)),
                    hu=round(les.hu + phase_hu + rng.normal(0., 10.), 1))
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

    def summary(self) -> dict:
        """The main generator's summary and the follow-up counts."""
        followups = [s for s in self.plan() if s.followup_of is not None]
        return dict(
            super().summary(),
            followup_studies=len(followups),
            followup_key_slices=sum(len(s.keys) for s in followups),
            followup_left_out_lesions=sum(
                len(_left_out(s)) for s in followups))

    @staticmethod
    def _series_meta(s: _StudySeries) -> dict:
        return dict(DeepLesionDemoGenerator._series_meta(s),
                    followup=s.followup_of is not None,
                    followup_of=None if s.followup_of is None else
                    s.followup_of.dir_name)


#: Write a study data set (``out_dir, seed=0, overwrite=False,
#: show_progress=False, **StudyDataConfig fields``); its summary.
generate_study_deeplesion = StudyDemoGenerator.write
