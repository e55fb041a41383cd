# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a DICOM series' slices before its voxels are read.

ITK stacks whatever files GDCM lists (leaving out those it cannot parse)
and takes the slice interval from the first two positions, with only a
warning on stderr: a missing or duplicated slice moves every later slice.
Here, as dcm2niix does, the ``ImagePositionPatient`` of every slice is
projected on the slice normal and the steps are checked
(:func:`check_stack`, also for the frames of an enhanced image): a
position off the normal through the first slice (gantry tilt) and two
slices at one position with different HU are refused naming the files (one
slice stored twice is read once, with one warning line); gaps over 1.5x
the median step and other uneven steps are refused, or, only when asked,
interpolated onto a uniform grid (:func:`resample_slices_uniform`).
"""
import logging
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from mmengine.logging import print_log

from .dicom_values import slice_hu
from .files import dicom_pixel_data_bytes, truncated

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
        order (np.ndarray): index of each of ``files`` in the list
            checked.
        headers (list[SliceHeader]): the header of each of ``files``.
    """
    files: List[str]
    positions: np.ndarray
    row_col_normal: np.ndarray
    problems: List[str] = field(default_factory=list)
    rescale: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 2)))
    order: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=int))
    headers: list = field(default_factory=list)

    @property
    def rescale_varies(self) -> bool:
        """Whether the slices' RescaleSlope / RescaleIntercept differ."""
        return bool(len(self.rescale)) and not np.all(
            self.rescale == self.rescale[:1])


def parse_numbers(path: str, where: str, values, count: int,
                  shown) -> np.ndarray:
    """``count`` finite numbers of ``values``, else an error naming the
    file, ``where`` they are and the tag's value as ``shown``."""
    try:
        out = np.array([float(v) for v in values], dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{path}: {where} {shown!r} is not {count} '
                         'numbers') from err
    if out.size != count or not np.all(np.isfinite(out)):
        raise ValueError(f'{path}: {where} {shown!r} is not {count} finite '
                         'numbers')
    return out


def _floats(reader: sitk.ImageFileReader, key: str, path: str,
            count: int) -> np.ndarray:
    tag = f'DICOM tag ({key.replace("|", ",")})'
    if not reader.HasMetaDataKey(key):
        raise ValueError(f'{path}: no {tag}; cannot place the slice in the '
                         'series')
    raw = reader.GetMetaData(key)
    return parse_numbers(path, tag, raw.split('\\'), count, raw)


def tag_text(reader: sitk.ImageFileReader, key: str) -> str:
    """A DICOM tag of a header read, stripped ('' where absent)."""
    return reader.GetMetaData(key).strip(' \x00') \
        if reader.HasMetaDataKey(key) else ''


