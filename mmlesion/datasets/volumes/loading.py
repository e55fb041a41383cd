# Copyright (c) mmlesion contributors. All rights reserved.
"""One reader for CT volumes: NIfTI, MetaImage (.mhd + .raw) and DICOM.

Everything is read through SimpleITK (GDCM for DICOM, which applies the
rescale slope and intercept; an enhanced multi-frame CT and MONOCHROME1
images, which GDCM gets wrong, are read with pydicom's help:
:mod:`~mmlesion.datasets.volumes.dicom_reading`) and brought to one
canonical axial orientation with
``SimpleITK.DICOMOrient(img, 'LPS')``: index x grows towards the patient's
left, y towards posterior, z towards superior (head), so the direction
matrix is the identity unless the scan is oblique.
"""
import contextlib
import logging
import math
import os
import os.path as osp
import threading
from dataclasses import dataclass, replace
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk
from mmengine.logging import print_log

from mmlesion.utils.input_files import check_regular_file

from .checks.dicom import (check_series_slices, check_unread_dicom_files,
                           int_tag, resample_slices_uniform, tag_text)
from .checks.enhanced_dicom import is_multi_frame
from .checks.files import (check_folder_entries, check_voxel_count,
                           count_nonfinite, nonfinite_error, read_header,
                           sitk_error)
from .checks.intensities import check_byte_order, check_ct_intensities
from .checks.metaimage import (check_metaimage_length, mhd_byte_order,
                               mhd_data_files)
from .checks.nifti import (NIFTI_SUFFIXES, check_analyze,
                           check_nifti_finite, check_nifti_header,
                           check_nifti_length, read_nifti_header)
from .checks.nifti_geometry import nifti_geometry
from .checks.nrrd import (check_nrrd_length, is_nrrd, nrrd_data_files,
                          check_nrrd_space)
from .ct_volume import CTVolume
from .dicom_reading import (choose_series, dicomdir_pick, dicomdir_series,
                            file_hu, read_enhanced, series_hu,
                            warn_missing_images, warn_part_of_export)
from .scan_switches import ScanChecks

PathLike = Union[str, os.PathLike]

#: File name endings read as one image file (DICOM files are detected by
#: content, whatever their name).
VOLUME_SUFFIXES: Tuple[str, ...] = ('.nii', '.nii.gz', '.hdr', '.mhd',
                                    '.mha', '.nrrd', '.dcm')

_DICOM_MODALITY = '0008|0060'
#: Largest voxel spacing (mm) accepted: a CT slice is at most about 10 mm
#: thick and pixels are below 2 mm; 50 mm is no CT (a header in cm or m).
MAX_SPACING_MM = 50.0
#: Farthest a volume's origin may lie from the scanner's (mm): 100 m.
MAX_ORIGIN_MM = 1e5
_DICOM_SERIES_UID = '0020|000e'


def _check_spacing(path: str,
                   spacing: Tuple[float, ...],
                   allow_negative: bool = False) -> None:
    # some readers report a negative spacing before they fold its sign into
    # the direction (GDCM on an enhanced CT), so that may be allowed here
    if not all(
            math.isfinite(s) and (abs(s) if allow_negative else s) > 0
            for s in spacing):
        raise ValueError(f'{path}: invalid voxel spacing {tuple(spacing)} '
                         f'(x, y, z mm); every spacing must be finite and '
                         f'> 0')
    if any(abs(s) > MAX_SPACING_MM for s in spacing[:3]):
        raise ValueError(
            f'{path}: implausible voxel spacing {tuple(spacing)} (x, y, z '
            f'mm): over {MAX_SPACING_MM:g} mm is no CT (a header written in '
            'cm or m?); refusing it')


#: Held while ITK's global warning display is switched off (threads of a
#: batch read scans side by side; each restores what it found).
_WARNING_DISPLAY_LOCK = threading.Lock()


@contextlib.contextmanager
def _itk_warnings_off() -> Iterator[None]:
    """ITK's warnings (written to stderr by its C++ code) off, restored
    afterwards."""
    with _WARNING_DISPLAY_LOCK:
        shown = sitk.ProcessObject_GetGlobalWarningDisplay()
        sitk.ProcessObject_SetGlobalWarningDisplay(False)
        try:
            yield
        finally:
            sitk.ProcessObject_SetGlobalWarningDisplay(shown)


