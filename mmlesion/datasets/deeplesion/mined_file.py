# Copyright (c) mmlesion contributors. All rights reserved.
"""The file of mined annotations that LENS's retraining reads (Sec. III,
step 4).

JSON::

    {"metainfo": {"format": "mmlesion.lens_mined/1", "iou_thr": 0.5,
                  "dist_thr": 0.15, "score_thr": 0.5, "counts": {...}},
     "slices": [{"series_dir": "000001_01_01",   # folder under Images_png
                 "slice": 12,                      # slice index (012.png)
                 "mined": [[x1, y1, x2, y2], ...], # extra ground truth
                 "mined_sources": ["propagation", ...],
                 "uncertain": [[x1, y1, x2, y2], ...],  # ignored regions
                 "uncertain_scores": [0.7, ...]}, ...]}

Boxes are 0-based pixel x1y1x2y2 of the original slice, as
:class:`~mmlesion.datasets.DeepLesionDataset`'s instances. A listed slice
with neither mined nor uncertain boxes is a *negative* slice (the model
found nothing there): LENS samples negatives beside the positives (2 : 1).
"""
from typing import Any, Dict, List, Sequence, TypedDict

from mmlesion.utils.writing.atomic import atomic_write_json
from ..volumes.annotation_file import read_json_file, refuse_existing

FORMAT = 'mmlesion.lens_mined/1'


class MinedSlice(TypedDict):
    """A slice entry of the file as read (module doc)."""
    series_dir: str
    slice: int
    mined: List[List[float]]
    mined_sources: List[str]
    uncertain: List[List[float]]


class MinedFile(TypedDict):
    """The file as read: ``metainfo`` (format, thresholds, counts) and
    its validated ``slices``."""
    metainfo: Dict[str, Any]
    slices: List[MinedSlice]


def write_mined_file(path: str,
                     slices: Sequence[dict],
                     metainfo: dict,
                     overwrite: bool = False) -> None:
    """Write the file (refuses to replace one without ``overwrite``).

    Args:
        path (str): output JSON path.
        slices (Sequence[dict]): entries as in the module doc.
        metainfo (dict): thresholds and counts.
        overwrite (bool): replace an existing file.
    """
    refuse_existing(path, overwrite)
    meta = dict(metainfo, format=FORMAT)
    atomic_write_json(path, dict(metainfo=meta, slices=list(slices)))


def _check_boxes(path: str, i: int, key: str, boxes) -> List[List[float]]:
    if not isinstance(boxes, list):
        raise ValueError(f'{path}: slices[{i}].{key} must be a list')
    for j, b in enumerate(boxes):
        if (not isinstance(b, (list, tuple)) or len(b) != 4
                or not all(isinstance(v, (int, float)) for v in b)
                or b[2] <= b[0] or b[3] <= b[1]):
            raise ValueError(
                f'{path}: slices[{i}].{key}[{j}] = {b!r} is not a box '
                '[x1, y1, x2, y2] with x2 > x1 and y2 > y1')
    return [list(map(float, b)) for b in boxes]


def read_mined_file(path: str) -> MinedFile:
    """Read and validate the file.

    Returns:
        MinedFile: ``metainfo`` and the ``slices``.

    Raises:
        FileNotFoundError / ValueError: naming the file, entry and field.
    """
    data = read_json_file(path, f'mined annotation file not found: {path}')
    if not isinstance(data, dict) or data.get('metainfo', {}).get(
            'format') != FORMAT:
        raise ValueError(f'{path}: not a {FORMAT} file '
                         '(tools/lens_mine_annotations.py writes them)')
    out = []
    for i, s in enumerate(data.get('slices', [])):
        for key in ('series_dir', 'slice'):
            if key not in s:
                raise ValueError(f"{path}: slices[{i}] has no '{key}'")
        if not isinstance(s['slice'], int) or s['slice'] < 0:
            raise ValueError(f"{path}: slices[{i}].slice = {s['slice']!r} "
                             'is not a slice index')
        mined = _check_boxes(path, i, 'mined', s.get('mined', []))
        unc = _check_boxes(path, i, 'uncertain', s.get('uncertain', []))
        sources = s.get('mined_sources', ['mined'] * len(mined))
        if len(sources) != len(mined):
            raise ValueError(f'{path}: slices[{i}]: {len(sources)} '
                             f'mined_sources for {len(mined)} mined boxes')
        out.append(MinedSlice(
            series_dir=str(s['series_dir']), slice=int(s['slice']),
            mined=mined, mined_sources=list(sources), uncertain=unc))
    return MinedFile(metainfo=data['metainfo'], slices=out)
