# Copyright (c) mmlesion contributors. All rights reserved.
"""The common 3D annotation file (JSON) of mmlesion's volume datasets.

Every dataset converter writes it and
:class:`~mmlesion.datasets.CTVolumeDataset` reads it; ``data/README.md``
("The annotation file") shows its layout. Boxes are in SimpleITK's
continuous index of the volume as
:func:`~mmlesion.datasets.volumes.load_ct_volume` returns it
(:mod:`mmlesion.datasets.volumes.ct_volume`); extra keys are allowed and
kept.
"""
import json
import math
import os.path as osp
from dataclasses import dataclass
from typing import (Any, Dict, Iterator, List, Optional, Sequence, Tuple,
                    TypedDict)

import numpy as np

from mmlesion.utils.input_files import MAX_WORLD_MM
from mmlesion.utils.writing.atomic import atomic_write_text

from .ct_volume import CTVolume
from .checks.files import is_file_of
from .scan_switches import ScanChecks

#: Value of ``metainfo.box_format``.
BOX_FORMAT = 'x1y1z1x2y2z2_voxel'
#: A volume's ``split`` codes (``Train_Val_Test``) and their names.
SPLIT_NAMES = {1: 'train', 2: 'val', 3: 'test'}


class LesionEntry(TypedDict, total=False):
    """An entry of a volume's ``annotations`` (``data/README.md``): the
    first five keys always, the converters' 2D export keys where they
    wrote them (extra keys are kept)."""
    bbox: List[float]
    center_world: List[float]
    diameter_mm: float
    label: int
    ignore: bool
    key_slice: int
    slice_boxes: Dict[int, List[float]]


class VolumeEntry(TypedDict):
    """An entry of the file's ``volumes`` (``data/README.md``; extra keys,
    e.g. ``split``, are kept)."""
    id: str
    file: str
    series_uid: Optional[str]
    shape_zyx: List[int]
    spacing_zyx: List[float]
    origin_xyz: List[float]
    direction: List[float]
    annotations: List[LesionEntry]


def box_from_world_sphere(volume: CTVolume, center_xyz: Sequence[float],
                          diameter_mm: float) -> List[float]:
    """The voxel box ``[x1, y1, z1, x2, y2, z2]`` of a sphere given in mm.

    Args:
        volume (CTVolume): the volume (only its geometry is used).
        center_xyz (sequence[float]): world centre (x, y, z) mm.
        diameter_mm (float): diameter (> 0) in mm.

    Returns:
        list[float]: the box centred on the voxel position of the centre,
        of extent ``diameter / spacing`` voxels along each axis.
    """
    c_zyx = volume.world_to_voxel(np.asarray(center_xyz, dtype=float))[0]
    half = 0.5 * float(diameter_mm) / np.asarray(volume.spacing_zyx)
    lo, hi = (c_zyx - half)[::-1], (c_zyx + half)[::-1]
    return [float(v) for v in np.concatenate([lo, hi])]


def box_center_world(volume: CTVolume, bbox: Sequence[float]) -> List[float]:
    """World centre (x, y, z) mm of a voxel box ``[x1, y1, z1, x2, y2, z2]``."""
    b = np.asarray(bbox, dtype=float)
    centre_zyx = ((b[:3] + b[3:]) / 2)[::-1]
    return [float(v) for v in volume.voxel_to_world(centre_zyx)[0]]


def volume_entry(volume: CTVolume,
                 volume_id: str,
                 file: str,
                 annotations: List[LesionEntry],
                 **extra: Any) -> VolumeEntry:
    """One entry of ``volumes`` with the volume's geometry.

    Args:
        volume (CTVolume): as :func:`load_ct_volume` returned it.
        volume_id (str): unique id of the scan.
        file (str): path of the scan, relative to the JSON's folder or
            absolute.
        annotations (list[dict]): ``bbox``, ``center_world``,
            ``diameter_mm``, ``label``, ``ignore`` each.
        **extra: more keys of the entry (kept by the reader).

    Returns:
        VolumeEntry: the entry.
    """
    entry = VolumeEntry(
        id=str(volume_id),
        file=str(file),
        series_uid=volume.series_uid,
        shape_zyx=list(volume.shape_zyx),
        spacing_zyx=[float(v) for v in volume.spacing_zyx],
        origin_xyz=[float(v) for v in volume.origin_xyz],
        direction=[float(v) for v in volume.direction.ravel()],
        annotations=annotations)
    entry.update(extra)
    return entry


def refuse_existing(path: str, overwrite: bool) -> None:
    """Refuse to replace an existing output file without ``overwrite``.

    Raises:
        FileExistsError: if ``path`` exists and not ``overwrite``.
    """
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass --overwrite '
                              f'(overwrite=True) to replace it')


