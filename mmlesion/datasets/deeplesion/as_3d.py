# Copyright (c) mmlesion contributors. All rights reserved.
"""DeepLesion as a 3D detection set (3D Aggregated Faster R-CNN, Sec. V).

The paper converts DeepLesion's key-slice annotations into LUNA16-style
``{X, Y, Z, Diameter}`` lesions in 3D scan chunks:

* "Z position is calculated by key slice indices and slice intervals": a
  lesion sits on its key slice of the chunk made of the released slices
  (``Slice_range``) of its series; a series' overlapping ranges form one
  chunk (each chunk is a volume, resampled to 1 mm at load time).
* "annotated bounding boxes for small lesions are usually too large" (the
  boxes are the RECIST extent padded by 5 px): the diameter of a lesion is
  the long side of its box, and for small lesions "the minimum of the long
  side of the bounding box and long diameter". The paper does not define
  "small"; we use a RECIST long diameter below ``small_mm`` = 10 mm (the
  smallest size bin of its Table VI).
* "we merge multi-annotated lesions": annotations of one chunk whose
  centres lie within the larger radius of the two are one lesion (mean
  centre and diameter; the first row's type).
* "remove very large lesions (>= 48 mm) during training": training-split
  lesions with a diameter >= ``drop_large_mm`` are dropped; val/test keep
  them.
* "noisy annotations are removed": ``Possibly_noisy`` rows are no lesions
  and make no chunks; one whose key slice lies in another lesion's chunk is
  kept there as an *ignored* lesion (ours, like LUNA16's excluded
  findings).
"""
import os.path as osp
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from .dl_info import DLInfoRecord
from .png_slices import read_hu_png
from ..volumes import CTVolume
from ...utils.tool_defaults import tool_defaults

#: The defaults ``deeplesion_to_3d.py --help`` shows (``tool_defaults.json``).
_SHOWN = tool_defaults(__file__)['As3DSettings']


@dataclass(frozen=True)
class As3DSettings:
    """How key-slice lesions become 3D lesions (the options of
    ``tools/dataset_converters/deeplesion_to_3d.py``).

    Args:
        small_mm (float): small-lesion threshold of the diameter rule.
        drop_large_mm (float): training lesions with a diameter >= this
            are dropped (``<= 0`` keeps all).
        merge (bool): merge multi-annotated lesions.
        drop_noisy (bool): ``Possibly_noisy`` rows are no lesions (ignored
            lesions inside chunks of other lesions; see the module doc).
            True, as the paper.
    """
    small_mm: float = _SHOWN['small_mm']
    drop_large_mm: float = _SHOWN['drop_large_mm']
    merge: bool = _SHOWN['merge']
    drop_noisy: bool = _SHOWN['drop_noisy']


@dataclass
class Lesion3D:
    """A DeepLesion lesion in its 3D chunk.

    Attributes:
        centre_xyz (np.ndarray): continuous voxel index (x, y, z) in the
            chunk (z = key slice - first slice of the chunk).
        diameter_mm (float): 3D diameter (see the module doc).
        lesion_type (int): coarse type (1..8, -1 unknown).
        split (int): 1 train, 2 val, 3 test.
        rows (list[int]): ``DL_info.csv`` lines merged into this lesion.
        ignore (bool): a ``Possibly_noisy`` annotation kept as an ignore
            region.
    """
    centre_xyz: np.ndarray
    diameter_mm: float
    lesion_type: int
    split: int
    rows: List[int] = field(default_factory=list)
    ignore: bool = False


def lesion_diameter_mm(rec: DLInfoRecord,
                       small_mm: float = _SHOWN['small_mm']) -> float:
    """3D diameter of a DeepLesion lesion (Sec. V rules).

    Args:
        rec (DLInfoRecord): the lesion.
        small_mm (float): long diameters below this are "small".

    Returns:
        float: diameter in mm.
    """
    sx = rec.spacing[0]
    x1, y1, x2, y2 = rec.bbox
    box_long = max(x2 - x1 + 1, y2 - y1 + 1) * sx  # inclusive pixels
    long_mm = rec.diameters_px[0] * sx
    return min(box_long, long_mm) if long_mm < small_mm else box_long


