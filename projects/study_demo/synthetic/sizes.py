# Copyright (c) mmlesion contributors. All rights reserved.
"""Lesion sizes of the synthetic dataset drawn from the real DeepLesion.

Real lesions (the 9,816 typed rows of ``DL_info_{val,test}.csv``) have long
axes of about 4-80 mm and short / long ratios down to 0.4, what Improved
RetinaNet's anchor optimisation (Zlocha et al. 2019, Sec. 2.1) addresses.
:class:`LesionSizeTable` samples ``(long axis mm, short / long ratio)`` per
coarse type from the real rows (``'deeplesion'``) or, without the files,
from their 5 %-step quantiles (``'deeplesion_quantiles'``).
"""
import os.path as osp
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from mmlesion.datasets.deeplesion.dl_info import parse_dl_info

from mmlesion.utils.data_roots import shared_data_root

#: Quantiles (0, 5, ..., 100 %) of the long axis (mm) per coarse type, from
#: ``Lesion_diameters_Pixel_[0] * Spacing_mm_px_[0]`` of the 9,816 rows of
#: ``DL_info_{val,test}.csv`` (DeepLesion's val and test rows, in
#: ``deeplesion/annotations/`` of the real-data folder)
#: (:meth:`LesionSizeTable.from_dl_info` then
#: :meth:`LesionSizeTable.quantiles` reproduces them).
BUILTIN_LONG_MM_QUANTILES: Dict[int, Tuple[float, ...]] = {
    1: (4.3, 6.4, 7.5, 8.5, 9.2, 9.8, 10.7, 11.4, 12.7, 13.4, 15.0, 16.1,
        17.4, 18.2, 19.7, 21.7, 24.1, 25.9, 29.0, 33.5, 49.3),
    2: (2.2, 8.0, 10.0, 11.2, 12.4, 13.5, 14.8, 15.9, 17.4, 19.1, 20.8, 22.6,
        24.8, 27.0, 29.6, 32.9, 37.5, 42.8, 49.6, 65.4, 342.5),
    3: (2.8, 8.8, 10.4, 11.4, 12.5, 13.4, 14.3, 15.4, 16.3, 17.3, 18.2, 19.1,
        20.4, 22.0, 23.5, 25.5, 28.0, 31.1, 35.8, 45.6, 94.9),
    4: (2.8, 7.3, 9.3, 10.8, 12.2, 13.4, 15.0, 16.7, 18.7, 21.0, 22.9, 25.5,
        27.8, 30.6, 34.1, 38.5, 42.9, 51.6, 64.7, 81.4, 246.0),
    5: (0.6, 3.2, 4.1, 4.9, 5.7, 6.6, 7.6, 8.7, 9.9, 11.2, 12.6, 13.7, 15.3,
        16.7, 18.5, 21.0, 24.7, 29.7, 37.3, 55.5, 148.8),
    6: (2.5, 6.0, 8.8, 10.1, 11.8, 13.5, 14.6, 15.5, 16.7, 17.4, 19.3, 20.3,
        21.6, 23.3, 26.1, 29.7, 34.4, 40.4, 50.9, 63.7, 107.7),
    7: (3.2, 9.0, 10.9, 12.3, 14.0, 15.4, 16.3, 17.3, 18.7, 19.6, 21.2, 22.9,
        24.4, 26.2, 28.5, 31.0, 34.8, 37.6, 42.7, 51.8, 110.4),
    8: (3.8, 9.5, 11.1, 12.8, 13.9, 15.1, 16.4, 18.0, 19.2, 20.5, 22.5, 25.0,
        27.7, 30.9, 33.8, 39.4, 45.2, 51.5, 60.9, 77.5, 171.4),
}

#: Quantiles (0, 5, ..., 100 %) of short / long axis over the same rows.
BUILTIN_RATIO_QUANTILES: Tuple[float, ...] = (
    0.035, 0.429, 0.500, 0.545, 0.583, 0.615, 0.647, 0.675, 0.701, 0.727,
    0.750, 0.774, 0.797, 0.818, 0.840, 0.861, 0.885, 0.910, 0.939, 0.968,
    1.000)

#: The real annotation files :meth:`LesionSizeTable.from_dl_info` reads
#: (the only ones with ``Coarse_lesion_type``).
DL_INFO_FILES: Tuple[str, ...] = ('DL_info_val.csv', 'DL_info_test.csv')

SIZE_SOURCES: Tuple[str, ...] = ('builtin', 'deeplesion',
                                 'deeplesion_quantiles')

_LEVELS = np.linspace(0., 1., 21)


class SizeQuantiles(NamedTuple):
    """Long-axis quantiles per lesion type and the ratio quantiles (5 %
    steps)."""
    long_axis: Dict[int, np.ndarray]
    ratio: np.ndarray


