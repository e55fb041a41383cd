# Copyright (c) mmlesion contributors. All rights reserved.
"""Deterministic synthetic dataset in the exact DeepLesion release layout.

Writes what the NIH release contains (Yan et al., "DeepLesion", J. Med.
Imaging 2018, Sec. 2 and the release's README)::

    <out>/Images_png/<patient:06d>_<study:02d>_<series:02d>/<slice:03d>.png
    <out>/DL_info.csv        # the 18 official columns, official formatting
    <out>/demo_meta.json     # generator settings and every lesion drawn

PNGs hold ``HU + 32768``; CSV coordinates are 1-based like the official
file. Each key slice comes with its stored neighbours (``context_mm`` on
each side). As in DeepLesion some visible lesions have no CSV row, a few
rows are ``Possibly_noisy`` and splits are by patient. ``demo_meta.json``
lists every lesion drawn (annotated or not), a lesion's instances linked by
``lesion_id``.

Same seed and settings give byte-identical files.
"""
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Tuple, TypedDict, Union

import cv2
import numpy as np

from mmlesion.datasets.deeplesion.dl_info import (
    format_dl_number as _fmt, format_dl_numbers as _fmt_list, write_dl_info)
from mmlesion.utils.writing.atomic import atomic_write_json

from .anatomy import NOT_BODY
from .dataset_writer import DatasetGenerator, round_all
from .deeplesion_plan import DeepLesionDemoPlanner, _Series
from .phantom import Acquisition, simulate_acquisition
from .settings import (GENERATOR_VERSION, META_FILE, SPLIT_CODES,
                       DemoDataConfig)


# Noise is nearly incompressible: Huffman-only deflate is as small as the
# default strategy and faster.
_PNG_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY
]


class DemoSplitCounts(TypedDict):
    """One split of a :class:`DemoSummary`."""
    patients: int
    key_slices: int
    lesions: int
    unannotated_lesions: int
    noisy_rows: int
    images: int


class _Written(TypedDict, total=False):
    out_dir: str  # where :meth:`DatasetGenerator.generate` wrote it


class DemoSummary(_Written):
    """Counts and distributions of a planned demo set
    (:meth:`DeepLesionDemoGenerator.summary`; ``out_dir`` once written):
    per split, images and series, key slices by slice interval, lesions by
    type, the long diameters' percentiles (mm and px, by level) and bins,
    the lesions' contrast percentiles (HU)."""
    splits: Dict[str, DemoSplitCounts]
    images: int
    series: int
    key_slices_by_slice_interval_mm: Dict[str, int]
    lesions_by_type: Dict[str, int]
    long_diameter_mm_percentiles: Dict[str, float]
    long_diameter_px_percentiles: Dict[str, float]
    long_diameter_mm_bins: Dict[str, int]
    contrast_hu_percentiles: Dict[str, float]


