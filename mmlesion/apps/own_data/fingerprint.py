# Copyright (c) mmlesion contributors. All rights reserved.
"""A converted volume dataset's fingerprint: what a planner needs to know.

:func:`compute_fingerprint` reads the annotation file and every scan it
lists (in the canonical LPS axial grid the boxes index) and summarises them
per split and for ``all`` (docs/your_own_data.md, "What the planner
writes", says what and how: the lesion diameter, the HU inside a lesion
given as a box, :data:`BOX_CORE`). It also keeps the central axial slice of
a few lesions for the montage of
:func:`mmlesion.apps.own_data.fingerprint_figure.draw_fingerprint`.
"""
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmlesion.datasets.volumes import VolumeOptions, load_ct_volume
from mmlesion.datasets.volumes.annotation_file import (load_annotation_file,
                                                       resolve_volume_file)
from mmlesion.datasets.volumes.scan_switches import ScanChecks
from mmlesion.utils.checkpoints.checksum import sha256_file
from mmlesion.utils.reporting.progress import track_progress

from .common import SPLIT_NAMES, map_scans
from .scan_cases import header_facts
from .scan_records import input_stamp, read_record, write_record

#: Percentiles every :class:`Distribution` keeps (nnU-Net's 0.5 / 99.5
#: clip points among them).
PERCENTILES = (0.5, 5, 25, 50, 75, 95, 99.5)
#: Edges of the HU histograms (16 HU bins over the CT range).
HU_BIN_EDGES = np.arange(-1024, 3072 + 16, 16)
#: Side (pixels) of the montage's lesion crops.
CROP_PX = 64
#: HU inside a lesion given as a box: the inscribed ellipsoid's axes times
#: this (module doc).
BOX_CORE = 1 / 3
#: Version of what a fingerprint holds (a planner recomputes one of
#: another version): 2: one diameter for every input, box cores.
FINGERPRINT_VERSION = 2


@dataclass
class Distribution:
    """Percentiles (:data:`PERCENTILES`, keys ``'p0.5'`` ...) and mean of
    ``n`` values; empty (``n == 0``) where there were none."""
    n: int
    mean: Optional[float] = None
    percentiles: Dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, values: Sequence[float]) -> 'Distribution':
        """The distribution of ``values``."""
        v = np.asarray(values, np.float64).ravel()
        if not len(v):
            return cls(0)
        return cls(len(v), round(float(v.mean()), 4), {
            f'p{q:g}': round(float(p), 4)
            for q, p in zip(PERCENTILES, np.percentile(v, PERCENTILES))})

    def at(self, q: float) -> float:
        """The ``q``-th percentile (one of :data:`PERCENTILES`)."""
        if not self.n:
            raise ValueError(f'no values, so no {q:g}th percentile')
        return self.percentiles[f'p{q:g}']


@dataclass
class SplitFingerprint:
    """One split's summary (see the module doc); distributions of a 3-list
    are per axis z, y, x."""
    num_scans: int
    num_lesions: int
    spacing_zyx_mm: List[Distribution]
    shape_zyx: List[Distribution]
    orientations: Dict[str, int]
    lesions_per_scan: Distribution
    lesion_diameter_mm: Distribution
    lesion_extent_zyx_mm: List[Distribution]
    hu_inside: Distribution
    hu_outside: Distribution
    hu_histogram_inside: List[int]
    hu_histogram_outside: List[int]
    lesion_extents_zyx_mm: List[List[float]]
    scan_spacings_zyx_mm: List[List[float]]


@dataclass
class LesionCrop:
    """A lesion's central axial slice (HU, :data:`CROP_PX` square, the box
    and half its size around it) for the montage; not in the JSON."""
    volume_id: str
    split: str
    diameter_mm: float
    hu: np.ndarray


