# Copyright (c) mmlesion contributors. All rights reserved.
"""Where one data-loading worker's time goes, for
``benchmark_data_loading.py --parts``.

Holds the series ``--parts`` runs on (:func:`prepare_slices`: real
DeepLesion slices of the shared data folder or synthetic 16-bit PNGs, with
a ``DL_info.csv`` of real or made-up lesions), the timing of each step of a
2.5D training pipeline per sample (:func:`time_parts`: PNG decoding of the
key and neighbouring slices, the rest of the slice loading, windowing and
augmentation, :class:`PartTimes`), the comparison of the earlier loading
(:mod:`projects.benchmarks.data_loading_baseline`) with the current one on
the same samples (:class:`LoadingComparison`) and the record of a
``--parts`` run (:class:`PartsResult`).
"""
import contextlib
import csv
import dataclasses
import os
import os.path as osp
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from projects.benchmarks.data_loading_workers import WorkerNeed

#: The real series used by ``--parts`` (29 consecutive slices in the shared
#: data folder) and the key slices taken from it: 64-76 keep all 9 channels
#: at 2 mm on stored slices for slice intervals of 1 mm and more.
REAL_SERIES = '000062_01_01'
SERIES_SLICES = range(56, 85)
KEY_SLICES = range(64, 77)


@dataclasses.dataclass
class PartTimes:
    """Milliseconds per sample of each part of a 2.5D training pipeline.

    Attributes:
        key_png_decode_ms (float): decoding the key slice's 16-bit PNG.
        neighbour_png_decode_ms (float): decoding the neighbouring slices'
            PNGs (the "neighbouring-slice reads").
        slice_assembly_ms (float): the rest of the slice loading: file
            checks, HU conversion, clipping, interpolation, stacking.
        windowing_ms (float): the HU window (``WindowHU``).
        augmentation_ms (float): every other transform (annotations,
            border clipping, resizing, flips, affine, packing).
        total_ms (float): the whole pipeline.
        augmentation_steps_ms (dict): ``augmentation_ms`` per transform.
        slices_decoded (float): PNGs decoded per sample (mean).
    """
    key_png_decode_ms: float
    neighbour_png_decode_ms: float
    slice_assembly_ms: float
    windowing_ms: float
    augmentation_ms: float
    total_ms: float
    augmentation_steps_ms: Dict[str, float]
    slices_decoded: float

    @property
    def samples_per_s(self) -> float:
        """Samples per second of one worker (one thread)."""
        return 1000. / self.total_ms

    def shares(self) -> Dict[str, float]:
        """Each part's fraction of ``total_ms``."""
        parts = dict(
            key_png_decode=self.key_png_decode_ms,
            neighbour_png_decode=self.neighbour_png_decode_ms,
            slice_assembly=self.slice_assembly_ms,
            windowing=self.windowing_ms,
            augmentation=self.augmentation_ms)
        return {k: v / self.total_ms for k, v in parts.items()}


@dataclasses.dataclass
class LoadingComparison:
    """The slice loading and windowing, earlier way against current way.

    Attributes:
        baseline_ms (float): earlier loading + windowing per sample, mean.
        current_ms (float): current loading + windowing per sample, mean.
        baseline_median_ms (float): the earlier way's median sample.
        current_median_ms (float): the current way's median sample.
        ratio (float): ``baseline_median_ms / current_median_ms`` (> 1:
            faster now; medians, as other jobs on a shared machine stall
            a few samples of either way).
        mean_ratio (float): ``baseline_ms / current_ms``.
        identical (bool): both gave the same pixels (bit for bit) on
            every sample.
    """
    baseline_ms: float
    current_ms: float
    baseline_median_ms: float
    current_median_ms: float
    ratio: float
    mean_ratio: float
    identical: bool


