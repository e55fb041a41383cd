# Copyright (c) mmlesion contributors. All rights reserved.
"""DICOM CT where GDCM alone reads wrong values or a wrong geometry.

HU = stored value x RescaleSlope + RescaleIntercept, whatever the
PhotometricInterpretation (PS3.3 C.11.1.1.2; MONOCHROME1 only inverts the
display), and each slice or frame lies where its ImagePositionPatient
says. GDCM (through SimpleITK) gets a plain single-frame series right,
but it inverts MONOCHROME1 values before the rescale, reads padding as
tissue and stacks the frames of an enhanced multi-frame image in stored
order at one spacing; those are read here with pydicom's help
(:mod:`~.checks.dicom_values`), and so are a folder of several series and
the root of an export with a DICOMDIR.
"""
import logging
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import SimpleITK as sitk
from mmengine.logging import print_log

from .checks.dicom import (MONOCHROME, SeriesGeometry, check_stack,
                           int_tag, tag_text)
from .checks.dicom_values import (check_lowest_hu, check_no_modality_lut,
                                  check_rescale_type, padding_of_hu,
                                  padding_range, pydicom_hu, require_pydicom)
from .checks.enhanced_dicom import enhanced_headers
from .checks.files import read_header
from .scan_switches import ScanChecks


def _frames_hu(path: str, ds, headers, fill: float):
    """(frames, rows, columns) HU of an enhanced image and where it is
    padding (None: no PixelPaddingValue)."""
    rescale = np.array([h.rescale or (1., 0.) for h in headers])
    uniform = bool(np.all(rescale == rescale[:1]))
    try:
        return pydicom_hu(path, ds, rescale, fill)
    except ValueError:
        if not (uniform and headers[0].photometric == 'MONOCHROME2'
                and not headers[0].padding):
            raise
        # GDCM decodes more codecs; its one rescale is right here
        return sitk.GetArrayFromImage(sitk.ReadImage(path)).reshape(
            (len(headers), ) + headers[0].size), None


def _check_values(source: str, names: Sequence[str], headers,
                  hu: np.ndarray, padding: Optional[np.ndarray]) -> None:
    """RescaleType HU and no value below air in the field
    (:mod:`~.checks.dicom_values`)."""
    for name, header in zip(names, headers):
        check_rescale_type(source, header.rescale_type, f'{name}: ')
    check_lowest_hu(source, names, hu, padding)


class EnhancedFrames(NamedTuple):
    """The frames of an enhanced DICOM file sorted along the normal as an
    image, and their geometry."""
    image: sitk.Image
    geometry: SeriesGeometry


def read_enhanced(path: str, checks: Optional[ScanChecks] = None,
                  fill: float = -1024.
                  ) -> Optional[EnhancedFrames]:
    """Read an enhanced multi-frame image frame by frame.

    Args:
        path (str): a DICOM file.
        checks (ScanChecks, optional): ``resample_nonuniform``: interpolate
            unevenly spaced frames onto a uniform grid (the caller does it
            with ``problems``) instead of raising; ``force_ct``: values
            that are not HU read anyway.
        fill (float): HU of the padding pixels.

    Returns:
        tuple | None: the frames sorted along the normal as an image
        (spacing: PixelSpacing and the mean frame step; origin: the first
        frame's position; direction: row, column, normal) and their
        geometry; None where the file has no per-frame functional groups.

    Raises:
        ValueError: as :func:`~.checks.dicom.check_stack` and
            :mod:`~.checks.dicom_values`, naming the file and the frames.
    """
    pydicom = require_pydicom(path, 'an enhanced multi-frame image')
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:  # pydicom raises many kinds on damaged files
        raise ValueError(f'{path}: pydicom cannot read this multi-frame '
                         f'file ({err}); it is damaged') from err
    headers = enhanced_headers(path, ds)
    if headers is None:
        return None
    checks = ScanChecks.of(checks)
    check_no_modality_lut([path], ds)
    hu, padding = _frames_hu(path, ds, headers, fill)
    names = [f'frame {f + 1}' for f in range(len(headers))]
    if not checks.force_ct:
        _check_values(path, names, headers, hu, padding)
    geometry = check_stack(path, names, headers, checks.resample_nonuniform,
                           lambda i, j: np.array_equal(hu[i], hu[j]))
    img = sitk.GetImageFromArray(np.ascontiguousarray(hu[geometry.order]))
    pos = geometry.positions
    step = float(pos[-1] - pos[0]) / (len(pos) - 1) if len(pos) > 1 else 1.
    spacing = headers[0].spacing if headers[0].spacing is not None else (1.,
                                                                         1.)
    img.SetSpacing((float(spacing[1]), float(spacing[0]), step))
    img.SetOrigin(tuple(float(v) for v in headers[geometry.order[0]].ipp))
    img.SetDirection(tuple(geometry.row_col_normal.ravel().tolist()))
    return EnhancedFrames(img, geometry)