def int_tag(reader: sitk.ImageFileReader, key: str, default: int) -> int:
    """A DICOM tag as an integer (``default`` where absent or none)."""
    try:
        return int(tag_text(reader, key) or default)
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
    tag is absent (refused by :func:`check_stack`: GDCM would use 1 mm)."""
    if not reader.HasMetaDataKey('0028|0030'):
        return None
    values = _floats(reader, '0028|0030', path, 2)
    if not np.all(values > 0) or np.any(values > MAX_PIXEL_SPACING_MM):
        raise ValueError(
            f'{path}: DICOM tag PixelSpacing (0028,0030) '
            f'{reader.GetMetaData("0028|0030")!r}: a pixel spacing must be '
            f'> 0 and at most {MAX_PIXEL_SPACING_MM:g} mm')
    return values


def _rescale(reader: sitk.ImageFileReader,
             path: str) -> Optional[Tuple[float, float]]:
    """RescaleSlope (0028,1053) and RescaleIntercept (0028,1052); None
    where both are absent, an error where only one is."""
    have = [reader.HasMetaDataKey(k) for k in _RESCALE_KEYS]
    if not any(have):
        return None
    if not all(have):
        missing = _RESCALE_NAMES[have.index(False)]
        present = _RESCALE_NAMES[have.index(True)]
        raise ValueError(
            f'{path}: DICOM tag {present} without {missing}: its Hounsfield '
            'units (stored value x slope + intercept) are unknown; add the '
            'missing tag or remove the file from the series')
    return tuple(float(_floats(reader, key, path, 1)[0])
                 for key in _RESCALE_KEYS)


#: RescaleSlope and RescaleIntercept, as SimpleITK keys and for errors.
_RESCALE_KEYS = ('0028|1053', '0028|1052')
_RESCALE_NAMES = ('RescaleSlope (0028,1053)', 'RescaleIntercept (0028,1052)')


@dataclass
class SliceHeader:
    """What places one slice (or frame) and makes its values HU.

    Args:
        ipp (np.ndarray): ImagePositionPatient (0020,0032), mm.
        iop (np.ndarray): ImageOrientationPatient (0020,0037).
        size (tuple): (rows, columns).
        spacing (np.ndarray, optional): PixelSpacing (0028,0030), (row,
            column) mm; None where absent.
        rescale (tuple, optional): (RescaleSlope, RescaleIntercept); None
            where both are absent.
        photometric (str): PhotometricInterpretation (0028,0004).
        samples (int): SamplesPerPixel (0028,0002).
        rescale_type (str): RescaleType (0028,1054), '' where absent.
        padding (bool): whether PixelPaddingValue (0028,0120) is given.
        frame_of_reference (str): FrameOfReferenceUID (0020,0052).
    """
    ipp: np.ndarray
    iop: np.ndarray
    size: tuple
    spacing: Optional[np.ndarray]
    rescale: Optional[Tuple[float, float]]
    photometric: str = 'MONOCHROME2'
    samples: int = 1
    rescale_type: str = ''
    padding: bool = False
    frame_of_reference: str = ''


def check_grayscale(path: str, samples: int, photometric: str,
                    sop_class: str = '') -> None:
    """Refuse a colour or palette image (a screenshot, a Secondary
    Capture): a CT slice is one grey value per pixel.

    Raises:
        ValueError: naming the file, what it is and what to do.
    """
    if samples == 1 and photometric in MONOCHROME:
        return
    what = f', SOP class {sop_class}' if sop_class else ''
    raise ValueError(
        f'{path}: SamplesPerPixel (0028,0002) {samples}, '
        f'PhotometricInterpretation (0028,0004) {photometric!r}'
        f'{what}: a colour or palette image (a screenshot or Secondary '
        'Capture), not a CT image; move it out of the series folder')


#: The grey-scale photometric interpretations of CT (MONOCHROME1 only
#: inverts the display; HU = stored x slope + intercept either way).
MONOCHROME = ('MONOCHROME1', 'MONOCHROME2')


def _slice_header(path: str) -> SliceHeader:
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
    rows = int_tag(reader, '0028|0010', 0)
    cols = int_tag(reader, '0028|0011', 0)
    samples = int_tag(reader, '0028|0002', 1)
    photometric = reader.GetMetaData('0028|0004').strip() \
        if reader.HasMetaDataKey('0028|0004') else 'MONOCHROME2'
    check_grayscale(path, samples, photometric,
                    tag_text(reader, '0008|0016'))
    frames = int_tag(reader, '0028|0008', 1)
    if frames > 1:
        raise ValueError(
            f'{path}: a multi-frame image (NumberOfFrames (0028,0008) '
            f'{frames}) among the files of a series; give this file itself '
            'to read it (or move it out of the series folder)')
    if _transfer_syntax(path) in _NATIVE_SYNTAXES:
        bits = int_tag(reader, '0028|0100', 16)
        want = rows * cols * samples * int_tag(
            reader, '0028|0008', 1) * bits // 8
        have = osp.getsize(path)
        if have < want:
            raise ValueError(
                f'{path}: truncated: {have} bytes, less than the {want} '
                f'bytes of pixel data its header announces ({rows} rows x '
                f'{cols} columns x {bits} bits)')
        stored = dicom_pixel_data_bytes(path)  # a short element in a file
        if stored is not None and stored < want:  # long enough: garbage
            raise truncated(path, stored, want, 'PixelData (7FE0,0010)')
    ipp = _floats(reader, '0020|0032', path, 3)
    iop = _floats(reader, '0020|0037', path, 6)
    return SliceHeader(ipp, iop, (rows, cols), _pixel_spacing(reader, path),
                       _rescale(reader, path), photometric, samples,
                       tag_text(reader, '0028|1054'),
                       reader.HasMetaDataKey('0028|0120'),
                       tag_text(reader, '0020|0052'))


def looks_like_dicom(path: str) -> bool:
    """The ``DICM`` magic at byte 128 (DICOM Part 10 files)."""
    try:
        with open(path, 'rb') as f:
            f.seek(128)
            return f.read(4) == b'DICM'
    except OSError:
        return False


def _non_image_object(path: str) -> bool:
    """Whether a file GDCM left out is a DICOM object that holds no image:
    read whole by pydicom, of a SOP class that is no image storage (a
    structured report such as a CT dose report, a presentation state, a
    key object selection), without Rows. A slice cut short keeps its
    image SOP class, so it is still refused."""
    try:
        import pydicom
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:  # no pydicom, or a damaged file: refused
        return False
    sop = ds.get('SOPClassUID')
    return sop is not None and 'Image' not in getattr(
        sop, 'name', 'Image') and 'Rows' not in ds


def _files_not_in(folder: str, listed: Sequence[str]) -> List[str]:
    listed = {osp.abspath(f) for f in listed}
    return sorted(name for name in os.listdir(folder)
                  if osp.isfile(osp.join(folder, name))
                  and osp.abspath(osp.join(folder, name)) not in listed)


def check_unread_dicom_files(folder: str, series_ids: Sequence[str]) -> None:
    """Refuse a folder holding DICOM files that no series could read.

    GDCM silently leaves out a file it cannot parse; where that was the
    first or last slice the series just becomes shorter. So any Part 10
    file of the folder that is in none of its series is an error, but for
    a whole object that holds no image (a dose report, a presentation
    state: :func:`_non_image_object`), which is passed over.

    Args:
        folder (str): the folder.
        series_ids (sequence[str]): GDCM's series ids of the folder.

    Raises:
        ValueError: naming the unread files.
    """
    listed = [f for uid in series_ids for f in
              sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid)]
    unread = [name for name in _files_not_in(folder, listed)
              if name.upper() != 'DICOMDIR'
              and looks_like_dicom(osp.join(folder, name))
              and not _non_image_object(osp.join(folder, name))]
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
            then resamples) instead of raising.

    Returns:
        SeriesGeometry: sorted files and positions (of two files at one
        position with the same HU, the first only).

    Raises:
        ValueError: a truncated, colour or unplaceable slice, slices of
            other sizes, orientations, pixel spacings or without the
            rescale the others have, positions off the slice normal, two
            slices at one position with different HU, or (without
            ``resample``) gaps or uneven steps, naming the files.
    """
    files = list(files)
    headers = [_slice_header(f) for f in files]

    def same_hu(i: int, j: int) -> bool:
        return np.array_equal(
            slice_hu(files[i], headers[i]), slice_hu(files[j], headers[j]))

    geometry = check_stack(folder, files, headers, resample, same_hu)
    if geometry.problems:
        unread = _files_not_in(folder, files)
        if unread:
            geometry.problems.append(
                'files of the folder not read as DICOM of this series: '
                f'{unread[:10]}')
    return geometry


