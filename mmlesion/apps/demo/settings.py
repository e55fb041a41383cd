# Copyright (c) mmlesion contributors. All rights reserved.
"""Settings and constants of the synthetic DeepLesion dataset and of the
synthetic CT volume set."""
import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from mmlesion.utils.tool_defaults import tool_defaults
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


#: The defaults the demo generators' ``--help`` shows (``tool_defaults.json``
#: beside this file, :mod:`mmlesion.utils.tool_defaults`).
_SHOWN = tool_defaults(__file__)['DemoDataConfig']


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


_VOLUME_SHOWN = tool_defaults(__file__)['DemoVolumeConfig']

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
        for name in ('val_fraction', 'part_solid_prob', 'small_nodule_prob',
                     'unannotated_prob'):
            if not 0. <= getattr(self, name) <= 1.:
                raise ValueError(f'DemoVolumeConfig.{name} must be in [0, 1]')
        check_range(self, 'nodule_hu_range', -1000, 3071, open_low=True)
        check_range(self, 'noise_sigma_range', 0)