def list_dicom_series(folder: PathLike) -> List[str]:
    """Return the DICOM series UIDs (GDCM's series ids) found in a folder.

    GDCM's warning for a folder without any (three lines on stderr, "No
    Series were found") is not printed: the caller says what is wrong.

    Args:
        folder (str | PathLike): a folder of DICOM files (not recursive).

    Returns:
        list[str]: the series ids; empty if the folder holds no DICOM.
    """
    with _itk_warnings_off():
        return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def _no_series_error(folder: str) -> FileNotFoundError:
    """The error for a folder without a DICOM series: what it holds and
    what to give instead (for a folder of NIfTI / MetaImage files, the
    ``infer_volume`` batch command that reads each as a scan)."""
    names = sorted(os.listdir(folder))
    files = [n for n in names if osp.isfile(osp.join(folder, n))]
    image_suffixes = tuple(s for s in VOLUME_SUFFIXES if s != '.dcm')
    scans = [n for n in files if n.lower().endswith(image_suffixes)]
    if scans:
        ext = next(s for s in image_suffixes if scans[0].lower().endswith(s))
        return FileNotFoundError(
            f'{folder}: no DICOM series in this folder: it holds '
            f'{len(scans)} scan file(s) (e.g. {scans[0]}); run them as a '
            f'batch: ls {osp.join(folder, "*" + ext)} > scans.txt && python '
            'tools/infer_volume.py CONFIG CHECKPOINT --scan-list scans.txt '
            '--out-dir OUT')
    if files:
        what = f'none of its {len(files)} file(s) is DICOM'
    elif names:
        what = (f'it holds only folders, e.g. {osp.join(folder, names[0])}'
                ': give the folder of the series itself')
    else:
        what = 'it is empty'
    return FileNotFoundError(
        f'{folder}: no DICOM series in this folder ({what}); give a folder '
        'of DICOM files, a NIfTI or a .mhd file')


def _read_dicom_series(folder: str, series_uid: Optional[str],
                       checks: ScanChecks, fill: float):
    check_folder_entries(folder, checks.allow_outside_data)
    ids = list_dicom_series(folder)
    if not ids:
        listed = dicomdir_series(folder)
        if not listed:
            raise _no_series_error(folder)
        pick = dicomdir_pick(folder, listed, series_uid)
        if len(pick.folders) == 1:
            img, meta = _read_dicom_series(pick.folders[0], pick.uid, checks,
                                           fill)
        else:
            print_log(f'{folder}: series {pick.uid} lies in '
                      f'{len(pick.folders)} folders of the export; read the '
                      f'{len(pick.files)} files its DICOMDIR lists',
                      logger='current', level=logging.WARNING)
            img, meta = _read_series_files(folder, pick.uid, pick.files,
                                           checks, fill)
        return img, dict(meta, series_folder=pick.folders[0])
    if series_uid is None:
        uid = ids[0] if len(ids) == 1 else choose_series(folder, ids)
    else:
        if series_uid not in ids:
            raise ValueError(f'{folder}: no DICOM series {series_uid!r} '
                             f'here; found {ids}')
        uid = series_uid
    check_unread_dicom_files(folder, ids)
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid)
    warn_part_of_export(folder, uid, len(files))
    return _read_series_files(folder, uid, files, checks, fill)


def _read_series_files(source: str, uid: str, files: Sequence[str],
                       checks: ScanChecks, fill: float):
    """The files of one series (``source``: the folder, named in errors)
    as one volume."""
    if len(files) == 1 and _is_multi_frame(read_header(files[0])):
        img, meta = _read_file(files[0], checks, fill)
        meta.pop('stored_type')
        return img, dict(meta, num_files=1, first_file=files[0])
    geometry = check_series_slices(source, files,
                                   checks.resample_nonuniform)
    count = len(files)
    files = geometry.files
    header = read_header(files[0])
    modality = dicom_tag(header, _DICOM_MODALITY)
    warn_missing_images(source, header, count)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    if geometry.rescale_varies:
        # ITK rescales each slice with its own values, into the first
        # slice's pixel type: integers would cut the others' fractions
        reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        img = reader.Execute()
    except RuntimeError as err:
        raise sitk_error(source, err)
    img = series_hu(img, geometry, _hu_checks(checks, modality), fill)
    meta = dict(series_uid=uid or None, modality=modality,
                num_files=len(files), first_file=files[0])
    return _resample_uneven(source, img, geometry, meta), meta