@dataclasses.dataclass
class PartsResult:
    """The ``--parts`` result of one config.

    Attributes:
        config (str): the config.
        data (str): which slices were read (real or synthetic).
        samples (int): timed samples.
        threads (int): torch / OpenCV threads (1: one worker's share).
        num_slices (int): channels per sample.
        parts (PartTimes): the current pipeline's parts.
        samples_per_s_per_worker (float): what one worker delivers: the
            one-worker ``DataLoader`` rate with ``--with-loader``, else
            ``1000 / parts.total_ms``.
        in_process_samples_per_s (float): ``1000 / parts.total_ms``.
        loader_samples_per_s (float, optional): one ``DataLoader`` worker
            process, measured with ``--with-loader``.
        loading (LoadingComparison, optional): earlier vs current loading.
        need (WorkerNeed, optional): workers per GPU (None without a GPU
            time for the config).
        load_average (list): ``os.getloadavg()`` at the start and the end.
    """
    config: str
    data: str
    samples: int
    threads: int
    num_slices: int
    parts: PartTimes
    samples_per_s_per_worker: float
    in_process_samples_per_s: float
    loader_samples_per_s: Optional[float]
    loading: Optional[LoadingComparison]
    need: Optional[WorkerNeed]
    load_average: List[List[float]]


def _dl_info_row(src: Dict[str, str], key: int,
                 series: str = REAL_SERIES) -> Dict[str, str]:
    """A DL_info row of ``series``/``key`` with ``src``'s lesion."""
    patient, study, series_id = (int(v) for v in series.split('_'))
    row = dict(src)
    row.update(
        File_name=f'{series}_{key:03d}.png',
        Patient_index=str(patient),
        Study_index=str(study),
        Series_ID=str(series_id),
        Key_slice_index=str(key),
        Possibly_noisy='0',
        Slice_range=f'{SERIES_SLICES[0]}, {SERIES_SLICES[-1]}',
        Train_Val_Test='1')
    return row


