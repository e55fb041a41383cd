# Copyright (c) mmlesion contributors. All rights reserved.
"""Export of CT volumes with 3D lesions as 2D key slices, DeepLesion layout.

Every 2D detector reads DeepLesion's release layout, so LUNA16, KiTS19,
LiTS or NIH-LN written in it train unchanged (LENS, Sec. IV-A, trains one
detector on several datasets this way). ``data/README.md`` (2D export)
describes the files, key slices, context slices and negative slices (LENS,
Sec. VI-B). Choices it leaves to here:

- The converter numbers patients 1, 2, ... in order of appearance and a
  patient's scans 1, 2, ... (``Patient_index`` groups a patient's studies
  as in DeepLesion); without a patient each volume is the next patient's
  study 1. ``key_slices='every'`` is ElixirNet's KiTS19 protocol.
- Boxes in ``DL_info.csv`` are DeepLesion's 1-based first and last pixel
  (a lesion on pixels 10 and 11, 0-based, is ``11 .. 12``, read by
  :class:`~mmlesion.datasets.DeepLesionDataset` as mmdet's ``[10, 12)``);
  the ``uncertain`` boxes of ``lens_extra_slices.json`` are read as they
  are, so they are written in mmdet's convention.
  ``Normalized_lesion_location`` is relative to the image (x, y) and the
  volume (z), not to the body.
"""
import copy
import errno
import hashlib
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, TypedDict

import numpy as np

from mmlesion.datasets.deeplesion.dl_info import (format_dl_numbers, mmdet_box,
                                                  write_dl_info)
from mmlesion.datasets.deeplesion.png_slices import write_hu_png
from mmlesion.datasets.volumes import CTVolume
from mmlesion.utils.tool_defaults import tool_defaults
from mmlesion.utils.writing.atomic import (atomic_write,
                                           remove_stale_temporaries,
                                           remove_stale_temporaries_of)
from mmlesion.utils.writing.refusals import (WRITE_ERRNOS, WriteFailure,
                                             WriteRefusedError, format_bytes,
                                             free_bytes)

SliceBoxes = Dict[int, Sequence[float]]
#: Negative slices and ignored findings of an export (mined-file format).
EXTRA_SLICES_FILE = 'lens_extra_slices.json'
#: The files of an export besides ``Images_png`` (and its replica marker).
EXPORT_FILES = ('DL_info.csv', 'series_map.json', EXTRA_SLICES_FILE,
                'REPLICA.txt')
#: What the 2D export writes into its folder (an existing one is refused).
EXPORT_OUTPUTS = ('DL_info.csv', 'Images_png', 'series_map.json',
                  EXTRA_SLICES_FILE)
#: The choices and defaults the converter's ``--help`` shows
#: (``tool_defaults.json``).
_SHOWN = tool_defaults(__file__)
_EXPORT = _SHOWN['DeepLesionExporter']
#: Which lesions get key slices: the included ones, or all.
KEY_LESIONS = tuple(_SHOWN['KEY_LESIONS'])
#: A lesion's key slices: the one through its centre, every slice, or every
#: slice in the training split and its own one in the others.
KEY_SLICES = tuple(_SHOWN['KEY_SLICES'])
#: Bytes a PNG needs beyond its pixels (header, chunks, file system block).
_PNG_OVERHEAD = 4096


def sphere_slice_boxes(volume: CTVolume, center_xyz: Sequence[float],
                       diameter_mm: float) -> SliceBoxes:
    """Cross-sections of a sphere on the slices of a volume.

    Args:
        volume (CTVolume): geometry of the scan (axial, direction ~ I).
        center_xyz (sequence[float]): world centre (mm).
        diameter_mm (float): diameter (mm).

    Returns:
        dict: slice index z -> ``[x1, y1, x2, y2]`` in continuous voxels
        (voxel centres at integers) of the circle cut by the slice plane.
    """
    c = volume.world_to_voxel(np.asarray(center_xyz, dtype=float))[0]
    sz, sy, sx = volume.spacing_zyx
    r = 0.5 * float(diameter_mm)
    out = {}
    for z in range(int(math.ceil(c[0] - r / sz)),
                   int(math.floor(c[0] + r / sz)) + 1):
        if not 0 <= z < volume.shape_zyx[0]:
            continue
        rr = math.sqrt(max(r * r - ((z - c[0]) * sz)**2, 0.0))
        if rr <= 0:
            continue
        out[z] = [c[2] - rr / sx, c[1] - rr / sy, c[2] + rr / sx,
                  c[1] + rr / sy]
    return out