def write_annotation_file(path: str,
                          dataset: str,
                          classes: Sequence[str],
                          volumes: List[dict],
                          overwrite: bool = False,
                          **metainfo: Any) -> None:
    """Write the common annotation file (validated first).

    Args:
        path (str): output JSON.
        dataset (str): ``metainfo.dataset``.
        classes (sequence[str]): ``metainfo.classes``.
        volumes (list[dict]): entries (see :func:`volume_entry`).
        overwrite (bool): replace an existing file. Defaults to False.
        **metainfo: more ``metainfo`` keys.

    Raises:
        FileExistsError: if ``path`` exists and not ``overwrite``.
    """
    refuse_existing(path, overwrite)
    data = dict(
        metainfo=dict(
            dataset=dataset,
            classes=list(classes),
            box_format=BOX_FORMAT,
            **metainfo),
        volumes=volumes)
    validate_annotation_data(data, path)
    atomic_write_text(path, json.dumps(data, indent=1))


def check_numbers(where: str, value: Any, n: int, positive: bool = False):
    """Refuse ``value`` unless it is ``n`` finite (where asked, positive)
    numbers; the error names ``where``."""
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ValueError(f'{where}: expected a list of {n} numbers, got '
                         f'{value!r}')
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                not math.isfinite(v) or (positive and v <= 0):
            raise ValueError(f'{where}: expected {n} finite '
                             f'{"positive " if positive else ""}numbers, '
                             f'got {value!r}')


def checked_entries(data: dict, key: str, path: str, keys: Sequence[str]
                    ) -> Iterator[Tuple[str, dict]]:
    """The entries of the list ``data[key]`` of a file, each checked to be
    an object with ``keys`` and an ``id`` no other has, with where it is
    (file, index and id) for the messages."""
    if not isinstance(data[key], list):
        raise ValueError(f'{path}: "{key}" must be a list')
    seen = set()
    for i, entry in enumerate(data[key]):
        check_entry(f'{path}: {key}[{i}]', entry, keys)
        where = f'{path}: {key}[{i}] (id {entry["id"]!r})'
        if entry['id'] in seen:
            raise ValueError(f'{where}, field "id": duplicated id (ids '
                             f'must be unique)')
        seen.add(entry['id'])
        yield where, entry


def check_entry(where: str, entry: Any, keys: Sequence[str]) -> None:
    """Refuse an entry that is no object or lacks one of ``keys``."""
    if not isinstance(entry, dict):
        raise ValueError(f'{where}: expected an object')
    for key in keys:
        if key not in entry:
            raise ValueError(f'{where}: missing field "{key}"')


def check_geometry(where: str, entry: dict) -> None:
    """Refuse an entry whose ``spacing_zyx``, ``origin_xyz`` or
    ``direction`` are not 3 positive, 3 and 9 finite numbers."""
    check_numbers(f'{where}, field "spacing_zyx"', entry['spacing_zyx'], 3,
                  True)
    check_numbers(f'{where}, field "origin_xyz"', entry['origin_xyz'], 3)
    check_numbers(f'{where}, field "direction"', entry['direction'], 9)


