# Copyright (c) mmlesion contributors. All rights reserved.
"""The hard-region file of Anchor Based Sampling (3D Aggregated Faster
R-CNN, Sec. IV-C).

``tools/analysis_tools/find_hard_regions.py`` writes it after a training
round; :class:`~mmlesion.datasets.transforms.HardRegionRandomCrop3D` reads it
in the next round. Format (JSON)::

    {"metainfo": {"format": "mmlesion.hard_regions", "version": 1,
                  "kinds": ["hard_negative", "hard_positive"],
                  "config": ..., "checkpoint": ..., "fp_score_thr": ...,
                  ...},   # free provenance keys
     "scans": [
       {"id": str,                      # img_id of the CTVolumeDataset
        "series_uid": str or null,
        "img_path": str,
        "shape_zyx": [3], "spacing_zyx": [3], "origin_xyz": [3],
        "direction": [9],               # the volume the model ran on
        "regions": [
          {"kind": "hard_negative" | "hard_positive",
           "score": float,              # a hard positive's: the best of
                                        # the detections hitting it
           "center_world": [x, y, z],   # mm, SimpleITK / LPS
           "center_voxel_zyx": [z, y, x],  # continuous voxel index in the
                                           # geometry above
           "diameter_mm": float}]}]}

Every processed scan is listed, also those without hard regions. The
sampler places crops from ``center_world`` and the geometry of the volume
it is given; ``center_voxel_zyx`` is informative.
"""
from typing import Any, Dict, List, Optional, TypedDict

from mmlesion.utils.writing.atomic import atomic_write_json
from .annotation_file import (check_geometry, check_numbers,
                              checked_entries, read_json_file,
                              refuse_existing)

HARD_REGION_FORMAT = 'mmlesion.hard_regions'
HARD_REGION_VERSION = 1
#: Fig. 5 of the paper: false positives (hard negatives) and missed or
#: poorly scored nodules (hard positives).
HARD_REGION_KINDS = ('hard_negative', 'hard_positive')


class HardRegion(TypedDict):
    """A region of a scan entry (module doc)."""
    kind: str
    score: float
    center_world: List[float]
    center_voxel_zyx: List[float]
    diameter_mm: float


class HardRegionScan(TypedDict):
    """A scan entry of the file (module doc)."""
    id: str
    series_uid: Optional[str]
    img_path: str
    shape_zyx: List[int]
    spacing_zyx: List[float]
    origin_xyz: List[float]
    direction: List[float]
    regions: List[HardRegion]


class HardRegionFile(TypedDict):
    """A hard-region file as read (module doc): ``metainfo`` (format,
    version, kinds and free provenance keys) and ``scans``."""
    metainfo: Dict[str, Any]
    scans: List[HardRegionScan]


def validate_hard_regions(data: Any, path: str = '<hard regions>') -> None:
    """Check a loaded hard-region file.

    Args:
        data (Any): the parsed JSON.
        path (str): the file, for the messages.

    Raises:
        ValueError: naming the file, the scan (index and id), the region
            index and the field of the first problem.
    """
    if not isinstance(data, dict) or not isinstance(
            data.get('metainfo'), dict) or 'scans' not in data:
        raise ValueError(f'{path}: expected an object with "metainfo" and '
                         f'"scans" (mmlesion hard-region file)')
    meta = data['metainfo']
    if meta.get('format') != HARD_REGION_FORMAT:
        raise ValueError(f'{path}: metainfo.format must be '
                         f'{HARD_REGION_FORMAT!r}, got {meta.get("format")!r}')
    if meta.get('version') != HARD_REGION_VERSION:
        raise ValueError(f'{path}: metainfo.version {meta.get("version")!r} '
                         f'is not supported (expected {HARD_REGION_VERSION})')
    for where, scan in checked_entries(
            data, 'scans', path,
        ('id', 'regions', 'spacing_zyx', 'origin_xyz', 'direction')):
        if not isinstance(scan['id'], str):
            raise ValueError(f'{where}, field "id": expected a string')
        check_geometry(where, scan)
        if not isinstance(scan['regions'], list):
            raise ValueError(f'{where}, field "regions": expected a list')
        for j, reg in enumerate(scan['regions']):
            rw = f'{where}, regions[{j}]'
            if not isinstance(reg, dict):
                raise ValueError(f'{rw}: expected an object')
            if reg.get('kind') not in HARD_REGION_KINDS:
                raise ValueError(f'{rw}, field "kind": expected one of '
                                 f'{list(HARD_REGION_KINDS)}, got '
                                 f'{reg.get("kind")!r}')
            check_numbers(f'{rw}, field "center_world"',
                          reg.get('center_world'), 3)
            check_numbers(f'{rw}, field "center_voxel_zyx"',
                          reg.get('center_voxel_zyx'), 3)
            check_numbers(f'{rw}, field "score"', [reg.get('score')], 1)
            if not 0.0 <= reg['score'] <= 1.0:
                raise ValueError(f'{rw}, field "score": expected a '
                                 f'probability in [0, 1], got '
                                 f'{reg["score"]!r}')
            check_numbers(f'{rw}, field "diameter_mm"',
                          [reg.get('diameter_mm')], 1)


def dump_hard_regions(path: str,
                      scans: List[HardRegionScan],
                      overwrite: bool = False,
                      **metainfo: Any) -> None:
    """Write a hard-region file (validated first).

    Args:
        path (str): output JSON.
        scans (list[dict]): scan entries (see the module doc).
        overwrite (bool): replace an existing file. Defaults to False.
        **metainfo: provenance (config, checkpoint, thresholds, ...).

    Raises:
        FileExistsError: if ``path`` exists and not ``overwrite``.
    """
    refuse_existing(path, overwrite)
    meta = dict(format=HARD_REGION_FORMAT, version=HARD_REGION_VERSION,
                kinds=list(HARD_REGION_KINDS))
    meta.update(metainfo)
    data = dict(metainfo=meta, scans=scans)
    validate_hard_regions(data, path)
    atomic_write_json(path, data, indent=1)


def load_hard_regions(path: str) -> HardRegionFile:
    """Read and validate a hard-region file.

    Args:
        path (str): the JSON.

    Returns:
        HardRegionFile: ``metainfo`` and ``scans`` as in the file.
    """
    data = read_json_file(
        path, f'Hard-region file not found: {path} (write it with '
        'tools/analysis_tools/find_hard_regions.py after a training round)')
    validate_hard_regions(data, path)
    return data


def index_hard_regions(data: HardRegionFile) -> Dict[str, HardRegionScan]:
    """Scan entries by ``id`` and by ``series_uid``.

    Args:
        data (dict): a loaded hard-region file.

    Returns:
        dict: key -> scan entry (ids first; a series UID never shadows an
        id).
    """
    index: Dict[str, HardRegionScan] = {}
    for scan in data['scans']:
        uid: Optional[str] = scan.get('series_uid')
        if uid:
            index.setdefault(str(uid), scan)
    for scan in data['scans']:
        index[scan['id']] = scan
    return index