def merge_ranges(ranges: Iterable[Tuple[int, int]]
                 ) -> List[Tuple[int, int]]:
    """Inclusive ``(first, last)`` ranges, overlapping or adjacent ones
    joined, in order."""
    merged: List[Tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def chunk_ranges(records: Sequence[DLInfoRecord]
                 ) -> Dict[str, List[Tuple[int, int]]]:
    """Slice chunks per series: the union of overlapping ``Slice_range``s.

    Args:
        records (Sequence[DLInfoRecord]): lesions.

    Returns:
        dict[str, list[tuple[int, int]]]: inclusive (first, last) slices.
    """
    ranges = defaultdict(list)
    for rec in records:
        ranges[rec.series_name].append(tuple(rec.slice_range))
    return {series: merge_ranges(rs) for series, rs in ranges.items()}


def _lesion_3d(rec: DLInfoRecord, first: int, small_mm: float,
               ignore: bool = False) -> Lesion3D:
    """The lesion of a row in the chunk starting at slice ``first``."""
    x1, y1, x2, y2 = rec.bbox
    return Lesion3D(
        centre_xyz=np.array([(x1 + x2) / 2, (y1 + y2) / 2,
                             rec.key_slice_index - first], np.float64),
        diameter_mm=lesion_diameter_mm(rec, small_mm),
        lesion_type=rec.lesion_type, split=rec.split, rows=[rec.row],
        ignore=ignore)


def _noisy_as_ignored(noisy: Sequence[DLInfoRecord],
                      chunks: Dict[str, List[Tuple[int, int]]],
                      small_mm: float,
                      out: Dict[Tuple[str, int, int], List[Lesion3D]]
                      ) -> None:
    """Add noisy rows whose key slice lies in a chunk as ignored lesions."""
    for rec in noisy:
        chunk = next(((f, l) for f, l in chunks.get(rec.series_name, [])
                      if f <= rec.key_slice_index <= l), None)
        if chunk is not None:
            out[(rec.series_name, *chunk)].append(
                _lesion_3d(rec, chunk[0], small_mm, ignore=True))


def deeplesion_to_3d(records: Sequence[DLInfoRecord],
                     settings: As3DSettings = As3DSettings()
                     ) -> Dict[Tuple[str, int, int], List[Lesion3D]]:
    """Convert key-slice lesions to 3D lesions per chunk (Sec. V).

    Args:
        records (Sequence[DLInfoRecord]): ``DL_info.csv`` rows.
        settings (As3DSettings): the diameter rule, merging and noisy rows.

    Returns:
        dict: ``(series, first, last)`` -> lesions of that chunk.
    """
    small_mm, drop_large_mm = settings.small_mm, settings.drop_large_mm
    noisy = [r for r in records if r.noisy] if settings.drop_noisy else []
    if settings.drop_noisy:
        records = [r for r in records if not r.noisy]
    chunks = chunk_ranges(records)
    out: Dict[Tuple[str, int, int], List[Lesion3D]] = defaultdict(list)
    for rec in records:
        first, last = next((f, l) for f, l in chunks[rec.series_name]
                           if f <= rec.key_slice_index <= l)
        lesion = _lesion_3d(rec, first, small_mm)
        spacing_xyz = np.asarray(rec.spacing, np.float64)
        key = (rec.series_name, first, last)
        for other in out[key] if settings.merge else []:
            dist = np.linalg.norm(
                (other.centre_xyz - lesion.centre_xyz) * spacing_xyz)
            if dist < max(other.diameter_mm, lesion.diameter_mm) / 2:
                n = len(other.rows)
                other.centre_xyz = (other.centre_xyz * n +
                                    lesion.centre_xyz) / (n + 1)
                other.diameter_mm = (other.diameter_mm * n +
                                     lesion.diameter_mm) / (n + 1)
                other.rows.append(rec.row)
                break
        else:
            out[key].append(lesion)
    if drop_large_mm > 0:
        for key in list(out):
            out[key] = [
                les for les in out[key]
                if not (les.split == 1 and les.diameter_mm >= drop_large_mm)
            ]
    _noisy_as_ignored(noisy, chunks, small_mm, out)
    return dict(out)


def load_chunk_volume(image_root: str, series: str, first: int, last: int,
                      spacing_xyz: Sequence[float]) -> CTVolume:
    """Stack a chunk's PNG slices into a volume (slice ``first`` at z = 0).

    Args:
        image_root (str): the ``Images_png`` folder.
        series (str): series folder name.
        first (int): first slice (inclusive).
        last (int): last slice (inclusive).
        spacing_xyz (Sequence[float]): (x, y, z) mm.

    Returns:
        CTVolume: (z, y, x) HU volume; origin (0, 0, first * dz).

    Raises:
        FileNotFoundError: naming the first missing slice.
    """
    slices = [
        read_hu_png(osp.join(image_root, series, f'{i:03d}.png'))
        for i in range(first, last + 1)
    ]
    sx, sy, sz = (float(s) for s in spacing_xyz)
    return CTVolume(
        np.stack(slices), (sz, sy, sx), (0., 0., first * sz),
        meta=dict(series_uid=series, path=osp.join(image_root, series)))


def lesion_box(lesion: Lesion3D, spacing_xyz: Sequence[float]) -> List[float]:
    """Cube ``[x1, y1, z1, x2, y2, z2]`` (voxels) of a lesion's sphere."""
    half = lesion.diameter_mm / 2 / np.asarray(spacing_xyz, np.float64)
    return [float(v) for v in np.concatenate(
        [lesion.centre_xyz - half, lesion.centre_xyz + half])]