def _hu_checks(checks: ScanChecks, modality: Optional[str]) -> ScanChecks:
    """The checks of a DICOM image's values: none but for a CT (another
    modality is refused, or read with ``force_ct``, by its own check)."""
    return checks if modality in (None, 'CT') else replace(checks,
                                                           force_ct=True)


def _resample_uneven(source: str, img: sitk.Image, geometry,
                     meta: dict) -> sitk.Image:
    """``img`` interpolated onto a uniform grid where its slices or
    frames are unevenly spaced (``geometry.problems``), noted in
    ``meta``."""
    if not geometry.problems:
        return img
    print_log(
        f'{source}: uneven DICOM slice positions (' +
        '; '.join(geometry.problems[:10]) + '); interpolated onto a '
        'uniform grid (resample_nonuniform=True)',
        logger='current', level=logging.WARNING)
    meta['resampled_nonuniform'] = geometry.problems
    return resample_slices_uniform(img, geometry)


def _is_multi_frame(reader: sitk.ImageFileReader) -> bool:
    """Whether a DICOM header is of a multi-frame or enhanced image."""
    return is_multi_frame(tag_text(reader, '0008|0016'),
                          int_tag(reader, '0028|0008', 1))


def _read_dicom_file(path: str, reader: sitk.ImageFileReader,
                     img: sitk.Image, checks: ScanChecks, fill: float,
                     meta: dict) -> sitk.Image:
    """A DICOM file's image: GDCM's (``img``), but an enhanced
    multi-frame image frame by frame from its functional groups and a
    MONOCHROME1 image or one with padding from its stored values
    (:mod:`~mmlesion.datasets.volumes.dicom_reading`)."""
    if _is_multi_frame(reader):
        read = read_enhanced(path, checks, fill)
        if read is not None:
            return _resample_uneven(path, read[0], read[1], meta)
        frames = dicom_tag(reader, '0028|0008')
        if frames not in (None, '1'):
            raise ValueError(
                f'{path}: {frames} frames (NumberOfFrames (0028,0008)) but '
                'no Per-frame Functional Groups Sequence (5200,9230): the '
                'position of each frame is unknown (ITK would stack them 1 '
                'mm apart); convert it to an enhanced multi-frame image or '
                'to one file per slice')
    return file_hu(path, reader, img, checks, fill)


def dicom_tag(reader: sitk.ImageFileReader, key: str) -> Optional[str]:
    """A DICOM tag of a header read, None where it has none."""
    return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) \
        else None


#: The header field that holds the sizes, by file type (for errors).
_SIZE_FIELDS = (('.nii', 'dim'), ('.nii.gz', 'dim'), ('.hdr', 'dim'),
                ('.img', 'dim'), ('.mhd', 'DimSize'),
                ('.mha', 'DimSize'), ('.nrrd', 'sizes'), ('.nhdr', 'sizes'))