def _show(values: Optional[np.ndarray]) -> str:
    return 'none' if values is None else '\\'.join(f'{x:g}' for x in values)


def _check_alike(source: str, names: Sequence[str],
                 headers: Sequence[SliceHeader]) -> None:
    """One size, orientation and pixel spacing; a rescale on all or
    none."""
    first, h0 = names[0], headers[0]
    if h0.spacing is None:
        raise ValueError(
            f'{source}: {first} has no PixelSpacing (0028,0030): the size '
            'of its pixels is unknown (ITK would take 1 mm, so every '
            'in-plane size would be wrong); add the tag to the files')
    for name, h in zip(names, headers):
        if h.size != h0.size or not np.allclose(h.iop, h0.iop, atol=1e-4):
            raise ValueError(
                f'{source}: {name} has {h.size} rows x columns and '
                f'orientation {h.iop.tolist()}, {first} has {h0.size} and '
                f'{h0.iop.tolist()}: not one stack of slices')
        if (h.spacing is None) != (h0.spacing is None) or (
                h.spacing is not None and np.any(
                    np.abs(h.spacing - h0.spacing) >
                    PIXEL_SPACING_REL_TOL * h0.spacing)):
            raise ValueError(
                f'{source}: {name} has PixelSpacing (0028,0030) '
                f'{_show(h.spacing)} mm, {first} has {_show(h0.spacing)}: '
                "the slices would be stacked at the first slice's spacing, "
                "so this one's coordinates and sizes would be wrong; "
                'refusing the series')
    other = next((k for k, h in enumerate(headers) if
                  h.frame_of_reference != h0.frame_of_reference), None)
    if other is not None:
        raise ValueError(
            f'{source}: {first} has FrameOfReferenceUID (0020,0052) '
            f'{h0.frame_of_reference or "none"}, {names[other]} has '
            f'{headers[other].frame_of_reference or "none"}: one series in '
            'two frames of reference, whose positions cannot be stacked; '
            'give the files of each frame of reference in a folder of '
            'their own')
    flat = next((n for n, h in zip(names, headers)
                 if h.rescale is not None and h.rescale[0] == 0), None)
    if flat is not None:
        raise ValueError(
            f'{source}: {flat} has {_RESCALE_NAMES[0]} 0: every pixel would '
            'be the intercept (readers differ: some take 1); correct the '
            'tag or remove the slice')
    have = [h.rescale is not None for h in headers]
    if any(have) and not all(have):
        bare = names[have.index(False)]
        other = names[have.index(True)]
        slope, inter = headers[have.index(True)].rescale
        raise ValueError(
            f'{source}: {bare} has no {_RESCALE_NAMES[0]} / '
            f'{_RESCALE_NAMES[1]} while {other} has them (slope {slope:g}, '
            f'intercept {inter:g}): its Hounsfield units are unknown (its '
            'raw stored values would be taken as HU); add the tags to it or '
            'remove it from the series')


