# Copyright (c) mmlesion contributors. All rights reserved.
"""The DICOM instances a scan's DICOM results reference
(:func:`read_source_instances`: one per slice of the scan that was read,
or a refusal naming the files), and how a reader names their series
(:func:`series_names`).
"""
import logging
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
from mmengine.logging import print_log

from mmlesion.datasets.volumes import CTVolume

#: Study-level UIDs a DICOM result cannot be written without.
REQUIRED_UIDS = ('StudyInstanceUID', 'SeriesInstanceUID',
                 'FrameOfReferenceUID')


#: Type 2 attributes of the Patient and General Study modules (PS3.3
#: C.7.1.1, C.7.2.1) that highdicom copies from the source images into the
#: SR and SEG: a file that leaves one out gets it empty.
TYPE_2_COPIED = ('PatientName', 'PatientID', 'PatientBirthDate',
                 'PatientSex', 'StudyDate', 'StudyTime',
                 'ReferringPhysicianName', 'StudyID', 'AccessionNumber')


class DicomResultsError(ValueError):
    """The source series cannot be referenced safely."""


def is_blank(ds, key: str) -> bool:
    """Whether a data set leaves ``key`` out or blank."""
    return not str(ds.get(key, '') or '').strip()


@dataclass(frozen=True)
class SeriesNames:
    """How a reader names a DICOM series beside its UID
    (:func:`series_names`).

    Args:
        description (str, optional): its Series Description (0008,103E).
        number (int, optional): its Series Number (0020,0011).
    """
    description: Optional[str] = None
    number: Optional[int] = None


def series_names(scan: Optional[str], series_uid: str) -> SeriesNames:
    """The Series Description and Number of a scan read from DICOM (a
    series folder or a file), from the header of the series' first file;
    none for another scan or where the files leave them blank.

    Args:
        scan (str, optional): the scan's path.
        series_uid (str): the series read (of a folder with several).

    Returns:
        SeriesNames: the names found.
    """
    import pydicom
    import SimpleITK as sitk
    from pydicom.errors import InvalidDicomError
    if not scan or not (osp.isdir(scan) or scan.lower().endswith('.dcm')):
        return SeriesNames()
    files = (sitk.ImageSeriesReader.GetGDCMSeriesFileNames(scan, series_uid)
             or sitk.ImageSeriesReader.GetGDCMSeriesFileNames(scan)
             if osp.isdir(scan) else [scan])
    try:
        ds = pydicom.dcmread(files[0], stop_before_pixels=True,
                             specific_tags=['SeriesDescription',
                                            'SeriesNumber'])
    except (IndexError, OSError, InvalidDicomError):
        return SeriesNames()
    number = ds.get('SeriesNumber')
    return SeriesNames(
        str(ds.get('SeriesDescription') or '').strip() or None,
        None if number in (None, '') else int(number))


def read_source_instances(volume: CTVolume) -> List:
    """The scan's DICOM data sets (no pixel data), one per slice, by slice.

    A blank SOP Class / Instance UID is taken from the file meta (which
    PS3.10 requires to equal it), with a warning.

    Args:
        volume (CTVolume): the scan as read by
            :func:`~mmlesion.datasets.volumes.load_ct_volume` from a DICOM
            folder.

    Returns:
        list[pydicom.Dataset]: ``out[z]`` is the instance of slice ``z``.

    Raises:
        DicomResultsError: missing study/series/frame-of-reference UIDs,
            mixed UIDs, or instances that are not one per slice of the
            scan that was read; the message names attributes and files.
    """
    import pydicom
    import SimpleITK as sitk
    folder = str(volume.meta['path'])
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(
        folder, volume.meta.get('series_uid') or '')
    datasets, repaired, missing, absent = [], [], {}, {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        meta = getattr(ds, 'file_meta', None)
        for key, meta_key in (('SOPClassUID', 'MediaStorageSOPClassUID'),
                              ('SOPInstanceUID',
                               'MediaStorageSOPInstanceUID')):
            if is_blank(ds, key):
                if meta is None or is_blank(meta, meta_key):
                    missing.setdefault(key, []).append(path)
                else:
                    setattr(ds, key, str(meta.get(meta_key)))
                    repaired.append((key, path))
        for key in REQUIRED_UIDS:
            if is_blank(ds, key):
                missing.setdefault(key, []).append(path)
        for key in TYPE_2_COPIED:  # left out: present and empty, as allowed
            if key not in ds:
                setattr(ds, key, '')
                absent.setdefault(key, path)
        ds.filename = path
        datasets.append(ds)
    if missing:
        names = '; '.join(
            f'{k} in {len(v)} of {len(files)} files (e.g. '
            f'{osp.basename(v[0])})' for k, v in missing.items())
        raise DicomResultsError(
            f'{folder}: cannot write DICOM results: the series lacks {names}'
            '. An SR or SEG must reference the images by the study, series '
            'and frame of reference they belong to; made-up UIDs would '
            'reference images no archive holds')
    if repaired:  # counted in files, not attribute x file
        keys = sorted({k for k, _ in repaired})
        paths = list(dict.fromkeys(p for _, p in repaired))
        print_log(
            f'{folder}: {", ".join(keys)} blank in {len(paths)} of '
            f'{len(files)} files (e.g. {osp.basename(paths[0])}); the DICOM '
            'results use the file meta (Media Storage SOP Class / Instance '
            'UID) instead', logger='current', level=logging.WARNING)
    if absent:
        example = osp.basename(next(iter(absent.values())))
        print_log(
            f'{folder}: {", ".join(absent)} (type 2: present, maybe empty) '
            f'left out of the files (e.g. {example}); the DICOM results '
            'carry them empty', logger='current', level=logging.WARNING)
    for key in REQUIRED_UIDS:
        values = {str(ds.get(key)) for ds in datasets}
        if len(values) > 1:
            raise DicomResultsError(
                f'{folder}: the series mixes {len(values)} values of {key}; '
                'cannot reference it as one series')
    uids = [str(ds.SOPInstanceUID) for ds in datasets]
    if len(set(uids)) != len(uids):
        raise DicomResultsError(f'{folder}: repeated SOPInstanceUIDs; the '
                                'images cannot be referenced unambiguously')
    return _order_by_slice(datasets, volume, folder)


def _order_by_slice(datasets: list, volume: CTVolume, folder: str) -> list:
    depth, height, width = volume.shape_zyx
    by_z = [None] * depth
    for ds in datasets:
        name = osp.basename(ds.filename)
        try:
            pos = np.array([float(v) for v in ds.ImagePositionPatient])
            rows, cols = int(ds.Rows), int(ds.Columns)
        except (AttributeError, TypeError, ValueError):
            raise DicomResultsError(
                f'{folder}/{name}: no usable ImagePositionPatient, Rows or '
                'Columns')
        z = volume.world_to_voxel(pos)[0, 0]
        k = int(round(z))
        if (abs(z - k) > .05 or not 0 <= k < depth or by_z[k] is not None
                or {rows, cols} != {height, width}):
            raise DicomResultsError(
                f'{folder}/{name}: this instance (position {pos.tolist()}, '
                f'{rows} x {cols}) is not one slice of the scan that was '
                f'read ({depth} slices of {height} x {width}); not writing '
                'DICOM results that could reference the wrong images')
        by_z[k] = ds
    if any(ds is None for ds in by_z):
        raise DicomResultsError(
            f'{folder}: {sum(d is None for d in by_z)} slices of the scan '
            'have no DICOM instance')
    return by_z
