# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a DICOM series' slices before its voxels are read.

ITK stacks whatever files GDCM lists (leaving out those it cannot parse)
and takes the slice interval from the first two positions, with only a
warning on stderr: a missing or duplicated slice moves every later slice.
Here, as dcm2niix does, the ``ImagePositionPatient`` of every slice is
projected on the slice normal and the steps are checked: duplicates, gaps
over 1.5x the median step and other uneven steps are refused naming the
files, or, only when asked, interpolated onto a uniform grid
(:func:`resample_slices_uniform`). Each file's header must announce pixel
data that fits in the file. Slice-wise RescaleSlope / RescaleIntercept
(ITK would cut the other slices' HU to the first slice's integer type) make
:attr:`SeriesGeometry.rescale_varies` ask the reader for float32.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

#: Uncompressed transfer syntaxes: the pixel data length is known.
_NATIVE_SYNTAXES = ('1.2.840.10008.1.2', '1.2.840.10008.1.2.1',
                    '1.2.840.10008.1.2.2')
#: A step farther than this from the median step (relative) is uneven.
UNEVEN_REL_TOL = 0.01
#: Two slices closer than this (mm) along the normal share one position.
DUPLICATE_TOL_MM = 1e-3
#: A step over this many median steps is a gap (missing slices).
GAP_FACTOR = 1.5


@dataclass
class SeriesGeometry:
    """The slices of a series sorted along their normal.

    Args:
        files (list[str]): sorted files (duplicates dropped when resampling).
        positions (np.ndarray): their position along the normal, mm.
        row_col_normal (np.ndarray): (3, 3) columns: row, column and normal
            directions.
        problems (list[str]): what is wrong with the spacing (empty: even).
        rescale (np.ndarray): (n, 2) RescaleSlope and RescaleIntercept of
            each file of ``files`` (1 and 0 where absent).
    """
    files: List[str]
    positions: np.ndarray
    row_col_normal: np.ndarray
    problems: List[str] = field(default_factory=list)
    rescale: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 2)))

    @property
    def rescale_varies(self) -> bool:
        """Whether the slices' RescaleSlope / RescaleIntercept differ."""
        return bool(len(self.rescale)) and not np.all(
            self.rescale == self.rescale[:1])


def _floats(reader: sitk.ImageFileReader, key: str, path: str,
            count: int) -> np.ndarray:
    if not reader.HasMetaDataKey(key):
        raise ValueError(f'{path}: no DICOM tag ({key.replace("|", ",")}); '
                         'cannot place the slice in the series')
    try:
        values = np.array(
            [float(v) for v in reader.GetMetaData(key).split('\\')])
    except ValueError as err:
        raise ValueError(f'{path}: DICOM tag ({key.replace("|", ",")}) '
                         f'{reader.GetMetaData(key)!r} is not {count} '
                         'numbers') from err
    if values.size != count or not np.all(np.isfinite(values)):
        raise ValueError(f'{path}: DICOM tag ({key.replace("|", ",")}) '
                         f'{reader.GetMetaData(key)!r} is not {count} '
                         'finite numbers')
    return values


def _int_tag(reader: sitk.ImageFileReader, key: str, default: int) -> int:
    if not reader.HasMetaDataKey(key):
        return default
    try:
        return int(reader.GetMetaData(key).strip() or default)
    except ValueError:
        return default


def _transfer_syntax(path: str) -> str:
    """TransferSyntaxUID (0002,0010) of a Part 10 file ('' if not found).

    SimpleITK does not report the file meta group; it is always explicit
    VR little endian right after the ``DICM`` preamble, so the element is
    found by its tag and VR in the first kilobyte.
    """
    with open(path, 'rb') as f:
        head = f.read(1024)
    at = head.find(b'\x02\x00\x10\x00UI', 132)
    if head[128:132] != b'DICM' or at < 0:
        return ''
    length = int.from_bytes(head[at + 6:at + 8], 'little')
    return head[at + 8:at + 8 + length].decode('ascii', 'replace').strip(
        '\x00 ')


#: Two slices' PixelSpacing farther apart than this (relative) differ.
PIXEL_SPACING_REL_TOL = 1e-3
#: Largest plausible PixelSpacing (mm) of a CT slice (pixels are below 2
#: mm; 50 mm is a header in cm or m, as ``loading.MAX_SPACING_MM``).
MAX_PIXEL_SPACING_MM = 50.0