#: Largest distance of a slice's position from the line through the first
#: slice along the normal, in pixels (a 20th: positions written with a
#: few decimals pass, a gantry tilt soon adds up to more).
SHEAR_TOL_PIXELS = 0.05


def check_stack(source: str,
                names: Sequence[str],
                headers: Sequence[SliceHeader],
                resample: bool = False,
                same_hu: Optional[Callable[[int, int], bool]] = None
                ) -> SeriesGeometry:
    """Sort slices (or frames) along their normal and check the steps.

    Args:
        source (str): the folder or file, named first in errors.
        names (sequence[str]): each slice's name (file, or frame number).
        headers (sequence[SliceHeader]): each slice's header.
        resample (bool): report uneven spacing in ``problems`` (the caller
            then resamples) instead of raising.
        same_hu (callable, optional): ``same_hu(i, j)``: whether slices i
            and j hold the same HU; two slices at one position are one
            slice stored twice only if so (None: never).

    Returns:
        SeriesGeometry: sorted names (``files``), positions and ``order``
        (indices into ``names``).

    Raises:
        ValueError: as :func:`check_series_slices`.
    """
    _check_alike(source, names, headers)
    h0 = headers[0]
    row, col = h0.iop[:3], h0.iop[3:]
    normal = np.cross(row, col)
    ipp = np.stack([h.ipp for h in headers])
    positions = ipp @ normal
    order = np.argsort(positions, kind='stable')
    off = ipp - ipp[order[0]] - np.outer(positions - positions[order[0]],
                                         normal)
    far = np.linalg.norm(off, axis=1)
    if far.max() > SHEAR_TOL_PIXELS * float(np.min(h0.spacing)):
        k = int(np.argmax(far))
        raise ValueError(
            f'{source}: ImagePositionPatient (0020,0032) of {names[k]} lies '
            f'{far[k]:.3f} mm off the slice normal through '
            f'{names[order[0]]} (a gantry tilt or sheared stack): the '
            'slices do not form a rectilinear volume and would be shifted '
            'in-plane; resample the series onto a regular grid first (e.g. '
            'dcm2niix, which corrects gantry tilt)')
    keep, dropped = [int(order[0])], []
    for i in order[1:]:
        j = keep[-1]
        if positions[i] - positions[j] >= DUPLICATE_TOL_MM:
            keep.append(int(i))
        elif same_hu is None or not same_hu(j, int(i)):
            raise ValueError(
                f'{source}: {names[j]} and {names[i]} at one position '
                f'({positions[i]:.3f} mm along the normal, '
                f'ImagePositionPatient (0020,0032) {_show(ipp[i])}) but with '
                'different pixels (two acquisitions or reconstructions in '
                'one series?); keep only one of them')
        else:
            dropped.append(f'{osp.basename(names[i])} (= '
                           f'{osp.basename(names[j])})')
    if dropped:
        print_log(f'{source}: {len(dropped)} slice(s) stored twice, read '
                  'once (same position and pixels): ' +
                  ', '.join(dropped[:10]), logger='current',
                  level=logging.WARNING)
    order = np.asarray(keep)
    positions = positions[order]
    rescale = np.array([headers[i].rescale or (1., 0.) for i in order],
                       dtype=float)
    geometry = SeriesGeometry([names[i] for i in order], positions,
                              np.stack([row, col, normal], axis=1),
                              rescale=rescale, order=order,
                              headers=[headers[i] for i in order])
    if len(order) < 2:
        return geometry
    steps = np.diff(positions)
    median = float(np.median(steps))
    problems = []
    for i, step in enumerate(steps):
        a, b = osp.basename(geometry.files[i]), osp.basename(
            geometry.files[i + 1])
        if step > GAP_FACTOR * median:
            problems.append(
                f'a gap of {step:.3f} mm (median step {median:.3f} mm: '
                f'missing slices?) between {a} and {b}')
        elif abs(step - median) > UNEVEN_REL_TOL * median:
            problems.append(f'an uneven step of {step:.3f} mm (median '
                            f'{median:.3f} mm) between {a} and {b}')
    if problems and not resample:
        raise ValueError(
            f'{source}: the slice positions (ImagePositionPatient '
            '(0020,0032) along the normal) are not evenly spaced, so its '
            'z-coordinates would be wrong: ' + '; '.join(problems[:10]) +
            (f' (and {len(problems) - 10} more)' if len(problems) > 10 else
             '') + '. Pass resample_nonuniform=True '
            '(--resample-nonuniform) to interpolate the slices onto a '
            'uniform grid')
    geometry.problems = problems
    return geometry


def resample_slices_uniform(img: sitk.Image,
                            geometry: SeriesGeometry) -> sitk.Image:
    """Interpolate stacked slices onto a uniform grid along the normal.

    Linear interpolation between the two nearest slices (in HU) at steps of
    the median slice interval, from the first slice up to the last (the
    grid does not reach beyond it).

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
    # the grid ends at or before the last slice: nothing is extrapolated
    count = int(np.floor((pos[-1] - pos[0]) / step + 1e-6)) + 1
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