class LesionSizeTable:
    """Sampler of ``(long axis mm, short / long ratio)`` per coarse type.

    Args:
        long_mm (dict): coarse type -> long axes (mm) of real lesions, or
            their quantiles at :data:`_LEVELS` when ``quantiles``.
        short_mm (dict, optional): coarse type -> matching short axes (mm);
            None with ``quantiles``.
        ratio_quantiles (Sequence[float], optional): quantiles of short /
            long (only with ``quantiles``).
        quantiles (bool): the tables are quantiles (inverse-CDF sampling)
            rather than rows (resampling).
        min_mm (float): smallest long axis drawn.
        max_mm (float): largest long axis drawn.
    """

    def __init__(self,
                 long_mm: Dict[int, Sequence[float]],
                 short_mm: Optional[Dict[int, Sequence[float]]] = None,
                 ratio_quantiles: Optional[Sequence[float]] = None,
                 quantiles: bool = False,
                 min_mm: float = 3.,
                 max_mm: float = 120.) -> None:
        if not 0 < min_mm < max_mm:
            raise ValueError('LesionSizeTable: need 0 < min_mm < max_mm, got '
                             f'{min_mm}, {max_mm}')
        self.long_mm = {int(t): np.asarray(v, np.float64)
                        for t, v in long_mm.items()}
        self.quantile_mode = bool(quantiles)
        if self.quantile_mode:
            if ratio_quantiles is None or len(ratio_quantiles) != len(
                    _LEVELS) or any(
                        len(v) != len(_LEVELS) for v in long_mm.values()):
                raise ValueError('LesionSizeTable: quantile tables need '
                                 f'{len(_LEVELS)} values each')
            self.ratio_q = np.asarray(ratio_quantiles, np.float64)
            self.short_mm = None
        else:
            if short_mm is None:
                raise ValueError('LesionSizeTable: short_mm is required '
                                 'unless quantiles=True')
            self.short_mm = {int(t): np.asarray(v, np.float64)
                             for t, v in short_mm.items()}
        self.min_mm, self.max_mm = float(min_mm), float(max_mm)

    @classmethod
    def from_dl_info(cls, annotation_dir: str, **kwargs) -> 'LesionSizeTable':
        """The real rows of :data:`DL_INFO_FILES` in ``annotation_dir``.

        Raises:
            FileNotFoundError: a file is missing (the message names it and
                the ``deeplesion_quantiles`` alternative).
        """
        long_mm: Dict[int, list] = {}
        short_mm: Dict[int, list] = {}
        for name in DL_INFO_FILES:
            path = osp.join(annotation_dir, name)
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'size_source="deeplesion" needs {path} (DeepLesion '
                    'annotations with Coarse_lesion_type); set '
                    'size_source="deeplesion_quantiles" to use the built-in '
                    'quantile table computed from them instead')
            for rec in parse_dl_info(path, duplicate_rows='drop'):
                if rec.lesion_type < 1:
                    continue
                long_mm.setdefault(rec.lesion_type, []).append(
                    rec.diameters_mm[0])
                short_mm.setdefault(rec.lesion_type, []).append(
                    rec.diameters_mm[1])
        return cls(long_mm, short_mm, **kwargs)

    @classmethod
    def builtin(cls, **kwargs) -> 'LesionSizeTable':
        """The built-in quantile tables (no file needed)."""
        return cls(BUILTIN_LONG_MM_QUANTILES,
                   ratio_quantiles=BUILTIN_RATIO_QUANTILES,
                   quantiles=True,
                   **kwargs)

    def quantiles(self) -> SizeQuantiles:
        """Long-axis quantiles per type and the ratio quantiles (5 % steps)
        of the table (how the built-in tables were computed)."""
        if self.quantile_mode:
            return SizeQuantiles(self.long_mm, self.ratio_q)
        ratios = np.concatenate([
            self.short_mm[t] / np.maximum(self.long_mm[t], 1e-6)
            for t in sorted(self.long_mm)
        ])
        return SizeQuantiles({t: np.quantile(v, _LEVELS)
                 for t, v in self.long_mm.items()},
                np.quantile(ratios, _LEVELS))

    def sample(self, rng: np.random.Generator,
               lesion_type: int) -> Tuple[float, float]:
        """One ``(long axis mm, short / long ratio)`` of ``lesion_type``.

        Args:
            rng (np.random.Generator): random source.
            lesion_type (int): coarse type 1..8.

        Returns:
            tuple[float, float]: long axis (clipped to ``[min_mm, max_mm]``)
            and ratio in ``[0.2, 1]`` (thinner lesions are clipped: a
            RECIST short axis of under one pixel is not drawable).
        """
        if lesion_type not in self.long_mm:
            raise KeyError(f'LesionSizeTable: no lesion of type '
                           f'{lesion_type} (types {sorted(self.long_mm)})')
        values = self.long_mm[lesion_type]
        if self.quantile_mode:
            long_mm = float(np.interp(rng.random(), _LEVELS, values))
            ratio = float(np.interp(rng.random(), _LEVELS, self.ratio_q))
        else:
            i = int(rng.integers(len(values)))
            long_mm = float(values[i])
            ratio = float(self.short_mm[lesion_type][i]) / max(long_mm, 1e-6)
        return (float(np.clip(long_mm, self.min_mm, self.max_mm)),
                float(np.clip(ratio, .2, 1.)))


def size_table(source: str,
               annotation_dir: Optional[str] = None) -> Optional[
                   LesionSizeTable]:
    """The size table of a :class:`StudyDataConfig` ``size_source``.

    Args:
        source (str): one of :data:`SIZE_SOURCES`; ``'builtin'`` (the
            generator's own log-normal model) gives None.
        annotation_dir (str, optional): folder of the DL_info files for
            ``'deeplesion'``; default ``<shared data>/deeplesion/
            annotations``.

    Returns:
        LesionSizeTable | None
    """
    if source not in SIZE_SOURCES:
        raise ValueError(f'size_source must be one of {SIZE_SOURCES}, got '
                         f'{source!r}')
    if source == 'builtin':
        return None
    if source == 'deeplesion_quantiles':
        return LesionSizeTable.builtin()
    if annotation_dir is None:
        root = shared_data_root()
        if root is None:
            raise FileNotFoundError(
                'size_source="deeplesion": no real-data folder '
                '(set MMLESION_SHARED_DATA) and no '
                'size_annotation_dir given; use "deeplesion_quantiles" '
                'for the built-in table')
        annotation_dir = osp.join(str(root), 'deeplesion', 'annotations')
    return LesionSizeTable.from_dl_info(annotation_dir)
