# Copyright (c) mmlesion contributors. All rights reserved.
"""Settings and constants of the synthetic DeepLesion dataset."""
import json
import math
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from .anatomy import Tissue
from .deeplesion_sizes import SIZE_SOURCES


#: ``Train_Val_Test`` codes of the official file.
SPLIT_CODES = {'train': 1, 'val': 2, 'test': 3}

#: Marker file: a folder holding it was written by this generator.
META_FILE = 'demo_meta.json'

#: Padding of ``Bounding_boxes`` around the RECIST end points (pixels),
#: measured on the released DL_info rows (always 5).
BOX_PADDING = 5.

GENERATOR_VERSION = 1


def tool_defaults(settings: str) -> dict:
    """The defaults of a demo settings dataclass that its tool's ``--help``
    shows: data (``tool_defaults.json`` beside this file) the tool reads
    without importing mmlesion (:func:`mmlesion_cli.package_json`)."""
    with open(osp.join(osp.dirname(__file__), 'tool_defaults.json')) as f:
        return json.load(f)[settings]


_SHOWN = tool_defaults('DemoDataConfig')


def check_range(config: object, name: str, low: float,
                high: float = math.inf, open_low: bool = False) -> None:
    """Raise ValueError unless the field ``name`` of a settings dataclass
    is ``(lo, hi)`` with ``low <= lo <= hi <= high`` (``low < lo`` with
    ``open_low``)."""
    lo, hi = getattr(config, name)
    if not ((low < lo) if open_low else (low <= lo)) or not lo <= hi <= high:
        bounds = f'{low:g} {"<" if open_low else "<="} lo <= hi' + (
            f' <= {high:g}' if high < math.inf else '')
        raise ValueError(f'{type(config).__name__}.{name} must be (lo, hi) '
                         f'with {bounds}, got {getattr(config, name)}')

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
            ``'deeplesion_quantiles'`` (:mod:`.deeplesion_sizes`; the key
            slice's RECIST size, re-drawn rather than shrunk to fit).
        size_annotation_dir (str, optional): folder of the DL_info files
            for ``size_source='deeplesion'`` (default: the shared data's
            ``deeplesion/annotations``).
        seed (int): random seed; same seed, same bytes.
    """
    num_train: int = _SHOWN['num_train']
    num_val: int = _SHOWN['num_val']
    num_test: int = _SHOWN['num_test']
    image_size: int = _SHOWN['image_size']
    spacing_range: Tuple[float, float] = (1.2, 1.6)
    slice_intervals: Tuple[float, ...] = (1., 2., 5.)
    slice_interval_probs: Tuple[float, ...] = (.2, .35, .45)
    context_mm: float = _SHOWN['context_mm']
    lesions_per_key: Tuple[int, int] = (1, 3)
    unannotated_prob: float = _SHOWN['unannotated_prob']
    noisy_prob: float = .02
    noise_sigma_range: Tuple[float, float] = (10., 20.)
    nan_age_prob: float = .02
    lesion_types: Optional[Tuple[int, ...]] = None
    followup_prob: float = _SHOWN['followup_prob']
    followup_missing_prob: float = _SHOWN['followup_missing_prob']
    followup_slice_shift: bool = _SHOWN['followup_slice_shift']
    multi_study_prob: float = .35
    num_studies: int = 2
    size_source: str = _SHOWN['size_source']
    size_annotation_dir: Optional[str] = None
    seed: int = _SHOWN['seed']

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
        check_range(self, 'spacing_range', 0, open_low=True)
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
        check_range(self, 'lesions_per_key', 1, 6)
        for name in ('unannotated_prob', 'noisy_prob', 'nan_age_prob',
                     'followup_prob', 'followup_missing_prob',
                     'multi_study_prob'):
            if not 0. <= getattr(self, name) <= 1.:
                raise ValueError(f'DemoDataConfig.{name} must be in [0, 1]')
        if int(self.num_studies) != self.num_studies or not (
                2 <= self.num_studies <= 6):
            raise ValueError('DemoDataConfig.num_studies must be an integer '
                             f'in [2, 6], got {self.num_studies}')
        if self.lesion_types is not None:
            types = tuple(self.lesion_types)
            if not types or any(int(t) != t or t not in _TYPE_SPECS
                                for t in types):
                raise ValueError('DemoDataConfig.lesion_types must be a '
                                 'non-empty subset of the coarse types '
                                 f'{sorted(_TYPE_SPECS)}, got '
                                 f'{self.lesion_types}')
        if self.size_source not in SIZE_SOURCES:
            raise ValueError('DemoDataConfig.size_source must be one of '
                             f'{SIZE_SOURCES}, got {self.size_source!r}')
        check_range(self, 'noise_sigma_range', 0)