def _read_file(path: str, checks: ScanChecks, fill: float = -1024.):
    check_regular_file(path, 'CT volume')
    lower = path.lower()
    nifti = read_nifti_header(path) if lower.endswith(
        NIFTI_SUFFIXES) else None
    analyze = nifti is not None and nifti.analyze
    if analyze:
        check_analyze(path, nifti)
        nifti = None
    if nifti is not None:  # before ITK reads (and warns about) the header
        check_nifti_header(path, nifti)
        geometry = nifti_geometry(path, nifti)
    outside = checks.allow_outside_data
    nrrd_files = nrrd_data_files(path, outside) if is_nrrd(path) else None
    mhd_files = mhd_data_files(path, outside) if lower.endswith(
        ('.mhd', '.mha')) else None
    # ITK warns of a NIfTI sform's "unexpected scales", which are the ones used
    # and that ANALYZE 7.5 is deprecated (check_analyze said what it means)
    quiet = _itk_warnings_off if analyze or (
        nifti is not None and geometry.pixdim_differs) else \
        contextlib.nullcontext
    with quiet():
        reader = read_header(path)
    meta = dict(stored_type=sitk.GetPixelIDValueAsString(
        reader.GetPixelIDValue()))
    is_dicom = reader.HasMetaDataKey(_DICOM_MODALITY) or lower.endswith(
        '.dcm')
    field = next((f for s, f in _SIZE_FIELDS if lower.endswith(s)),
                 'Rows x Columns x frames' if is_dicom else 'size')
    check_voxel_count(path, reader.GetSize(), field)
    if is_dicom:
        meta['modality'] = dicom_tag(reader, _DICOM_MODALITY)
        meta['series_uid'] = dicom_tag(reader, _DICOM_SERIES_UID) or None
    if nifti is not None:
        check_nifti_length(path, header=nifti)
        check_nifti_finite(path, nifti)
    elif mhd_files is not None:
        check_metaimage_length(path, reader, mhd_files)
    elif nrrd_files is not None:
        check_nrrd_length(path, reader, nrrd_files)
        check_nrrd_space(path)
    _check_spacing(path, reader.GetSpacing(), True)
    try:
        with quiet():
            img = reader.Execute()
    except RuntimeError as err:
        raise sitk_error(path, err)
    if is_dicom:
        img = _read_dicom_file(path, reader, img,
                               _hu_checks(checks, meta['modality']), fill,
                               meta)
    if nifti is not None:  # NIfTI's rule, not ITK's choice of transform
        geometry.apply(img)
    return img, meta


def _orient_lps(img: sitk.Image, dtype: Optional[type],
                meta: dict) -> CTVolume:
    """``DICOMOrient(img, 'LPS')`` done with one numpy transpose / flip
    copy: the same result, faster than the filter
    (``projects/benchmarks/benchmark_volume_io.py``)."""
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    size = np.asarray(img.GetSize())
    spacing = np.asarray(img.GetSpacing())
    # world axis w -> the index axis that points closest to it
    axis_of_world = np.argmax(np.abs(direction), axis=1)
    if sorted(axis_of_world.tolist()) != [0, 1, 2]:
        axis_of_world = np.arange(3)  # ~45 degrees: keep the index order
    signs = np.sign(direction[np.arange(3), axis_of_world])
    new_dir = direction[:, axis_of_world] * signs[None, :]
    corner = np.where(signs[np.argsort(axis_of_world)] < 0, size - 1, 0)
    origin = img.TransformIndexToPhysicalPoint([int(c) for c in corner])
    array = sitk.GetArrayViewFromImage(img)  # (k, j, i)
    # numpy axis of index axis a is 2 - a; new numpy order is (z, y, x)
    axes = [2 - int(axis_of_world[w]) for w in (2, 1, 0)]
    array = np.transpose(array, axes)
    flips = [ax for ax, w in zip(range(3), (2, 1, 0)) if signs[w] < 0]
    if flips:
        array = np.flip(array, axis=flips)
    # always a copy: the view dies with ``img``
    array = np.array(array, dtype=dtype or array.dtype, order='C', copy=True)
    return CTVolume(
        array=array,
        spacing_zyx=tuple(spacing[axis_of_world][::-1].tolist()),
        origin_xyz=tuple(origin),
        direction=new_dir,
        meta=dict(meta))


