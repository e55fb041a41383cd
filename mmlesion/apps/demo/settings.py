# Copyright (c) mmlesion contributors. All rights reserved.
"""Settings and constants of the synthetic DeepLesion dataset."""
import math
from dataclasses import dataclass
from typing import Dict, Tuple

from mmlesion.utils.tool_defaults import tool_defaults
from .anatomy import Tissue


#: ``Train_Val_Test`` codes of the official file.
SPLIT_CODES = {'train': 1, 'val': 2, 'test': 3}

#: Marker file: a folder holding it was written by this generator.
META_FILE = 'demo_meta.json'

#: Padding of ``Bounding_boxes`` around the RECIST end points (pixels),
#: measured on the released DL_info rows (always 5).
BOX_PADDING = 5.

GENERATOR_VERSION = 1


#: The defaults ``tools/misc/generate_demo_data.py --help`` shows
#: (``tool_defaults.json`` beside this file,
#: :mod:`mmlesion.utils.tool_defaults`).
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


def check_probabilities(config: object, names: Tuple[str, ...]) -> None:
    """Raise ValueError naming the first field of ``names`` outside
    [0, 1]."""
    for name in names:
        if not 0. <= getattr(config, name) <= 1.:
            raise ValueError(f'{type(config).__name__}.{name} must be in '
                             '[0, 1]')


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
        seed (int): random seed; same seed, same bytes.

    A patient has two studies with probability 0.35 (else one), each drawn
    on its own; follow-up studies, single-type sets and real lesion sizes
    are the study simulator's (``projects/study_demo/synthetic``).
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
        check_probabilities(self, ('unannotated_prob', 'noisy_prob',
                                   'nan_age_prob'))
        check_range(self, 'noise_sigma_range', 0)