@dataclass
class DatasetFingerprint:
    """The fingerprint of a converted dataset (module doc).

    Attributes:
        ann_file (str): the annotation file it was computed from.
        ann_sha256 (str): that file's SHA-256 (a planner refuses a stale
            fingerprint).
        dataset (str): ``metainfo.dataset``.
        classes (list[str]): ``metainfo.classes``.
        splits (dict): ``'train'``, ``'val'``, ``'test'`` (those with scans)
            and ``'all'`` -> :class:`SplitFingerprint`.
        voxels_per_scan (int): intensity samples per scan, inside and
            outside lesions each.
        seed (int): seed of the samples.
        version (int): :data:`FINGERPRINT_VERSION` of its computation (1:
            one written before versions, without the field).
        crops (list[LesionCrop]): montage crops (not written to the JSON).
    """
    ann_file: str
    ann_sha256: str
    dataset: str
    classes: List[str]
    splits: Dict[str, SplitFingerprint]
    voxels_per_scan: int
    seed: int
    version: int = 1
    crops: List[LesionCrop] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        """The JSON object (everything but ``crops``)."""
        out = dataclasses.asdict(dataclasses.replace(self, crops=[]))
        out.pop('crops')
        return out

    @classmethod
    def from_json(cls, data: dict, path: str = '<fingerprint>'
                  ) -> 'DatasetFingerprint':
        """Read what :meth:`to_json` wrote; a missing field is named."""
        try:
            splits = {}
            for name, s in data['splits'].items():
                s = dict(s)
                for key in ('spacing_zyx_mm', 'shape_zyx',
                            'lesion_extent_zyx_mm'):
                    s[key] = [Distribution(**d) for d in s[key]]
                for key in ('lesions_per_scan', 'lesion_diameter_mm',
                            'hu_inside', 'hu_outside'):
                    s[key] = Distribution(**s[key])
                splits[name] = SplitFingerprint(**s)
            data = {k: v for k, v in data.items() if k != 'splits'}
            return cls(splits=splits, **data)
        except (KeyError, TypeError) as err:
            raise ValueError(f'{path}: not a dataset fingerprint ({err})'
                             ) from err


@dataclass
class FingerprintSettings:
    """What :func:`compute_fingerprint` reads and how.

    Args:
        ann_file (str): the common annotation file.
        voxels_per_scan (int): intensity samples per scan, inside and
            outside lesions each. Defaults to 20000.
        seed (int): seed of the samples. Defaults to 0.
        max_crops (int): lesions in the montage. Defaults to 16.
        data_root (str, optional): the folder scans must lie in (default:
            the annotation file's).
        workers (int): processes reading scans (1: this one); the
            fingerprint does not depend on it. Defaults to 1.
        records_for (str, optional): keep a record of each scan read in
            ``<records_for>.parts/`` (:mod:`~.scan_records`), so a killed
            run resumes; the caller removes them. Default: no records.
        show_progress (bool): a progress bar over the scans.
        scan_checks (ScanChecks): the input checks relaxed when the scans
            are read (as their conversion was given them).
    """
    ann_file: str
    voxels_per_scan: int = 20000
    seed: int = 0
    max_crops: int = 16
    data_root: Optional[str] = None
    workers: int = 1
    records_for: Optional[str] = None
    show_progress: bool = True
    scan_checks: ScanChecks = field(default_factory=ScanChecks)


def _split_of(vol: dict) -> str:
    """The split name of an entry (no ``split``: train)."""
    return SPLIT_NAMES.get(vol.get('split', 1), 'train')


def _lesions(vol: dict) -> List[dict]:
    return [a for a in vol['annotations'] if not a.get('ignore', False)]


def _extent_mm(ann: dict, spacing_zyx: Sequence[float]) -> List[float]:
    b = ann['bbox']
    return [round((b[k + 3] - b[k]) * spacing_zyx[2 - k], 3)
            for k in (2, 1, 0)]


def _diameter_mm(ann: dict, spacing_zyx: Sequence[float]) -> float:
    """The largest axial extent (mm): the longer in-plane side of the box
    (module doc), for masks and boxes alike."""
    return max(_extent_mm(ann, spacing_zyx)[1:])


def _box_slices(bbox: Sequence[float], shape: Sequence[int]):
    """``(lo, hi)`` (z, y, x) of the voxel centres inside a box."""
    b = np.asarray(bbox, np.float64)
    lo = np.clip(np.ceil(b[:3][::-1]), 0, shape).astype(int)
    hi = np.clip(np.floor(b[3:][::-1]) + 1, 0, shape).astype(int)
    return lo, hi


def _inside_values(array: np.ndarray, lesions: List[dict],
                   mask: Optional[np.ndarray] = None) -> np.ndarray:
    """HU of the lesion voxels: ``mask``'s inside each box where given,
    else the ellipsoid inscribed in each box (module doc)."""
    out = [np.zeros(0, array.dtype)]
    for ann in lesions:
        lo, hi = _box_slices(ann['bbox'], array.shape)
        box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        if mask is None:
            b = np.asarray(ann['bbox'], np.float64)
            centre = (b[:3] + b[3:])[::-1] / 2
            half = (b[3:] - b[:3])[::-1] / 2
            grids = np.ogrid[box]
            dist = sum(((g - c) / np.maximum(h * BOX_CORE, 1e-6))**2
                       for g, c, h in zip(grids, centre, half))
            inside = dist <= 1
            if dist.size and not inside.any():
                inside = dist == dist.min()
        else:
            inside = mask[box]
        out.append(array[box][inside])
    return np.concatenate(out)