def _resample_to_axial(img: sitk.Image, default_value: float,
                       labels: bool = False) -> sitk.Image:
    """Resample an oblique image onto an axis-aligned grid covering it."""
    size = np.asarray(img.GetSize())
    corners = np.array(
        [[i, j, k] for i in (-0.5, size[0] - 0.5)
         for j in (-0.5, size[1] - 0.5) for k in (-0.5, size[2] - 0.5)])
    world = np.array([
        img.TransformContinuousIndexToPhysicalPoint(c.tolist())
        for c in corners
    ])
    spacing = np.asarray(img.GetSpacing())
    lo, hi = world.min(0), world.max(0)
    out_size = np.maximum(np.round((hi - lo) / spacing), 1).astype(int)
    out_type = img.GetPixelID() if labels else sitk.sitkFloat32
    ref = sitk.Image([int(s) for s in out_size], out_type)
    ref.SetSpacing(tuple(spacing.tolist()))
    ref.SetOrigin(tuple((lo + spacing / 2).tolist()))
    ref.SetDirection((1., 0., 0., 0., 1., 0., 0., 0., 1.))
    interp = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    return sitk.Resample(img, ref, sitk.Transform(), interp,
                         0.0 if labels else float(default_value), out_type)


@dataclass(frozen=True)
class VolumeOptions:
    """How :func:`load_ct_volume` reads a scan, besides the input checks of
    :class:`~.scan_switches.ScanChecks`.

    Attributes:
        allow_single_slice (bool): accept a one-slice image as a (1, y, x)
            volume. Defaults to False (a 2D image is an error).
        oblique_tol_deg (float): largest angle (degrees) between an index
            axis and its world axis after reorientation that is kept as is
            (the direction is then stored and used by the world <-> voxel
            conversion). Defaults to 1.
        resample_oblique (bool): resample a more oblique scan (e.g. a tilted
            gantry) with SimpleITK onto an axis-aligned grid of the same
            spacing covering it, instead of raising. Defaults to False.
        default_value (float): HU outside the scan: when resampling, and
            of the DICOM pixels marked as padding (PixelPaddingValue).
        dtype (type, optional): array type, float32 HU by default; None
            keeps the stored type (for label maps read with the same
            orientation as their scan, with ``force_ct``).
    """
    allow_single_slice: bool = False
    oblique_tol_deg: float = 1.0
    resample_oblique: bool = False
    default_value: float = -1024.0
    dtype: Optional[type] = np.float32