def box_slice_boxes(bbox: Sequence[float],
                    num_slices: Optional[int] = None) -> SliceBoxes:
    """The 2D extent of a 3D box on every slice it covers."""
    x1, y1, z1, x2, y2, z2 = bbox
    zs = range(int(math.ceil(z1 - 0.5 + 1e-6)), int(math.floor(z2 + 0.5 -
                                                             1e-6)) + 1)
    return {
        z: [x1, y1, x2, y2]
        for z in zs if num_slices is None or 0 <= z < num_slices
    }


def _slice_boxes(lesion: dict, depth: int) -> SliceBoxes:
    """A lesion's ``slice_boxes``, else its 3D box's extent per slice."""
    return lesion.get('slice_boxes') or box_slice_boxes(lesion['bbox'], depth)


def own_key_slice(lesion: dict, boxes: SliceBoxes) -> int:
    """A lesion's own key slice: its ``key_slice`` where given (the slice
    it was measured on), else the slice of its largest cross-section (the
    largest 2D box; of equal ones the nearest the centre of its 3D box,
    rounded up: the centre slice of a sphere or a box)."""
    if lesion.get('key_slice') is not None:
        if int(lesion['key_slice']) not in boxes:
            raise ValueError(
                f"key slice {int(lesion['key_slice']) + 1} does not cross the "
                f'lesion at {lesion["bbox"]} (slices {min(boxes) + 1}-'
                f'{max(boxes) + 1})')
        return int(lesion['key_slice'])
    b = lesion['bbox']
    zc = int(math.floor((b[2] + b[5]) / 2 + 0.5))
    return max(boxes, key=lambda z: (round(
        (boxes[z][2] - boxes[z][0]) * (boxes[z][3] - boxes[z][1]), 6),
        -abs(z - zc)))


class ExportParts(TypedDict):
    """What a :class:`DeepLesionExporter` collected (its ``parts()``; a
    scan's resumable record holds it as JSON): the
    ``DL_info.csv`` rows, the ``lens_series.json`` and
    ``lens_extra_slices.json`` entries and the PNGs written."""
    rows: List[List[str]]
    series: List[dict]
    extra_slices: List[dict]
    num_pngs: int