def series_hu(img: sitk.Image, geometry: SeriesGeometry,
              checks: ScanChecks, fill: float) -> sitk.Image:
    """The series as read by GDCM with its MONOCHROME1 slices (GDCM
    inverts them before the rescale) and the slices that declare padding
    replaced by stored x slope + intercept, padding at ``fill``; its
    values checked (:mod:`~.checks.dicom_values`) unless ``force_ct``.

    Args:
        img (sitk.Image): read from ``geometry.files`` in that order.
        geometry (SeriesGeometry): its slices' headers.
        checks (ScanChecks): ``force_ct`` reads values that are not HU.
        fill (float): HU of the padding pixels.

    Returns:
        sitk.Image: ``img`` itself where no slice is replaced, else a
        float32 copy with the same geometry.
    """
    check_no_modality_lut(geometry.files)
    redo = [k for k, h in enumerate(geometry.headers)
            if h.photometric == 'MONOCHROME1' or h.padding]
    array = sitk.GetArrayViewFromImage(img)
    padding = None
    if redo:
        array = array.astype(np.float32)
        padding = np.zeros(array.shape, bool)
        pydicom = require_pydicom(geometry.files[redo[0]], 'its HU')
        for k in redo:
            path = geometry.files[k]
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            found = padding_range(ds)
            if found is not None and not found.whole_words and \
                    geometry.headers[k].photometric == 'MONOCHROME2':
                # padding BitsStored holds: found in GDCM's values
                padding[k] = padding_of_hu(array[k], found.low, found.high,
                                           geometry.rescale[k])
                array[k][padding[k]] = fill
                continue
            hu, pad = pydicom_hu(path, pydicom.dcmread(path),
                                 geometry.rescale[k:k + 1], fill)
            array[k] = hu[0]
            if pad is not None:
                padding[k] = pad[0]
    if not checks.force_ct:
        _check_values(osp.dirname(geometry.files[0]),
                      [osp.basename(f) for f in geometry.files],
                      geometry.headers, array, padding)
    if not redo:
        return img
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(img)
    return out


def warn_missing_images(folder: str, reader: sitk.ImageFileReader,
                        count: int) -> None:
    """Warn where a series' first file announces more images
    (ImagesInAcquisition (0020,1002)) than the folder holds: the others
    may lie in another folder, and only these are read."""
    announced = int_tag(reader, '0020|1002', 0)
    if announced > count:
        print_log(
            f'{folder}: ImagesInAcquisition (0020,1002) announces '
            f'{announced} images, {count} of this series are here: the '
            'others may lie in another folder (read without them)',
            logger='current', level=logging.WARNING)


def _not_a_volume(files: Sequence[str]) -> str:
    """Why a series is no CT volume ('' where it may be one)."""
    try:
        reader = read_header(files[0])
    except ValueError:
        return ''  # not left aside: the reader names what is wrong
    photometric = tag_text(reader, '0028|0004') or 'MONOCHROME2'
    samples = tag_text(reader, '0028|0002') or '1'
    if samples != '1' or photometric not in MONOCHROME:
        return (f'{photometric} {"colour" if samples != "1" else "palette"}'
                ' image, not a CT image')
    if 'LOCALIZER' in tag_text(reader, '0008|0008').upper():
        return 'a localizer (ImageType LOCALIZER)'
    if len(files) < 2 and int_tag(reader, '0028|0008', 1) < 2:
        return 'a single image'
    return ''


def choose_series(folder: str, ids: Sequence[str]) -> str:
    """The one series of a folder that can be a CT volume.

    Series that are colour or palette images (screenshots, Secondary
    Captures), localizers or single images are left aside (logged).

    Args:
        folder (str): the folder.
        ids (sequence[str]): GDCM's series ids there (several).

    Returns:
        str: the series id.

    Raises:
        ValueError: naming every series and what it is, where none or
            several may be a CT volume.
    """
    why = {
        uid: _not_a_volume(
            sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid))
        for uid in ids
    }
    volumes = [uid for uid in ids if not why[uid]]
    if len(volumes) == 1:
        print_log(
            f'{folder}: read DICOM series {volumes[0]}; left aside: ' +
            '; '.join(f'{uid} ({why[uid]})' for uid in ids if why[uid]),
            logger='current', level=logging.WARNING)
        return volumes[0]
    listed = ', '.join(f'{uid}' + (f' ({why[uid]})' if why[uid] else '')
                       for uid in ids)
    raise ValueError(
        f'{folder}: {len(ids)} DICOM series in this folder, name one with '
        f'series_uid: {list(ids)}: {listed}')


@dataclass
class DicomdirSeries:
    """One series a DICOMDIR lists.

    Args:
        uid (str): SeriesInstanceUID.
        modality (str): Modality of its series record.
        folders (list[str]): the folders its files lie in.
        files (list[str]): its files.
    """
    uid: str
    modality: str
    folders: List[str]
    files: List[str]