def load_ct_volume(path: PathLike,
                   series_uid: Optional[str] = None,
                   scan_checks: Union[None, ScanChecks, dict] = None,
                   options: VolumeOptions = VolumeOptions()) -> CTVolume:
    """Read a CT volume in the canonical axial orientation, in HU.

    Args:
        path (str | PathLike): a ``.nii`` / ``.nii.gz`` / ``.hdr`` (with
            its ``.img``: NIfTI-1 or ANALYZE 7.5) / ``.mhd`` (with its
            ``.raw``) / ``.mha`` / ``.nrrd`` file, a DICOM file (enhanced
            multi-frame CT), a folder holding a DICOM series or the root
            of a DICOM export with a DICOMDIR (read where it lists one
            series).
        series_uid (str, optional): the DICOM series to read from a folder
            (or DICOMDIR) holding several that may be a CT volume (required
            then; localizers, colour images and single images are left
            aside). For other files it only names
            the scan in ``meta['series_uid']`` (default: the file stem of a
            ``.mhd``/``.mha``, the DICOM tag of a DICOM file).
        scan_checks (ScanChecks | dict, optional): the input checks relaxed
            (``force_ct``: no DICOM Modality and
            :func:`check_ct_intensities` checks). None:
            :class:`~.scan_switches.ScanChecks`' defaults.
        options (VolumeOptions): single slices, oblique scans and the
            array type.

    Returns:
        CTVolume: float32 (z, y, x) HU array and its geometry; ``meta`` has
        ``path``, ``series_uid``, ``modality`` (None where the format has
        none), ``format`` and ``oblique_deg``.

    Raises:
        FileNotFoundError: the path, a .mhd's .raw or any DICOM is missing.
        ValueError: naming the file, for any check of :mod:`.checks` (an
            unreadable, truncated or misplaced file, uneven or sheared
            DICOM slices, values that are not HU, a NIfTI placed
            differently by readers), a 2D or non-scalar image, bad
            spacing, a non-CT modality, several DICOM series without
            ``series_uid``, or an oblique direction not made axial.
    """
    path = str(path)
    checks = ScanChecks.of(scan_checks)
    if not osp.exists(path):
        raise FileNotFoundError(f'CT volume not found: {path}')
    meta = dict(path=path, series_uid=None, modality=None)
    stored_type = ''
    if osp.isdir(path):
        img, extra = _read_dicom_series(path, series_uid, checks,
                                        options.default_value)
        meta.update(extra, format='dicom_series')
    else:
        lower = path.lower()
        img, extra = _read_file(path, checks, options.default_value)
        meta.update(extra)
        stored_type = meta.pop('stored_type')
        meta['format'] = ('dicom' if 'modality' in extra else
                          next((s[1:] for s in VOLUME_SUFFIXES
                                if lower.endswith(s)), 'image'))
        if series_uid is not None:
            meta['series_uid'] = series_uid
        elif lower.endswith(('.mhd', '.mha')):
            meta['series_uid'] = osp.basename(path)[:-4]

    modality = meta.get('modality')
    if not checks.force_ct and modality is not None and modality != 'CT':
        raise ValueError(f'{path}: DICOM Modality is {modality!r}, not CT '
                         f'(pass scan_checks=dict(force_ct=True) / '
                         f'--force-ct to read it anyway)')
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f'{path}: {img.GetNumberOfComponentsPerPixel()} '
                         f'components per voxel; a CT volume is scalar')
    dim = img.GetDimension()
    if dim == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
        dim = 3
    if dim == 2 or (dim == 3 and img.GetSize()[2] == 1
                    and not options.allow_single_slice):
        raise ValueError(
            f'{path}: a 2D image of size {img.GetSize()[:2]}, not a CT '
            f'volume (give the folder of the whole DICOM series, or pass '
            f'options=VolumeOptions(allow_single_slice=True))')
    if dim != 3:
        raise ValueError(f'{path}: a {dim}D image of size {img.GetSize()}; '
                         f'expected a 3D CT volume')
    _check_spacing(path, img.GetSpacing())
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    if not np.all(np.isfinite(direction)) or abs(
            abs(np.linalg.det(direction)) - 1) > 1e-3:
        raise ValueError(f'{path}: invalid direction matrix '
                         f'{img.GetDirection()}')
    if not all(map(math.isfinite, img.GetOrigin())):
        raise ValueError(f'{path}: invalid origin {img.GetOrigin()}')
    if max(map(abs, img.GetOrigin())) > MAX_ORIGIN_MM:
        raise ValueError(f'{path}: implausible origin {img.GetOrigin()} '
                         f'(mm): over {MAX_ORIGIN_MM:g} mm (100 m) from the '
                         "scanner's origin; refusing it")
    if not checks.force_ct and meta['format'] in ('mhd', 'mha'):
        check_byte_order(path, sitk.GetArrayViewFromImage(img),
                         *mhd_byte_order(path))
    if img.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        count, first = count_nonfinite(sitk.GetArrayViewFromImage(img))
        if count:
            raise nonfinite_error(
                path, count, int(np.prod(img.GetSize())),
                'voxel (x, y, z) = ' + str(tuple(first[::-1])))

    volume = _orient_lps(img, options.dtype, meta)
    if not checks.force_ct:
        check_ct_intensities(path, volume.array, stored_type)
    cos = np.clip(np.abs(np.diag(volume.direction)), -1.0, 1.0)
    angle = float(np.degrees(np.arccos(cos)).max())
    volume.meta['oblique_deg'] = angle
    if angle > options.oblique_tol_deg:
        if not options.resample_oblique:
            raise ValueError(
                f'{path}: oblique scan ({angle:.2f} degrees between an index '
                f'axis and its world axis after reorientation to LPS, more '
                f'than oblique_tol_deg={options.oblique_tol_deg}); it cannot '
                f'be made axial by reordering axes: pass options=VolumeOptions'
                f'(resample_oblique=True) to resample it onto an axial grid')
        img = _resample_to_axial(volume.to_sitk(), options.default_value,
                                 options.dtype is None)
        volume.meta['resampled_from_oblique'] = True
        volume = CTVolume.from_sitk(img, dtype=options.dtype,
                                     **volume.meta)
    return volume