class DeepLesionExporter:
    """Write volumes and their lesions in DeepLesion's release layout.

    Use :meth:`add_volume` for every volume, then :meth:`write` for
    ``DL_info.csv`` and ``series_map.json`` (see the module doc for the
    conventions).

    Args:
        out_dir (str): output folder (``Images_png/``, ``DL_info.csv``,
            ``series_map.json``).
        num_slices (int): slices the multi-slice loader will read (e.g. 9).
        interval_mm (float): their interval (e.g. 2 mm).
        key_lesions (str): ``'included'`` (default: findings marked
            ``ignore`` get neither key slices nor rows) or ``'all'``.
        min_diameter_mm (float): lesions with a known diameter below this
            get no key slice (they still get rows on other key slices).
        key_slices (str): ``'centre'`` (default: one key slice per lesion,
            its own, :func:`own_key_slice`), ``'every'`` (every slice
            the lesion crosses is a key slice) or ``'every-train'`` (every
            slice in the training split, split 1: more distinct training
            images of the same patients; the own key slice in val and
            test, whose evaluation stays one key slice per lesion).
        export_unlabeled (bool): write every slice of every volume.
            Defaults to False.
        negatives_per_key (float): lesion-free slices drawn per key slice
            of a volume (rounded up; 0 for none). Defaults to 1.0.
        lesion_type (int): ``Coarse_lesion_type`` of the rows (1..8 as in
            DeepLesion, e.g. 5 lung, 6 kidney, 4 liver), -1 unknown.
        dicom_window (tuple): ``DICOM_windows`` column (low, high HU).
        overwrite (bool): allow writing into a folder that already has a
            ``DL_info.csv`` or ``Images_png``.
    """

    def __init__(self,
                 out_dir: str,
                 num_slices: int = _EXPORT['num_slices'],
                 interval_mm: float = _EXPORT['interval_mm'],
                 key_lesions: str = _EXPORT['key_lesions'],
                 min_diameter_mm: float = _EXPORT['min_diameter_mm'],
                 key_slices: str = _EXPORT['key_slices'],
                 export_unlabeled: bool = False,
                 negatives_per_key: float = _EXPORT['negatives_per_key'],
                 lesion_type: int = -1,
                 dicom_window: Tuple[float, float] = (-1024, 3071),
                 overwrite: bool = False) -> None:
        if key_lesions not in KEY_LESIONS:
            raise ValueError(f'key_lesions must be one of {KEY_LESIONS}, '
                             f'got {key_lesions!r}')
        if key_slices not in KEY_SLICES:
            raise ValueError(f'key_slices must be one of {KEY_SLICES}, got '
                             f'{key_slices!r}')
        if num_slices < 1 or interval_mm <= 0:
            raise ValueError('num_slices >= 1 and interval_mm > 0 needed')
        if negatives_per_key < 0:
            raise ValueError('negatives_per_key must be >= 0, got '
                             f'{negatives_per_key}')
        self.out_dir = str(out_dir)
        existing = [p for p in EXPORT_OUTPUTS
                    if osp.exists(osp.join(self.out_dir, p))]
        if existing and not overwrite:
            raise FileExistsError(
                f'{self.out_dir} already has {existing}; pass --overwrite '
                f'(overwrite=True) to write over them')
        self.num_slices = int(num_slices)
        self.interval_mm = float(interval_mm)
        self.key_lesions = key_lesions
        self.min_diameter_mm = float(min_diameter_mm)
        self.key_slices = key_slices
        self.export_unlabeled = export_unlabeled
        self.negatives_per_key = float(negatives_per_key)
        self.extra_slices: List[dict] = []
        self.lesion_type = int(lesion_type)
        self.dicom_window = tuple(float(v) for v in dicom_window)
        if len(self.dicom_window) != 2 or not all(
                map(math.isfinite, self.dicom_window)) or \
                self.dicom_window[0] >= self.dicom_window[1]:
            raise ValueError(
                f'--window {tuple(dicom_window)}: the DICOM window of the 2D '
                'export must be two finite HU, the lower first (e.g. '
                '--window -1024 3071)')
        self.rows: List[List[str]] = []
        self.series: List[dict] = []
        self.num_pngs = 0

    def add_volume(self,
                   volume: CTVolume,
                   volume_id: str,
                   lesions: List[dict],
                   split: int = 1,
                   patient: Optional[int] = None,
                   scans_left: int = 0,
                   study: int = 1) -> str:
        """Write the slices of one volume and collect its rows.

        Args:
            volume (CTVolume): the scan (canonical orientation).
            volume_id (str): its id in the annotation file.
            lesions (list[dict]): ``bbox`` (3D, continuous voxels),
                ``ignore`` (bool), ``diameter_mm`` and optionally
                ``slice_boxes`` (z -> 2D box, default: the 3D box's extent
                on each slice it covers) and ``lesion_type``.
            split (int): ``Train_Val_Test`` (1 train, 2 val, 3 test).
            patient (int, optional): the 1-based patient number of the
                series (default: the next one).
            study (int): the 1-based study of that patient.
            scans_left (int): volumes still to export after this one, for
                the space a refused write names.

        Returns:
            str: the series folder name.

        Raises:
            WriteRefusedError: a PNG could not be written for a full disk
                (or quota, or a read-only folder).
        """
        patient = patient or len(self.series) + 1
        name = f'{patient:06d}_{study:02d}_01'
        depth, height, width = volume.shape_zyx
        sz, sy, sx = volume.spacing_zyx
        chosen = [
            les for les in lesions
            if self.key_lesions == 'all' or not les.get('ignore', False)
        ]
        slice_boxes = [_slice_boxes(les, depth) for les in chosen]
        keys, own = set(), []
        for les, boxes in zip(chosen, slice_boxes):
            d = les.get('diameter_mm', -1)
            if 0 <= d < self.min_diameter_mm or not boxes:
                continue
            k = own_key_slice(les, boxes)
            every = self.key_slices == 'every' or (
                self.key_slices == 'every-train' and split == 1)
            keys.update(boxes if every else [k])
            own.append(dict(key_slice=k + 1, bbox=[round(v + 1, 2) for v in
                                                 self._pixel_box(
                                                     boxes[k],
                                                     (height, width))]))
        context = int(
            math.ceil((self.num_slices // 2) * self.interval_mm / sz)) + 1
        negatives = self._negative_slices(volume_id, depth, keys,
                                          slice_boxes)
        if self.export_unlabeled:
            written = set(range(depth))
        else:
            written = {
                z
                for k in keys | negatives
                for z in range(k - context, k + context + 1)
                if 0 <= z < depth
            }
        folder = osp.join(self.out_dir, 'Images_png', name)
        os.makedirs(folder, exist_ok=True)
        for n, z in enumerate(sorted(written)):
            try:
                write_hu_png(osp.join(folder, f'{z + 1:03d}.png'),
                             volume.array[z])
            except OSError as err:
                refused = self._refused_png(
                    err, folder, 2 * height * width, len(written) - n,
                    len(written), scans_left)
                if refused is None:
                    raise
                raise refused from err
        self.num_pngs += len(written)
        for k in sorted(keys):
            first = max(k - context, 0) + 1
            last = min(k + context, depth - 1) + 1
            for les, boxes in zip(chosen, slice_boxes):
                if k in boxes:
                    self.rows.append(
                        self._row((patient, study), k, boxes[k], les,
                                  (first, last),
                                  (sx, sy, sz), (height, width), depth,
                                  split))
        self._add_extra_slices(name, keys, negatives, lesions, depth,
                               (height, width))
        self.series.append(
            dict(
                series=name,
                volume_id=str(volume_id),
                series_uid=volume.series_uid,
                shape_zyx=list(volume.shape_zyx),
                spacing_zyx=list(volume.spacing_zyx),
                origin_xyz=list(volume.origin_xyz),
                key_slices=[k + 1 for k in sorted(keys)],
                lesions=own,
                negative_slices=[z + 1 for z in sorted(negatives)],
                num_slices_written=len(written)))
        return name

    def _refused_png(self, err: OSError, folder: str, slice_bytes: int,
                     left: int, total: int,
                     scans_left: int) -> Optional[WriteRefusedError]:
        """A refused PNG write as a :class:`WriteRefusedError` of the
        export, or None when ``err`` is something else.

        ``cv2.imwrite`` says no more than False (an ``OSError`` without
        ``errno``): that is a full disk when less than one more PNG fits
        in the space free. The space needed is estimated from what is left
        to write: the ``left`` PNGs of this volume and, for each of the
        ``scans_left`` volumes after it, as many as this one writes
        (``total``), each the average size of the PNGs of this volume
        written so far (before the first: the uncompressed 16-bit slice,
        ``slice_bytes``).
        """
        code = err.errno if err.errno in WRITE_ERRNOS else None
        free = free_bytes(folder)
        sizes = [osp.getsize(osp.join(folder, n))
                 for n in os.listdir(folder)
                 if n.endswith('.png') and not n.startswith('.')]
        each = int(sum(sizes) / len(sizes)) if sizes else \
            slice_bytes + _PNG_OVERHEAD
        if code is None and free is not None and free < each:
            code = errno.ENOSPC
        if code is None:
            return None
        more = (f' and {scans_left} more volume{"s" * (scans_left > 1)} '
                f'like it' if scans_left else '')
        return WriteRefusedError(WriteFailure(
            path=self.out_dir, errno=code,
            needed=each * (left + scans_left * total), free=free,
            folder=self.out_dir, needed_for=(
                f'estimated: the {left} PNGs left of '
                f'{osp.basename(folder)}{more}, {format_bytes(each)} a PNG')))

    def remove_stale_temporaries(self) -> List[str]:
        """Remove the temporary files a killed export left (in
        ``Images_png/*`` and of its own files); the run that calls it must
        be the only one writing this export.

        Returns:
            list[str]: the removed paths.
        """
        removed = remove_stale_temporaries_of(
            *(osp.join(self.out_dir, name) for name in EXPORT_FILES))
        images = osp.join(self.out_dir, 'Images_png')
        if osp.isdir(images):
            for name in sorted(os.listdir(images)):
                removed += remove_stale_temporaries(osp.join(images, name))
        return removed

    def parts(self) -> ExportParts:
        """What :meth:`add_volume` collected (to merge elsewhere)."""
        return ExportParts(rows=self.rows, series=self.series,
                           extra_slices=self.extra_slices,
                           num_pngs=self.num_pngs)

    def empty_copy(self) -> 'DeepLesionExporter':
        """The same settings, nothing collected (one volume's export)."""
        part = copy.copy(self)
        part.rows, part.series, part.extra_slices, part.num_pngs = \
            [], [], [], 0
        return part

    def merge(self, parts: ExportParts) -> None:
        """Append the :meth:`parts` of another exporter."""
        self.rows += parts['rows']
        self.series += parts['series']
        self.extra_slices += parts['extra_slices']
        self.num_pngs += parts['num_pngs']

    def _negative_slices(self, volume_id: str, depth: int, keys: set,
                         slice_boxes: List[SliceBoxes]) -> set:
        """Lesion-free slices (no selected lesion crosses them) drawn at
        random, ``ceil(negatives_per_key * len(keys))`` of them."""
        if not keys or self.negatives_per_key <= 0:
            return set()
        busy = {z for boxes in slice_boxes for z in boxes}
        free = [z for z in range(depth) if z not in busy]
        n = min(len(free), int(math.ceil(self.negatives_per_key * len(keys))))
        seed = int(hashlib.md5(str(volume_id).encode()).hexdigest()[:8], 16)
        rng = np.random.default_rng(seed)
        return {int(z) for z in rng.choice(free, size=n, replace=False)}

    def _add_extra_slices(self, name: str, keys: set, negatives: set,
                          lesions: List[dict], depth: int,
                          size: Tuple[int, int]) -> None:
        """Entries of ``lens_extra_slices.json``: the negative slices and
        the key slices crossed by ignored findings, with those findings'
        boxes as ``uncertain``."""
        ignored = [_slice_boxes(les, depth) for les in lesions
                   if les.get('ignore', False)]
        for z in sorted(keys | negatives):
            uncertain = []
            for boxes in ignored:
                if z in boxes:
                    b = self._pixel_box(boxes[z], size)
                    if b[2] > b[0] and b[3] > b[1]:  # 1 px: dropped
                        uncertain.append([round(v, 2)
                                          for v in mmdet_box(b)])
            if z in negatives or uncertain:
                self.extra_slices.append(
                    dict(series_dir=name, slice=z + 1, mined=[],
                         mined_sources=[], uncertain=uncertain))

    @staticmethod
    def _pixel_box(box2d: Sequence[float],
                   size: Tuple[int, int]) -> List[float]:
        """Continuous voxels -> 0-based inclusive pixel indices of the first
        / last covered pixel, clipped to the image."""
        height, width = size
        x1 = min(max(box2d[0] + 0.5, 0.0), width - 1.0)
        y1 = min(max(box2d[1] + 0.5, 0.0), height - 1.0)
        x2 = min(max(box2d[2] - 0.5, x1), width - 1.0)
        y2 = min(max(box2d[3] - 0.5, y1), height - 1.0)
        return [x1, y1, x2, y2]

    def _row(self, patient_study: Tuple[int, int], key: int,
             box2d: Sequence[float],
             les: dict, slice_range: Tuple[int, int],
             spacing: Tuple[float, float, float], size: Tuple[int, int],
             depth: int, split: int) -> List[str]:
        height, width = size
        x1, y1, x2, y2 = self._pixel_box(box2d, size)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        w, h = x2 - x1, y2 - y1
        if w >= h:
            recist = [x1, cy, x2, cy, cx, y1, cx, y2]
        else:
            recist = [cx, y1, cx, y2, x1, cy, x2, cy]
        one = np.asarray(recist) + 1.0  # 1-based in the file
        lesion_type = int(les.get('lesion_type', self.lesion_type))
        patient, study = patient_study
        return [
            f'{patient:06d}_{study:02d}_01_{key + 1:03d}.png',
            str(patient), str(study), '1', str(key + 1),
            format_dl_numbers(np.round(one, 2)),
            format_dl_numbers(np.round([x1 + 1, y1 + 1, x2 + 1, y2 + 1], 2)),
            format_dl_numbers(np.round([max(w, h), min(w, h)], 2)),
            format_dl_numbers(
                np.round([cx / width, cy / height, key / max(depth - 1, 1)],
                         4)),
            str(lesion_type), '0',
            format_dl_numbers(slice_range),
            format_dl_numbers(np.round(spacing, 6)),
            format_dl_numbers(size),
            format_dl_numbers(self.dicom_window), 'U', 'NaN',
            str(int(split))
        ]

    def write(self) -> str:
        """Write ``DL_info.csv``, ``series_map.json`` and
        ``lens_extra_slices.json`` (negative slices and ignored findings,
        see the module doc).

        Returns:
            str: the path of ``DL_info.csv``.
        """
        from mmlesion.datasets.deeplesion.mined_file import write_mined_file
        os.makedirs(self.out_dir, exist_ok=True)
        csv_path = osp.join(self.out_dir, 'DL_info.csv')
        write_dl_info(csv_path, self.rows)
        with atomic_write(osp.join(self.out_dir, 'series_map.json')) as f:
            json.dump(self.series, f, indent=1)
        write_mined_file(
            osp.join(self.out_dir, EXTRA_SLICES_FILE), self.extra_slices,
            dict(note='negative slices and ignored findings of the export '
                 '(mmlesion DeepLesionExporter), for DeepLesionMinedDataset',
                 negatives_per_key=self.negatives_per_key,
                 counts=dict(
                     negative_slices=sum(
                         len(s['negative_slices']) for s in self.series),
                     slices=len(self.extra_slices),
                     uncertain=sum(
                         len(s['uncertain']) for s in self.extra_slices))),
            overwrite=True)
        return csv_path