def _lesion_rows(annotation_csv: Optional[str]) -> List[Dict[str, str]]:
    """Real 512 x 512 validation rows, alternately 1 mm and 5 mm slice
    interval (the two intervals of 98 % of the rows, in about equal
    parts), or made-up rows of that kind without ``annotation_csv``."""
    if annotation_csv and osp.isfile(annotation_csv):
        with open(annotation_csv, newline='') as f:
            rows = [r for r in csv.DictReader(f)
                    if r['Image_size'].replace(' ', '') == '512,512'
                    and r['Possibly_noisy'].strip() == '0']
        by_interval = {
            z: [r for r in rows
                if float(r['Spacing_mm_px_'].split(',')[2]) == z]
            for z in (1., 5.)}
        if all(by_interval.values()):
            return [by_interval[(1., 5.)[i % 2]][i // 2]
                    for i in range(len(KEY_SLICES))]
    rows = []
    for i in range(len(KEY_SLICES)):
        x, y = 200. + 5 * i, 240. - 3 * i
        rows.append({
            'Measurement_coordinates':
            f'{x}, {y}, {x + 20}, {y + 10}, {x + 8}, {y + 12}, {x + 12}, '
            f'{y - 2}',
            'Bounding_boxes': f'{x - 5}, {y - 7}, {x + 25}, {y + 17}',
            'Lesion_diameters_Pixel_': '22.4, 14.6',
            'Normalized_lesion_location': '0.5, 0.5, 0.5',
            'Coarse_lesion_type': '4',
            'Spacing_mm_px_': f"0.78, 0.78, {(1, 5)[i % 2]}",
            'Image_size': '512, 512',
            'DICOM_windows': '-175, 275',
            'Patient_gender': 'F',
            'Patient_age': '60'})
    return rows


def _write_synthetic_series(series_dir: str, size: int = 512) -> None:
    """CT-like 16-bit PNGs: an elliptic body of soft tissue with noise, a
    few organs and bones, air around it and -2048 HU outside the field of
    view, changing slowly from slice to slice."""
    from mmlesion.datasets.deeplesion.png_slices import write_hu_png
    os.makedirs(series_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size - .5
    fov = xx**2 + yy**2 > .25
    for index in SERIES_SLICES:
        t = (index - SERIES_SLICES[0]) / len(SERIES_SLICES)
        hu = np.full((size, size), -1000., np.float32)
        hu[(xx / .42)**2 + (yy / .3)**2 < 1] = 40.
        hu[((xx - .12) / .12)**2 + ((yy + .02) / (.1 + .03 * t))**2 < 1] = 60.
        hu[(xx / .04)**2 + ((yy - .2) / .04)**2 < 1] = 700.
        hu[((xx + .15) / .1)**2 + (yy / .12)**2 < 1] = -850.
        hu += rng.normal(0., 15., hu.shape).astype(np.float32)
        hu[fov] = -2048.
        write_hu_png(osp.join(series_dir, f'{index:03d}.png'), hu)


def prepare_slices(out_dir: str, data_root: Optional[str] = None,
                   synthetic: bool = False) -> str:
    """Write a DeepLesion release folder with one series for ``--parts``.

    ``out_dir/Images_png/000062_01_01`` is a link to the real series under
    ``data_root`` when it holds slices 56-84 (and ``synthetic`` is False),
    else a folder of synthetic 16-bit PNGs; ``out_dir/DL_info.csv`` lists
    key slices 64-76 of it as training images, each with the lesion and
    slice interval of a real validation row (made-up ones when the
    annotations are absent).

    Args:
        out_dir (str): an empty folder.
        data_root (str, optional): a DeepLesion folder with ``Images_png``
            (and ``annotations/DL_info_val.csv``).
        synthetic (bool): write synthetic slices anyway.

    Returns:
        str: a description of the slices, ``'real ...'`` or
        ``'synthetic ...'``.
    """
    real_dir = osp.join(data_root, 'Images_png',
                        REAL_SERIES) if data_root else None
    real = (not synthetic and real_dir is not None and all(
        osp.isfile(osp.join(real_dir, f'{i:03d}.png'))
        for i in SERIES_SLICES))
    os.makedirs(osp.join(out_dir, 'Images_png'), exist_ok=True)
    series_dir = osp.join(out_dir, 'Images_png', REAL_SERIES)
    if real:
        os.symlink(osp.realpath(real_dir), series_dir)
    else:
        _write_synthetic_series(series_dir)
    annotations = osp.join(data_root, 'annotations',
                           'DL_info_val.csv') if data_root else None
    rows = [_dl_info_row(src, key)
            for src, key in zip(_lesion_rows(annotations), KEY_SLICES)]
    from mmlesion.datasets.deeplesion.dl_info import DL_INFO_COLUMNS
    with open(osp.join(out_dir, 'DL_info.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(DL_INFO_COLUMNS),
                                extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    if real:
        return (f'real DeepLesion slices {SERIES_SLICES[0]}-'
                f'{SERIES_SLICES[-1]} of {REAL_SERIES} ({real_dir}), key '
                f'slices {KEY_SLICES[0]}-{KEY_SLICES[-1]}')
    return (f'synthetic 16-bit 512 x 512 PNGs ({len(SERIES_SLICES)} slices '
            f'written to {series_dir}; no real series '
            f'{REAL_SERIES} under {data_root})')


def leaf_dataset_cfg(dataset_cfg: dict) -> dict:
    """The first plain dataset of a (wrapped / multi-source) dataset
    config: the one whose ``pipeline`` the training runs."""
    cfg = dataset_cfg
    while 'pipeline' not in cfg:
        if cfg.get('datasets'):
            cfg = cfg['datasets'][0]
        elif cfg.get('dataset'):
            cfg = cfg['dataset']
        else:
            raise ValueError(f"no dataset with a 'pipeline' in {dataset_cfg}")
    return cfg


@contextlib.contextmanager
def _timed_imread(durations: List[float]) -> Iterator[None]:
    """Record the duration of every ``cv2.imread`` (the PNG decoding)."""
    import cv2
    original = cv2.imread

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - start)

    cv2.imread = timed
    try:
        yield
    finally:
        cv2.imread = original


def same_pixels(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and values, bit for bit (NaNs included)."""
    a, b = np.asarray(a), np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and a.tobytes() == b.tobytes())


def _timed_call(func: Callable[[dict], dict],
                results: dict) -> Tuple[float, dict]:
    """``func(results)`` and the seconds it took."""
    start = time.perf_counter()
    out = func(results)
    return time.perf_counter() - start, out


def step_name(transform) -> str:
    """The class name of a pipeline step (e.g. ``'WindowHU'``)."""
    return type(transform).__name__


def cache_recist_masks(dataset, folder: str) -> int:
    """Write the RECIST masks of every sample of ``dataset`` into a mask
    cache in ``folder``, as ``tools/dataset_converters/recist_to_masks.py``
    does (the pipeline up to its ``RecistToMask``, that transform's
    arguments), and put in its place a ``RecistToMask`` of the same
    arguments reading them (``cache_missing='error'``: a mask it would
    compute stops the benchmark).

    Returns:
        int: the key slices written (0: the pipeline has no
        ``RecistToMask``).
    """
    from mmlesion.datasets.transforms.recist_grabcut import RecistToMask
    from mmlesion.datasets.transforms.recist_mask_cache import write_cache_meta
    steps = dataset.pipeline.transforms
    where = [i for i, t in enumerate(steps)
             if step_name(t) == 'RecistToMask']
    if not where:
        return 0
    masker = steps[where[0]]
    write_cache_meta(folder, masker.params)
    for index in range(len(dataset)):
        results = dataset.get_data_info(index)
        for step in steps[:where[0]]:
            results = step(results)
        masker.write_cache_file(results, folder)
    steps[where[0]] = RecistToMask(**masker.params, cache_dir=folder,
                                   cache_missing='error')
    return len(dataset)


def time_parts(dataset, samples: int, warmup: int,
               baseline: Optional[Dict[str, Callable]] = None
               ) -> Tuple[PartTimes, Optional[LoadingComparison]]:
    """Run the pipeline of ``dataset`` step by step and time each part.

    Args:
        dataset: a built dataset (``get_data_info``, ``pipeline``).
        samples (int): timed samples (cycling through the dataset).
        warmup (int): untimed samples first.
        baseline (dict, optional): transform class name -> the earlier
            implementation, a callable ``results -> results``, timed on a
            copy of the same input right after the current one; its image
            must equal the current one bit for bit.

    Returns:
        tuple: :class:`PartTimes` and a :class:`LoadingComparison` (None
        without ``baseline``).
    """
    import copy
    steps = list(dataset.pipeline.transforms)
    totals: Dict[str, float] = dict(
        key=0., neighbours=0., assembly=0., windowing=0., total=0.)
    per_step: Dict[str, float] = {}
    decoded = 0
    base_s: List[float] = []  # per timed sample: earlier, current way
    cur_s: List[float] = []
    identical = True
    for i in range(warmup + samples):
        timed = i >= warmup
        results = dataset.get_data_info(i % len(dataset))
        sample_total = 0.
        if timed and baseline:
            base_s.append(0.)
            cur_s.append(0.)
        for step in steps:
            name = step_name(step)
            old = baseline.get(name) if baseline else None
            # the earlier way gets a copy of the same input (untimed copy),
            # before the current way on every other sample: neither gains
            # from the files and caches the other has just warmed
            old_input = copy.deepcopy(results) if old is not None else None
            old_first = old is not None and i % 2 == 1
            if old_first:
                old_s, old_results = _timed_call(old, old_input)
            reads: List[float] = []
            with _timed_imread(reads):
                start = time.perf_counter()
                results = step(results)
                elapsed = time.perf_counter() - start
            if old is not None:
                if not old_first:
                    old_s, old_results = _timed_call(old, old_input)
                identical = identical and same_pixels(old_results['img'],
                                                      results['img'])
                if timed:
                    base_s[-1] += old_s
                    cur_s[-1] += elapsed
            if results is None:
                raise RuntimeError(f'{name} dropped sample {i}')
            sample_total += elapsed
            if not timed:
                continue
            if name == 'LoadDeepLesionSlices':
                totals['key'] += reads[0] if reads else 0.
                totals['neighbours'] += sum(reads[1:])
                totals['assembly'] += elapsed - sum(reads)
                decoded += len(reads)
            elif name == 'WindowHU':
                totals['windowing'] += elapsed
            else:
                per_step[name] = per_step.get(name, 0.) + elapsed
        if timed:
            totals['total'] += sample_total
    ms = {k: 1000. * v / samples for k, v in totals.items()}
    steps_ms = {k: 1000. * v / samples for k, v in per_step.items()}
    parts = PartTimes(
        key_png_decode_ms=ms['key'],
        neighbour_png_decode_ms=ms['neighbours'],
        slice_assembly_ms=ms['assembly'],
        windowing_ms=ms['windowing'],
        augmentation_ms=sum(steps_ms.values()),
        total_ms=ms['total'],
        augmentation_steps_ms=steps_ms,
        slices_decoded=decoded / samples)
    comparison = None
    if baseline and sum(cur_s) > 0:
        base_med, cur_med = np.median(base_s), np.median(cur_s)
        comparison = LoadingComparison(
            baseline_ms=1000. * float(np.mean(base_s)),
            current_ms=1000. * float(np.mean(cur_s)),
            baseline_median_ms=1000. * float(base_med),
            current_median_ms=1000. * float(cur_med),
            ratio=float(base_med / cur_med),
            mean_ratio=sum(base_s) / sum(cur_s),
            identical=identical)
    return parts, comparison