def _scan_file(settings: FingerprintSettings, file: str) -> str:
    """The path of an entry's ``file`` or ``mask_file``, in the data
    root unless ``--allow-outside-data``."""
    return resolve_volume_file(
        settings.ann_file, file, data_root=settings.data_root,
        allow_outside=settings.scan_checks.allow_outside_data)


def _lesion_mask(vol: dict, settings, labels) -> Optional[np.ndarray]:
    """The entry's label map as a boolean lesion mask, None without one."""
    if not vol.get('mask_file'):
        return None
    path = _scan_file(settings, vol['mask_file'])
    seg = load_ct_volume(path, scan_checks=dataclasses.replace(
        settings.scan_checks, force_ct=True),
        options=VolumeOptions(dtype=None)).array
    if list(seg.shape) != [int(s) for s in vol['shape_zyx']]:
        raise ValueError(f'{path}: label map of shape {list(seg.shape)} on '
                         f'another grid than its scan {vol["shape_zyx"]}')
    return seg != 0 if labels is None else np.isin(seg, labels)


def _outside_values(array: np.ndarray, lesions: List[dict], n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """HU of ``n`` voxels drawn uniformly, those in a lesion box dropped."""
    zyx = np.stack([rng.integers(0, s, n) for s in array.shape], 1)
    keep = np.ones(n, bool)
    for ann in lesions:
        lo, hi = _box_slices(ann['bbox'], array.shape)
        keep &= ~((zyx >= lo) & (zyx < hi)).all(1)
    return array[tuple(zyx[keep].T)]


def _sample(values: np.ndarray, n: int, rng: np.random.Generator):
    if len(values) <= n:
        return values
    return values[rng.choice(len(values), n, replace=False)]


def _crop(array: np.ndarray, ann: dict) -> np.ndarray:
    """The central axial slice of a lesion's box plus half its size."""
    b = np.asarray(ann['bbox'], np.float64)
    z = int(np.clip(round((b[2] + b[5]) / 2), 0, array.shape[0] - 1))
    cy, cx = (b[1] + b[4]) / 2, (b[0] + b[3]) / 2
    half = 0.75 * max(b[3] - b[0], b[4] - b[1], 2.)
    pos = np.linspace(-half, half, CROP_PX)
    ys = np.clip(np.round(cy + pos), 0, array.shape[1] - 1).astype(int)
    xs = np.clip(np.round(cx + pos), 0, array.shape[2] - 1).astype(int)
    return array[z][np.ix_(ys, xs)].astype(np.float32)


def _summarise(vols: List[dict], samples: Dict[str, List[np.ndarray]]
               ) -> SplitFingerprint:
    """One split's :class:`SplitFingerprint` from its entries and the
    intensity samples of their scans."""
    def per_axis(key):
        return [Distribution.of([v[key][k] for v in vols]) for k in range(3)]

    extents, diameters, orientations = [], [], {}
    for v in vols:
        code = v.get('stored_orientation', '?')
        orientations[code] = orientations.get(code, 0) + 1
        for ann in _lesions(v):
            extents.append(_extent_mm(ann, v['spacing_zyx']))
            diameters.append(_diameter_mm(ann, v['spacing_zyx']))
    inside = np.concatenate(samples['inside'] or [np.zeros(0)])
    outside = np.concatenate(samples['outside'] or [np.zeros(0)])
    ext = np.asarray(extents, np.float64).reshape(-1, 3)
    return SplitFingerprint(
        num_scans=len(vols),
        num_lesions=len(diameters),
        spacing_zyx_mm=per_axis('spacing_zyx'),
        shape_zyx=per_axis('shape_zyx'),
        orientations=orientations,
        lesions_per_scan=Distribution.of([len(_lesions(v)) for v in vols]),
        lesion_diameter_mm=Distribution.of(diameters),
        lesion_extent_zyx_mm=[Distribution.of(ext[:, k]) for k in range(3)],
        hu_inside=Distribution.of(inside),
        hu_outside=Distribution.of(outside),
        hu_histogram_inside=np.histogram(inside, HU_BIN_EDGES)[0].tolist(),
        hu_histogram_outside=np.histogram(outside, HU_BIN_EDGES)[0].tolist(),
        lesion_extents_zyx_mm=extents,
        scan_spacings_zyx_mm=[list(v['spacing_zyx']) for v in vols])


def _read_scan(settings, labels, wanted, i: int, vol: dict) -> dict:
    """One scan's part of the fingerprint: its stored orientation, intensity
    samples inside and outside its lesions (drawn with a generator seeded by
    the seed and the scan's index, so any number of workers gives the same)
    and its montage crops."""
    path = _scan_file(settings, vol['file'])
    volume = load_ct_volume(path, scan_checks=settings.scan_checks)
    array = volume.array
    if list(array.shape) != [int(s) for s in vol['shape_zyx']]:
        raise ValueError(
            f'{path}: shape (z, y, x) {list(array.shape)} differs from '
            f'{vol["shape_zyx"]} in {settings.ann_file} (volume '
            f'{vol["id"]!r}); convert the dataset again')
    rng = np.random.default_rng([settings.seed, i])
    n, lesions = settings.voxels_per_scan, _lesions(vol)
    mask = _lesion_mask(vol, settings, labels)
    return dict(
        orientation=header_facts(volume)[0],
        inside=_sample(_inside_values(array, lesions, mask), n, rng),
        outside=_outside_values(array, lesions, n, rng),
        crops=[LesionCrop(vol['id'], _split_of(vol), _diameter_mm(
            ann, vol['spacing_zyx']), _crop(array, ann))
               for j, ann in enumerate(vol['annotations'])
               if (i, j) in wanted])


def _scan_facts(job: tuple) -> dict:
    """:func:`_read_scan`, or its record where a killed run left one made
    with the same settings from the same files (``records_for``)."""
    settings, labels, wanted, i, vol = job
    out = settings.records_for
    if not out:
        return _read_scan(*job)
    files = [_scan_file(settings, vol[k]) for k in ('file', 'mask_file')
             if vol.get(k)]
    key = json.dumps([FINGERPRINT_VERSION, settings.seed,
                      settings.voxels_per_scan, labels, i,
                      sorted(j for k, j in wanted if k == i)])
    stamp = input_stamp(files)
    record = read_record(out, vol['id'], key, stamp)
    if record is not None:
        f = record['facts']
        return dict(orientation=f['orientation'],
                    inside=np.asarray(f['inside'], np.float32),
                    outside=np.asarray(f['outside'], np.float32),
                    crops=[LesionCrop(**dict(c, hu=np.asarray(
                        c['hu'], np.float32))) for c in f['crops']])
    facts = _read_scan(*job)
    write_record(out, vol['id'], dict(key=key, inputs=stamp, facts=dict(
        facts, inside=facts['inside'].tolist(),
        outside=facts['outside'].tolist(),
        crops=[dict(dataclasses.asdict(c), hu=c.hu.tolist())
               for c in facts['crops']])))
    return facts


def compute_fingerprint(settings: FingerprintSettings) -> DatasetFingerprint:
    """Read the dataset of ``settings.ann_file`` and fingerprint it.

    Args:
        settings (FingerprintSettings): the file, the sampling, the crops.

    Returns:
        DatasetFingerprint: per split and ``all``, with the montage crops.

    Raises:
        ValueError: a malformed annotation file, a scan that cannot be
            read, or a scan whose shape differs from its entry's, each
            naming the file.
    """
    data = load_annotation_file(settings.ann_file)
    vols = data.volumes
    # montage lesions: spread over the diameters of all lesions
    lesions = sorted(
        ((_diameter_mm(a, v['spacing_zyx']), i, j) for i, v in enumerate(vols)
         for j, a in enumerate(v['annotations']) if not a.get('ignore')))
    picks = np.unique(np.linspace(0, len(lesions) - 1, settings.max_crops
                                  ).round().astype(int)) if lesions else []
    wanted = {lesions[p][1:] for p in picks}
    labels = data.metainfo.get('lesion_labels')
    jobs = [(settings, labels, wanted, i, v) for i, v in enumerate(vols)]
    samples = {s: dict(inside=[], outside=[]) for s in SPLIT_NAMES.values()}
    crops = []
    results = map_scans(_scan_facts, jobs, settings.workers)
    if settings.show_progress:
        results = track_progress(results, len(jobs), label='fingerprint')
    for vol, facts in zip(vols, results):
        vol['stored_orientation'] = facts['orientation']
        for key in ('inside', 'outside'):
            samples[_split_of(vol)][key].append(facts[key])
        crops += facts['crops']
    splits = {}
    for name in SPLIT_NAMES.values():
        members = [v for v in vols if _split_of(v) == name]
        if members:
            splits[name] = _summarise(members, samples[name])
    every = {k: sum((samples[s][k] for s in samples), []) for k in
             ('inside', 'outside')}
    splits['all'] = _summarise(vols, every)
    crops.sort(key=lambda c: c.diameter_mm)
    return DatasetFingerprint(
        ann_file=settings.ann_file, ann_sha256=sha256_file(settings.ann_file),
        dataset=str(data.metainfo.get('dataset', '')),
        classes=list(data.metainfo['classes']), splits=splits,
        voxels_per_scan=settings.voxels_per_scan, seed=settings.seed,
        version=FINGERPRINT_VERSION, crops=crops)