def dicomdir_series(folder: str) -> Optional[List[DicomdirSeries]]:
    """The series the DICOMDIR of an export's root lists.

    Args:
        folder (str): a folder.

    Returns:
        list[DicomdirSeries] | None: None where it has no DICOMDIR file.

    Raises:
        ValueError: naming the DICOMDIR where pydicom cannot read it.
    """
    name = next((n for n in os.listdir(folder) if n.upper() == 'DICOMDIR'
                 and osp.isfile(osp.join(folder, n))), None)
    if name is None:
        return None
    path = osp.join(folder, name)
    pydicom = require_pydicom(path, 'a DICOMDIR')
    from pydicom.fileset import FileSet  # not imported by ``import pydicom``
    try:
        fileset = FileSet(pydicom.dcmread(path))
    except Exception as err:  # pydicom raises many kinds on damaged files
        raise ValueError(
            f'{path}: cannot be read as a DICOMDIR ({err}); give the folder '
            'of one series instead') from err
    series: Dict[str, DicomdirSeries] = {}
    for instance in fileset:
        uid = str(instance.SeriesInstanceUID)
        modality = str(getattr(instance, 'Modality', ''))
        entry = series.setdefault(uid, DicomdirSeries(uid, modality, [], []))
        where = osp.dirname(instance.path)
        if where not in entry.folders:
            entry.folders.append(where)
        entry.files.append(instance.path)
    return list(series.values())


def dicomdir_pick(folder: str, series: Sequence[DicomdirSeries],
                  series_uid: Optional[str]) -> DicomdirSeries:
    """The series to read from an export's root.

    Args:
        folder (str): the root (holding the DICOMDIR).
        series (sequence[DicomdirSeries]): what its DICOMDIR lists.
        series_uid (str, optional): the series asked for.

    Returns:
        DicomdirSeries: the series asked for, or the only one that may be
        a CT volume (localizers, colour and single images left aside);
        its files may lie in several folders.

    Raises:
        ValueError: naming each series, its folders and what it is, where
            the choice is not clear.
    """
    why = {s.uid: _not_a_volume(s.files) for s in series}
    pick = [s for s in series if series_uid == s.uid] if series_uid else [
        s for s in series if not why[s.uid]]
    if len(pick) == 1:
        return pick[0]
    listed = '; '.join(
        f'{", ".join(s.folders)} ({s.modality or "?"}, {len(s.files)} '
        f'images, series {s.uid}' + (f', {why[s.uid]}' if why[s.uid] else '')
        + ')' for s in series)
    asked = f'no series {series_uid!r}; ' if series_uid and not pick else ''
    raise ValueError(
        f'{folder}: the root of a DICOM export whose DICOMDIR lists '
        f'{len(series)} series: {asked}name one with series_uid '
        f'(--series-uid) or give the folder of one series: {listed}')


#: Folders above a series folder searched for its export's DICOMDIR.
_EXPORT_DEPTH = 4


def warn_part_of_export(folder: str, uid: str, count: int) -> None:
    """Warn where a DICOMDIR in a folder above ``folder`` (an export's
    root) lists more files of series ``uid`` than the ``count`` here: the
    series is split over folders, and the root reads it whole."""
    root = osp.abspath(folder)
    for _ in range(_EXPORT_DEPTH):
        root = osp.dirname(root)
        try:
            listed = dicomdir_series(root)
        except (OSError, ValueError):
            return  # unreadable: this folder is read as it is
        if listed is not None:
            entry = next((s for s in listed if s.uid == uid), None)
            if entry is not None and len(entry.files) > count:
                print_log(
                    f'{folder}: the DICOMDIR of {root} lists '
                    f'{len(entry.files)} images of series {uid} in '
                    f'{len(entry.folders)} folders, {count} are here (read '
                    f'without the others); give {root} to read them all',
                    logger='current', level=logging.WARNING)
            return


def file_hu(path: str, reader: sitk.ImageFileReader, img: sitk.Image,
            checks: ScanChecks, fill: float) -> sitk.Image:
    """A single-frame file's image as GDCM read it (``reader``: its
    header), or, where it is MONOCHROME1 (GDCM inverts it before the
    rescale) or declares padding, stored x slope + intercept with padding
    at ``fill``; its values checked (:mod:`~.checks.dicom_values`) unless
    ``force_ct``."""
    check_no_modality_lut([path])
    padding = None
    if tag_text(reader, '0028|0004') == 'MONOCHROME1' or \
            reader.HasMetaDataKey('0028|0120'):
        ds = require_pydicom(path, 'its HU').dcmread(path)
        rescale = [[float(ds.get('RescaleSlope', 1) or 1),
                    float(ds.get('RescaleIntercept', 0) or 0)]]
        hu, padding = pydicom_hu(path, ds, rescale, fill)
        out = sitk.GetImageFromArray(
            hu.reshape(sitk.GetArrayViewFromImage(img).shape))
        out.CopyInformation(img)
        img = out
    if not checks.force_ct:
        check_rescale_type(path, tag_text(reader, '0028|1054'))
        array = sitk.GetArrayViewFromImage(img)
        check_lowest_hu(path, [osp.basename(path)],
                        array.reshape((-1, ) + array.shape[-2:]), padding)
    return img