def _pixel_spacing(reader: sitk.ImageFileReader, path: str):
    """PixelSpacing (0028,0030) as (row, column) mm, checked; None if the
    tag is absent (GDCM then uses 1 mm, as every file of the series
    must agree)."""
    if not reader.HasMetaDataKey('0028|0030'):
        return None
    values = _floats(reader, '0028|0030', path, 2)
    if not np.all(values > 0) or np.any(values > MAX_PIXEL_SPACING_MM):
        raise ValueError(
            f'{path}: DICOM tag PixelSpacing (0028,0030) '
            f'{reader.GetMetaData("0028|0030")!r}: a pixel spacing must be '
            f'> 0 and at most {MAX_PIXEL_SPACING_MM:g} mm')
    return values


def _rescale(reader: sitk.ImageFileReader, path: str) -> Tuple[float, float]:
    """RescaleSlope (0028,1053) and RescaleIntercept (0028,1052), 1 and 0
    where absent (as GDCM)."""
    return tuple(
        float(_floats(reader, key, path, 1)[0])
        if reader.HasMetaDataKey(key) else default
        for key, default in (('0028|1053', 1.), ('0028|1052', 0.)))


def _slice_header(path: str) -> tuple:
    """Position, orientation, size, pixel spacing and rescale of one file;
    checks its length."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise ValueError(f'{path}: cannot be read as DICOM (truncated or '
                         f'damaged header): {str(err).strip()[-200:]}'
                         ) from err
    rows = _int_tag(reader, '0028|0010', 0)
    cols = _int_tag(reader, '0028|0011', 0)
    if _transfer_syntax(path) in _NATIVE_SYNTAXES:
        bits = _int_tag(reader, '0028|0100', 16)
        want = rows * cols * _int_tag(reader, '0028|0002', 1) * _int_tag(
            reader, '0028|0008', 1) * bits // 8
        have = osp.getsize(path)
        if have < want:
            raise ValueError(
                f'{path}: truncated: {have} bytes, less than the {want} '
                f'bytes of pixel data its header announces ({rows} rows x '
                f'{cols} columns x {bits} bits)')
    ipp = _floats(reader, '0020|0032', path, 3)
    iop = _floats(reader, '0020|0037', path, 6)
    return (ipp, iop, (rows, cols), _pixel_spacing(reader, path),
            _rescale(reader, path))


def _looks_like_dicom(path: str) -> bool:
    """The ``DICM`` magic at byte 128 (DICOM Part 10 files)."""
    try:
        with open(path, 'rb') as f:
            f.seek(128)
            return f.read(4) == b'DICM'
    except OSError:
        return False


def check_unread_dicom_files(folder: str, series_ids: Sequence[str]) -> None:
    """Refuse a folder holding DICOM files that no series could read.

    GDCM silently leaves out a file it cannot parse; where that was the
    first or last slice the series just becomes shorter. So any Part 10
    file of the folder that is in none of its series is an error.

    Args:
        folder (str): the folder.
        series_ids (sequence[str]): GDCM's series ids of the folder.

    Raises:
        ValueError: naming the unread files.
    """
    listed = set()
    for uid in series_ids:
        listed.update(osp.abspath(f) for f in
                      sitk.ImageSeriesReader.GetGDCMSeriesFileNames(
                          folder, uid))
    unread = sorted(
        name for name in os.listdir(folder)
        if osp.abspath(osp.join(folder, name)) not in listed
        and osp.isfile(osp.join(folder, name))
        and _looks_like_dicom(osp.join(folder, name)))
    if unread:
        raise ValueError(
            f'{folder}: {len(unread)} DICOM file(s) that GDCM could not read '
            f'(truncated or damaged?): {unread[:10]}; a series read without '
            'them may miss slices. Repair or remove them')


def check_series_slices(folder: str, files: Sequence[str],
                        resample: bool = False) -> SeriesGeometry:
    """Sort a series' files along the slice normal and check the steps.

    Args:
        folder (str): the series folder (named in errors).
        files (sequence[str]): the files GDCM lists for the series.
        resample (bool): report uneven spacing in ``problems`` (the caller
            then resamples) instead of raising; duplicates are dropped
            (the first file at a position is kept).

    Returns:
        SeriesGeometry: sorted files and positions.

    Raises:
        ValueError: a truncated or unplaceable slice, slices of other sizes
            or orientations, or (without ``resample``) duplicate positions,
            gaps or uneven steps, naming the files.
    """
    headers = [_slice_header(f) for f in files]
    iop0, size0, ps0 = headers[0][1], headers[0][2], headers[0][3]
    for path, (_, iop, size, ps, _) in zip(files, headers):
        if size != size0 or not np.allclose(iop, iop0, atol=1e-4):
            raise ValueError(
                f'{folder}: {path} has {size} rows x columns and orientation '
                f'{iop.tolist()}, {files[0]} has {size0} and '
                f'{iop0.tolist()}: not one stack of slices')
        if (ps is None) != (ps0 is None) or (ps is not None and np.any(
                np.abs(ps - ps0) > PIXEL_SPACING_REL_TOL * ps0)):
            show = (lambda v: 'none' if v is None else  # noqa: E731
                    '\\'.join(f'{x:g}' for x in v))
            raise ValueError(
                f'{folder}: {path} has PixelSpacing (0028,0030) '
                f'{show(ps)} mm, {files[0]} has {show(ps0)}: the slices '
                "would be stacked at the first slice's spacing, so this "
                "one's coordinates and sizes would be wrong; refusing the "
                'series')
    row, col = iop0[:3], iop0[3:]
    normal = np.cross(row, col)
    positions = np.array([float(np.dot(h[0], normal)) for h in headers])
    order = np.argsort(positions, kind='stable')
    files = [files[i] for i in order]
    positions = positions[order]
    geometry = SeriesGeometry(
        files, positions, np.stack([row, col, normal], axis=1),
        rescale=np.array([headers[i][4] for i in order], dtype=float))
    if len(files) < 2:
        return geometry
    steps = np.diff(positions)
    dup = np.flatnonzero(steps < DUPLICATE_TOL_MM)
    problems = [
        f'{osp.basename(files[i])} and {osp.basename(files[i + 1])} at one '
        f'position ({positions[i]:.3f} mm along the normal)' for i in dup
    ]
    real = steps[steps >= DUPLICATE_TOL_MM]
    median = float(np.median(real)) if real.size else 0.
    for i, step in enumerate(steps):
        if step < DUPLICATE_TOL_MM:
            continue
        if step > GAP_FACTOR * median:
            problems.append(
                f'a gap of {step:.3f} mm (median step {median:.3f} mm: '
                f'missing slices?) between {osp.basename(files[i])} and '
                f'{osp.basename(files[i + 1])}')
        elif abs(step - median) > UNEVEN_REL_TOL * median:
            problems.append(
                f'an uneven step of {step:.3f} mm (median {median:.3f} mm) '
                f'between {osp.basename(files[i])} and '
                f'{osp.basename(files[i + 1])}')
    if problems:
        listed = set(osp.abspath(f) for f in files)
        unread = sorted(
            name for name in os.listdir(folder)
            if osp.isfile(osp.join(folder, name))
            and osp.abspath(osp.join(folder, name)) not in listed)
        if unread:
            problems.append('files of the folder not read as DICOM of this '
                            f'series: {unread[:10]}')
    if problems and not resample:
        raise ValueError(
            f'{folder}: the slice positions of the DICOM series are not '
            'evenly spaced, so its z-coordinates would be wrong: '
            + '; '.join(problems[:10]) +
            (f' (and {len(problems) - 10} more)' if len(problems) > 10 else
             '') + '. Pass resample_nonuniform=True '
            '(--resample-nonuniform) to interpolate the slices onto a '
            'uniform grid')
    if resample and dup.size:
        keep = np.setdiff1d(np.arange(len(files)), dup + 1)
        geometry.files = [files[i] for i in keep]
        geometry.positions = positions[keep]
        geometry.rescale = geometry.rescale[keep]
    geometry.problems = problems
    return geometry


def resample_slices_uniform(img: sitk.Image,
                            geometry: SeriesGeometry) -> sitk.Image:
    """Interpolate stacked slices onto a uniform grid along the normal.

    Linear interpolation between the two nearest slices (in HU) at steps of
    the median slice interval, from the first to the last slice.

    Args:
        img (sitk.Image): the series read in the order of
            ``geometry.files``.
        geometry (SeriesGeometry): from :func:`check_series_slices`.

    Returns:
        sitk.Image: float32, spacing (x, y, median step), origin at the
        first slice, direction (row, column, normal).
    """
    pos = geometry.positions
    step = float(np.median(np.diff(pos)))
    count = int(np.floor((pos[-1] - pos[0]) / step + 0.5)) + 1
    target = pos[0] + step * np.arange(count)
    upper = np.clip(np.searchsorted(pos, target, side='right'), 1,
                    len(pos) - 1)
    lower = upper - 1
    weight = np.clip((target - pos[lower]) / (pos[upper] - pos[lower]), 0,
                     1).astype(np.float32)[:, None, None]
    array = sitk.GetArrayViewFromImage(img).astype(np.float32)
    out = array[lower] * (1 - weight) + array[upper] * weight
    res = sitk.GetImageFromArray(out)
    res.SetSpacing((img.GetSpacing()[0], img.GetSpacing()[1], step))
    res.SetOrigin(img.GetOrigin())
    res.SetDirection(tuple(geometry.row_col_normal.ravel().tolist()))
    return res