def validate_annotation_data(data: Any, path: str = '<annotations>') -> None:
    """Check the structure of a loaded annotation file.

    Raises:
        ValueError: naming the file, the volume (index and id), the
            annotation index and the field of the first problem.
    """
    if not isinstance(data, dict) or 'volumes' not in data or \
            'metainfo' not in data:
        raise ValueError(f'{path}: expected an object with "metainfo" and '
                         f'"volumes" (mmlesion volume annotation file)')
    meta = data['metainfo']
    classes = meta.get('classes') if isinstance(meta, dict) else None
    if not isinstance(classes, list) or not classes or not all(
            isinstance(c, str) for c in classes):
        raise ValueError(f'{path}: metainfo.classes must be a non-empty '
                         f'list of names, got {classes!r}')
    if meta.get('box_format', BOX_FORMAT) != BOX_FORMAT:
        raise ValueError(f'{path}: metainfo.box_format must be '
                         f'{BOX_FORMAT!r}, got {meta["box_format"]!r}')
    for where, vol in checked_entries(
            data, 'volumes', path,
        ('id', 'file', 'shape_zyx', 'spacing_zyx', 'origin_xyz', 'direction',
         'annotations')):
        if not isinstance(vol['file'], str) or not vol['file']:
            raise ValueError(f'{where}, field "file": expected a path')
        check_numbers(f'{where}, field "shape_zyx"', vol['shape_zyx'], 3,
                      True)
        check_geometry(where, vol)
        if not isinstance(vol['annotations'], list):
            raise ValueError(f'{where}, field "annotations": expected a list')
        for j, ann in enumerate(vol['annotations']):
            aw = f'{where}, annotations[{j}]'
            if not isinstance(ann, dict) or 'bbox' not in ann:
                raise ValueError(f'{aw}: expected an object with "bbox"')
            check_numbers(f'{aw}, field "bbox"', ann['bbox'], 6)
            b = ann['bbox']
            if not all(b[k + 3] > b[k] for k in range(3)):
                raise ValueError(f'{aw}, field "bbox": x2 > x1, y2 > y1 and '
                                 f'z2 > z1 needed, got {b}')
            # must overlap the volume, and may stick out by at most its
            # size (a box cut at the border); more is a wrong coordinate
            size_xyz = vol['shape_zyx'][::-1]
            if not all(b[k] < size_xyz[k] and b[k + 3] > 0
                       and -size_xyz[k] <= b[k] and b[k + 3] <= 2 *
                       size_xyz[k] for k in range(3)):
                raise ValueError(
                    f'{aw}, field "bbox": {b} (x1, y1, z1, x2, y2, z2 '
                    'voxels) lies outside the volume of shape (z, y, x) '
                    f'{vol["shape_zyx"]}')
            label = ann.get('label', 0)
            if isinstance(label, bool) or not isinstance(label, int) or \
                    not 0 <= label < len(classes):
                raise ValueError(f'{aw}, field "label": expected an index '
                                 f'into {classes}, got {label!r}')
            if not isinstance(ann.get('ignore', False), bool):
                raise ValueError(f'{aw}, field "ignore": expected true or '
                                 f'false, got {ann["ignore"]!r}')
            if 'center_world' in ann:
                check_numbers(f'{aw}, field "center_world"',
                              ann['center_world'], 3)
                if max(map(abs, ann['center_world'])) > MAX_WORLD_MM:
                    raise ValueError(
                        f'{aw}, field "center_world": '
                        f'{ann["center_world"]} mm is farther than '
                        f'{MAX_WORLD_MM:g} mm from the scanner origin')
            d = ann.get('diameter_mm', -1)
            if isinstance(d, bool) or not isinstance(
                    d, (int, float)) or not math.isfinite(d):
                raise ValueError(f'{aw}, field "diameter_mm": expected a '
                                 f'number, got {d!r}')


@dataclass
class AnnotationFile:
    """A validated common annotation file.

    Args:
        metainfo (dict): its ``metainfo`` (``dataset``, ``classes``, ...).
        volumes (list[dict]): its volume entries (:func:`volume_entry`).
    """
    metainfo: Dict[str, Any]
    volumes: List[dict]

    def to_dict(self) -> dict:
        """The file's JSON."""
        return dict(metainfo=self.metainfo, volumes=self.volumes)


def load_annotation_file(path: str) -> AnnotationFile:
    """Read and validate the common annotation file.

    Args:
        path (str): the JSON.

    Returns:
        AnnotationFile: ``metainfo`` and ``volumes`` as in the file.
    """
    data = read_json_file(path,
                          f'Volume annotation file not found: {path}')
    validate_annotation_data(data, path)
    return AnnotationFile(data['metainfo'], data['volumes'])


def read_json_file(path: str, missing: str) -> Any:
    """The JSON of ``path``, refused with ``FileNotFoundError(missing)``
    where there is no file, with ``ValueError`` where it is no JSON."""
    if not osp.isfile(path):
        raise FileNotFoundError(missing)
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f'{path}: not valid JSON ({err})') from err


def resolve_volume_file(ann_path: str,
                        file: str,
                        root: Optional[str] = None,
                        allow_outside: Optional[bool] = None,
                        data_root: Optional[str] = None) -> str:
    """Absolute path of a volume's ``file``, confined to the data root.

    Args:
        ann_path (str): the annotation file (named in errors).
        file (str): the volume's ``file`` field.
        root (str, optional): the data root the path is relative to;
            default: the folder of the annotation file.
        allow_outside (bool, optional): accept a path outside the data root
            (links resolved). None: :class:`ScanChecks`' default.
        data_root (str, optional): the folder scans must lie in; default:
            the folder relative paths start from.

    Returns:
        str: the path.

    Raises:
        ValueError: the path leaves the data root, naming the file.
    """
    base = root if root else osp.dirname(osp.abspath(ann_path))
    full = file if osp.isabs(file) else osp.join(base, file)
    if allow_outside is None:
        allow_outside = ScanChecks().allow_outside_data
    confine = data_root or base
    if not allow_outside and not is_file_of(full, confine):
        raise ValueError(
            f'{ann_path}: scan path {file!r} lies outside the data root '
            f'{confine}; refusing to read it (set the dataset\'s data_root '
            'to a folder that holds the scans and the annotation file; for '
            "a converter's annotation file, convert again with --out in a "
            'folder above the scans, e.g. DIR/volumes.json for scans in '
            'DIR/images; or '
            "pass --allow-outside-data / the dataset's "
            'scan_checks=dict(allow_outside_data=True) if that is '
            'intended)')
    return full