class DeepLesionDemoGenerator(DeepLesionDemoPlanner,
                              DatasetGenerator[DemoSummary]):
    """Plan and write a synthetic DeepLesion-format dataset.

    Args:
        config (DemoDataConfig, optional): settings; keyword arguments
            override its fields (e.g. ``seed=1, num_train=10``).

    Example:
        >>> gen = DeepLesionDemoGenerator(num_train=4, num_val=2, num_test=2)
        >>> summary = gen.generate('data/demo_deeplesion')
    """

    CONFIG = DemoDataConfig
    MARKER = META_FILE

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

    def summary(self) -> DemoSummary:
        """Counts and distributions of the planned dataset."""
        series = self.plan()
        per_split: Dict[str, dict] = {
            k: dict(patients=set(), key_slices=0, lesions=0,
                    unannotated_lesions=0, noisy_rows=0, images=0)
            for k in SPLIT_CODES
        }
        long_mm, long_px, contrast = [], [], []
        types, intervals = Counter(), Counter()
        for s in series:
            d = per_split[s.split]
            d['patients'].add(s.patient)
            d['key_slices'] += len(s.keys)
            d['images'] += len(s.indices())
            intervals[_fmt(s.interval)] += len(s.keys)
            for key in s.keys:
                d['unannotated_lesions'] += sum(not les.annotated
                                                for les in key.lesions)
                for row in key.rows:
                    les = row['lesion']
                    d['lesions'] += 1
                    d['noisy_rows'] += int(row['noisy'])
                    long_px.append(row['diameters_px'][0])
                    long_mm.append(row['diameters_px'][0] * s.grid.spacing)
                    types[str(les.lesion_type)] += 1
                    contrast.append(abs(les.hu - les.host_hu))
        for d in per_split.values():
            d['patients'] = len(d['patients'])
        lm = np.asarray(long_mm)
        pct = (0, 10, 25, 50, 75, 90, 100)
        return DemoSummary(
            splits=per_split,
            images=self.num_images(),
            series=len(series),
            key_slices_by_slice_interval_mm=dict(sorted(intervals.items())),
            lesions_by_type=dict(
                sorted(types.items(), key=lambda x: int(x[0]))),
            long_diameter_mm_percentiles=_percentiles(lm, pct, 2),
            long_diameter_px_percentiles=_percentiles(long_px, pct, 2),
            long_diameter_mm_bins={
                '<10': int((lm < 10).sum()),
                '10-30': int(((lm >= 10) & (lm <= 30)).sum()),
                '>30': int((lm > 30).sum())
            },
            contrast_hu_percentiles=_percentiles(
                contrast, (0, 10, 50, 90), 1),
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
                             center_px=round_all((cc, rr), 3),
                             center_mm=round_all(les.center, 3),
                             semi_axes_mm=round_all(les.semi_axes, 3),
                             angle=round(les.angle, 5), hu=les.hu,
                             host_hu=round(les.host_hu, 1)))
                key_slices.append(
                    dict(self._series_meta(s),
                         file_name=f'{s.dir_name}_{key.index:03d}.png',
                         z_mm=round(key.z, 3), lesions=lesions))
        cfg = asdict(self.config)
        return dict(generator='mmlesion.datasets.demo',
                    version=GENERATOR_VERSION, config=cfg,
                    summary=self.summary(), key_slices=key_slices)

    @staticmethod
    def _series_meta(s: _Series) -> dict:
        """What ``demo_meta.json`` says of a key slice's series."""
        return dict(split=s.split, region=s.region, slice_interval=s.interval,
                    spacing=s.grid.spacing,
                    noise_sigma=round(s.noise_sigma, 2))

    def _write_series(self, root: Path, s: _Series, progress=None) -> None:
        folder = root / 'Images_png' / s.dir_name
        folder.mkdir(parents=True, exist_ok=True)
        seed = int(self.config.seed)
        for index in s.indices():
            hu, labels = s.phantom.render(s.z_of(index), s.grid)
            rng = np.random.default_rng(
                [seed, s.patient, s.study, s.series, index, 77])
            body = NOT_BODY[labels] == 0
            img = simulate_acquisition(
                hu, Acquisition(s.noise_sigma, s.air_sigma,
                                fov_fill=s.fov_fill), rng, body=body)
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
        write_dl_info(str(path), self.csv_rows())

    def _num_steps(self) -> int:
        return self.num_images()

    def _write(self, tmp: Path, progress) -> None:
        for s in self.plan():
            self._write_series(tmp, s, progress)
        self.write_csv(tmp / 'DL_info.csv')
        atomic_write_json(str(tmp / META_FILE), self._meta(), indent=1,
                          sort_keys=True)


def _percentiles(values: List[float], levels: Tuple[int, ...],
                 digits: int) -> Dict[str, float]:
    """``{level: percentile}`` rounded to ``digits`` ({} without values)."""
    return {str(p): round(float(np.percentile(values, p)), digits)
            for p in levels} if len(values) else {}


#: Write the demo dataset (``out_dir, seed=0, overwrite=False,
#: show_progress=False, **DemoDataConfig fields``); its summary.
generate_demo_deeplesion = DeepLesionDemoGenerator.write
