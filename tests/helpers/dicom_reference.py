# Copyright (c) mmlesion contributors. All rights reserved.
"""A reference reading of DICOM CT written from the standard with pydicom,
and small DICOM files written with pydicom, for testing ``load_ct_volume``.

The reference knows nothing of SimpleITK or of the reader under test:

* HU = stored value x RescaleSlope (0028,1053) + RescaleIntercept
  (0028,1052) of each slice or frame (PS3.3 C.11.1.1.2, C.7.6.16.2.9),
  whatever the PhotometricInterpretation (MONOCHROME1 only changes how the
  values are displayed);
* the world position (patient LPS, mm) of pixel (row r, column c) of a
  slice or frame is IPP + c * PixelSpacing[1] * row direction + r *
  PixelSpacing[0] * column direction, with ImagePositionPatient (0020,0032)
  and ImageOrientationPatient (0020,0037) (PS3.3 C.7.6.2.1.1), taken per
  frame from the Shared / Per-frame Functional Groups of an enhanced
  multi-frame image (PS3.3 C.7.6.16).

Files are written with pydicom only (no ITK), from the stored values of a
real series cut small (:func:`real_stored_slices`).
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (CTImageStorage, EnhancedCTImageStorage,
                         ExplicitVRLittleEndian,
                         SecondaryCaptureImageStorage)

#: UID root of the files written here.
UID_ROOT = '1.2.826.0.1.3680043.8.498.'


def real_stored_slices(folder: str, count: int = 12,
                       size: int = 64) -> np.ndarray:
    """Stored values of ``count`` slices of a real DICOM series, cut to
    ``size`` x ``size`` (every 4th pixel of the central part), in their
    position order.

    Args:
        folder (str): a single-frame CT series (slope 1 intercept -1024).
        count (int): slices kept.
        size (int): rows and columns kept.

    Returns:
        np.ndarray: (count, size, size) uint16 stored values.
    """
    files = sorted(osp.join(folder, n) for n in os.listdir(folder))
    ds = [pydicom.dcmread(f) for f in files]
    ds.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    rows = int(ds[0].Rows)
    step = max(1, rows // (2 * size))
    start = (rows - size * step) // 2
    cut = slice(start, start + size * step, step)
    return np.stack([d.pixel_array[cut, cut] for d in ds[:count]
                     ]).astype(np.uint16)


@dataclass
class Plane:
    """Where one slice or frame lies and how its values become HU.

    Args:
        ipp (np.ndarray): ImagePositionPatient, mm.
        iop (np.ndarray): ImageOrientationPatient (row then column
            direction cosines).
        spacing (tuple): PixelSpacing (between rows, between columns) mm.
        rescale (tuple, optional): (slope, intercept); None: the tags are
            not written.
    """
    ipp: np.ndarray
    iop: np.ndarray
    spacing: tuple = (0.75, 0.75)
    rescale: Optional[tuple] = (1.0, -1024.0)


def stack_planes(count: int,
                 iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
                 origin: Sequence[float] = (-24.0, -30.0, -100.0),
                 step: float = 2.5,
                 spacing: tuple = (0.75, 0.75),
                 positions: Optional[Sequence[float]] = None,
                 rescale: Optional[tuple] = (1.0, -1024.0)) -> List[Plane]:
    """Planes of a stack: slice k at ``origin + positions[k] * normal``
    (default ``k * step``), normal = row x column direction."""
    iop = np.asarray(iop, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    if positions is None:
        positions = step * np.arange(count)
    return [
        Plane(np.asarray(origin, float) + float(p) * normal, iop.copy(),
              tuple(spacing), rescale) for p in positions
    ]


def _ds(text: Sequence[float]) -> List[str]:
    """Decimal strings (at most 16 characters) of numbers."""
    return [f'{float(v):.10g}'[:16] for v in text]


def _image_pixel(ds: Dataset, stored: np.ndarray, photometric: str,
                 signed: bool) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(signed)
    values = stored.astype(np.int16 if signed else np.uint16)
    ds.PixelData = values.tobytes()
    if stored.ndim == 3:
        ds.NumberOfFrames = stored.shape[0]


def _instance(sop_class: str, series_uid: str, number: int,
              modality: str) -> Dataset:
    """A dataset with its file meta, SOP, patient, study and series."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    sop = f'{series_uid}.{number}'
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop
    _patient_study(ds, series_uid, modality)
    return ds


def _patient_study(ds: Dataset, series_uid: str, modality: str) -> None:
    ds.PatientName = 'Reference^Reading'
    ds.PatientID = 'REF1'
    ds.StudyInstanceUID = UID_ROOT + '1'
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = series_uid + '.0'
    ds.StudyDate, ds.StudyTime = '20260101', '120000'
    ds.StudyID, ds.SeriesNumber, ds.AccessionNumber = '1', '1', ''
    ds.ReferringPhysicianName = ''
    ds.Modality = modality


def _gdcm_jpeg_lossless(plane: np.ndarray) -> bytes:
    """One frame as encapsulated JPEG Lossless SV1 pixel data, encoded by
    GDCM (through SimpleITK)."""
    import tempfile

    import SimpleITK as sitk
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'frame.dcm')
        writer = sitk.ImageFileWriter()
        writer.SetImageIO('GDCMImageIO')
        writer.SetFileName(path)
        writer.UseCompressionOn()
        writer.SetCompressor('JPEG')
        writer.Execute(sitk.GetImageFromArray(plane[None]))
        return pydicom.dcmread(path).PixelData


def _save(ds: Dataset, path: str, syntax: str) -> None:
    """Save with the transfer syntax ``syntax`` (pixel data compressed by
    pydicom where it is an encapsulated one)."""
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    uid = pydicom.uid.UID(syntax)
    if uid == pydicom.uid.JPEGLosslessSV1:  # pydicom has no encoder
        ds.PixelData = _gdcm_jpeg_lossless(ds.pixel_array)
        ds['PixelData'].VR = 'OB'
        ds.file_meta.TransferSyntaxUID = uid
    elif uid.is_compressed:
        ds.compress(uid, encoding_plugin='pyjpegls'
                    if uid == pydicom.uid.JPEGLSLossless else '')
    elif uid == pydicom.uid.ExplicitVRBigEndian:
        # pydicom writes the elements big-endian; OW pixel data must be
        # swapped by the writer (it is not)
        arr = np.frombuffer(ds.PixelData, '<u2')
        ds.PixelData = arr.astype('>u2').tobytes()
        ds.file_meta.TransferSyntaxUID = uid
    else:
        ds.file_meta.TransferSyntaxUID = uid
    ds.save_as(path, enforce_file_format=True)


def write_slice(path: str,
                stored: np.ndarray,
                plane: Plane,
                series_uid: str,
                number: int,
                photometric: str = 'MONOCHROME2',
                syntax: str = ExplicitVRLittleEndian,
                signed: bool = False,
                modality: str = 'CT',
                extra: Optional[dict] = None) -> str:
    """Write one single-frame CT Image Storage file with pydicom.

    Args:
        path (str): the file.
        stored (np.ndarray): (rows, columns) stored values.
        plane (Plane): its geometry and rescale.
        series_uid (str): SeriesInstanceUID.
        number (int): InstanceNumber (and the SOP instance UID suffix).
        photometric (str): MONOCHROME1 or MONOCHROME2.
        syntax (str): transfer syntax UID.
        signed (bool): PixelRepresentation 1 (int16), else uint16 12 bits.
        modality (str): Modality.
        extra (dict, optional): further keywords set on the dataset.

    Returns:
        str: the path.
    """
    ds = _instance(CTImageStorage, series_uid, number, modality)
    ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
    ds.InstanceNumber = number
    ds.ImagePositionPatient = _ds(plane.ipp)
    ds.ImageOrientationPatient = _ds(plane.iop)
    ds.PixelSpacing = _ds(plane.spacing)
    ds.SliceThickness = '1'
    if plane.rescale is not None:
        ds.RescaleSlope = _ds(plane.rescale[:1])[0]
        ds.RescaleIntercept = _ds(plane.rescale[1:])[0]
        ds.RescaleType = 'HU'
    _image_pixel(ds, stored, photometric, signed)
    ds.update(extra or {})
    _save(ds, path, syntax)
    return path


def write_series(folder: str,
                 stored: np.ndarray,
                 planes: Sequence[Plane],
                 series_uid: str = UID_ROOT + '2',
                 names: Optional[Sequence[str]] = None,
                 **kwargs) -> List[str]:
    """One file per slice (``stored[k]`` at ``planes[k]``); ``names``
    default ``IM{k}``; other keywords go to :func:`write_slice`."""
    os.makedirs(folder, exist_ok=True)
    names = names or [f'IM{k:03d}' for k in range(len(planes))]
    return [
        write_slice(
            osp.join(folder, name), stored[k], planes[k], series_uid, k + 1,
            **kwargs) for k, name in enumerate(names)
    ]


def _item(**values) -> Dataset:
    item = Dataset()
    item.update(values)
    return item


def write_enhanced(path: str,
                   stored: np.ndarray,
                   planes: Sequence[Plane],
                   series_uid: str = UID_ROOT + '3',
                   shared_geometry: bool = True,
                   syntax: str = ExplicitVRLittleEndian,
                   photometric: str = 'MONOCHROME2') -> str:
    """Write an Enhanced CT Image Storage file, frame f = ``stored[f]`` at
    ``planes[f]`` (PlanePositionSequence per frame; orientation, pixel
    measures and rescale shared when ``shared_geometry`` and equal for all
    frames, else per frame)."""
    ds = _instance(EnhancedCTImageStorage, series_uid, 1, 'CT')
    ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL', 'NONE']
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = '20260101', '120000'

    def measures(p):
        return _item(PixelSpacing=_ds(p.spacing), SliceThickness='1')

    def rescale(p):
        return _item(RescaleSlope=_ds(p.rescale[:1])[0],
                     RescaleIntercept=_ds(p.rescale[1:])[0],
                     RescaleType='HU')

    same = all(
        np.allclose(p.iop, planes[0].iop) and p.spacing == planes[0].spacing
        and p.rescale == planes[0].rescale for p in planes)
    shared = _item()
    if shared_geometry and same:
        shared.PlaneOrientationSequence = DicomSequence(
            [_item(ImageOrientationPatient=_ds(planes[0].iop))])
        shared.PixelMeasuresSequence = DicomSequence([measures(planes[0])])
        shared.PixelValueTransformationSequence = DicomSequence(
            [rescale(planes[0])])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k, p in enumerate(planes):
        item = _item(
            PlanePositionSequence=DicomSequence(
                [_item(ImagePositionPatient=_ds(p.ipp))]),
            FrameContentSequence=DicomSequence(
                [_item(InStackPositionNumber=k + 1, StackID='1')]))
        if not (shared_geometry and same):
            item.PlaneOrientationSequence = DicomSequence(
                [_item(ImageOrientationPatient=_ds(p.iop))])
            item.PixelMeasuresSequence = DicomSequence([measures(p)])
            item.PixelValueTransformationSequence = DicomSequence(
                [rescale(p)])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    _image_pixel(ds, stored, photometric, signed=False)
    _save(ds, path, syntax)
    return path


def write_non_image(path: str, series_uid: str) -> str:
    """An X-Ray Radiation Dose SR (a CT dose report: no pixels)."""
    ds = _instance('1.2.840.10008.5.1.4.1.1.88.67', series_uid, 99, 'SR')
    ds.ValueType = 'CONTAINER'
    _save(ds, path, ExplicitVRLittleEndian)
    return path


def write_secondary_capture_rgb(path: str, series_uid: str) -> str:
    """An RGB Secondary Capture (a screenshot) of 8 x 8 pixels."""
    ds = _instance(SecondaryCaptureImageStorage, series_uid, 1, 'OT')
    ds.ConversionType = 'WSD'
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = 'RGB'
    ds.PlanarConfiguration = 0
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = (np.arange(8 * 8 * 3) % 256).astype(np.uint8).tobytes()
    _save(ds, path, ExplicitVRLittleEndian)
    return path


def series_uid(number: int) -> str:
    """SeriesInstanceUID ``number`` under :data:`UID_ROOT`."""
    return f'{UID_ROOT}9.{number}'


# ------------------------------------------------------- reference reading
@dataclass
class RefFrame:
    """One slice or frame as the standard reads it."""
    hu: np.ndarray
    ipp: np.ndarray
    iop: np.ndarray
    spacing: np.ndarray
    source: str


def _from_group(groups, seq: str, keyword: str):
    for g in groups:
        if g is not None and seq in g and len(g[seq].value):
            item = g[seq].value[0]
            if keyword in item:
                return item[keyword].value
    return None


def reference_frames(paths: Sequence[str]) -> List[RefFrame]:
    """Every slice or frame of ``paths`` read from the standard.

    Raises:
        ValueError: a slice without a rescale or plane tag (the reference
            itself does not decide such files).
    """
    out = []
    for path in paths:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array.astype(np.float64)
        if 'PerFrameFunctionalGroupsSequence' in ds:
            shared = ds.SharedFunctionalGroupsSequence[0] \
                if 'SharedFunctionalGroupsSequence' in ds else None
            for f, per in enumerate(ds.PerFrameFunctionalGroupsSequence):
                groups = (per, shared)
                slope = _from_group(groups,
                                    'PixelValueTransformationSequence',
                                    'RescaleSlope')
                inter = _from_group(groups,
                                    'PixelValueTransformationSequence',
                                    'RescaleIntercept')
                out.append(RefFrame(
                    pixels[f] * float(slope) + float(inter),
                    np.array(_from_group(groups, 'PlanePositionSequence',
                                         'ImagePositionPatient'), float),
                    np.array(_from_group(groups, 'PlaneOrientationSequence',
                                         'ImageOrientationPatient'), float),
                    np.array(_from_group(groups, 'PixelMeasuresSequence',
                                         'PixelSpacing'), float),
                    f'{path}#{f}'))
            continue
        if 'RescaleSlope' not in ds or 'RescaleIntercept' not in ds:
            raise ValueError(f'{path}: no rescale: the reference does not '
                             'decide')
        out.append(RefFrame(
            pixels * float(ds.RescaleSlope) + float(ds.RescaleIntercept),
            np.array(ds.ImagePositionPatient, float),
            np.array(ds.ImageOrientationPatient, float),
            np.array(ds.PixelSpacing, float), path))
    return out


def frame_world(frame: RefFrame) -> np.ndarray:
    """(rows, columns, 3) LPS mm of each pixel of a frame."""
    rows, cols = frame.hu.shape
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing='ij')
    return (frame.ipp[None, None] +
            c[..., None] * frame.spacing[1] * frame.iop[None, None, :3] +
            r[..., None] * frame.spacing[0] * frame.iop[None, None, 3:])


def volume_index(vol, world: np.ndarray) -> np.ndarray:
    """Continuous (z, y, x) index of world points in a returned volume,
    from its origin, spacing and direction alone."""
    spacing_xyz = np.asarray(vol.spacing_zyx, float)[::-1]
    matrix = np.asarray(vol.direction, float) * spacing_xyz[None, :]
    ijk = np.linalg.solve(matrix,
                          (world.reshape(-1, 3) - vol.origin_xyz).T).T
    return ijk[:, ::-1].reshape(world.shape)


def assert_matches_reference(vol, frames: Sequence[RefFrame],
                             atol_hu: float = 1e-3,
                             atol_index: float = 1e-3) -> None:
    """Every reference voxel lies on a voxel of ``vol`` holding its HU,
    and every voxel of ``vol`` is one reference voxel."""
    shape = np.asarray(vol.array.shape)
    seen = np.zeros(vol.array.shape, bool)
    for frame in frames:
        zyx = volume_index(vol, frame_world(frame)).reshape(-1, 3)
        near = np.round(zyx)
        worst = float(np.abs(zyx - near).max())
        assert worst < atol_index, (
            f'{frame.source}: a voxel lies {worst:.3f} voxels off the grid')
        near = near.astype(int)
        assert np.all(near >= 0) and np.all(near < shape), (
            f'{frame.source}: outside the volume {tuple(shape)}: index '
            f'range {near.min(0)} .. {near.max(0)}')
        got = vol.array[near[:, 0], near[:, 1], near[:, 2]]
        want = frame.hu.reshape(-1)
        bad = np.abs(got - want) > atol_hu + 1e-6 * np.abs(want)
        assert not bad.any(), (
            f'{frame.source}: {int(bad.sum())} voxels differ, e.g. '
            f'{got[bad][:3]} vs reference {want[bad][:3]}')
        seen[near[:, 0], near[:, 1], near[:, 2]] = True
    assert seen.all(), f'{int((~seen).sum())} voxels of no reference voxel'


def _voxel_world(vol):
    """Every (z, y, x) index of a volume and its world position (LPS mm),
    from its origin, spacing and direction alone."""
    zyx = np.stack(np.meshgrid(*[np.arange(n) for n in vol.array.shape],
                               indexing='ij'), -1).reshape(-1, 3)
    spacing_xyz = np.asarray(vol.spacing_zyx, float)[::-1]
    world = vol.origin_xyz + (np.asarray(vol.direction) @ (
        zyx[:, ::-1] * spacing_xyz).T).T
    return zyx, world


def assert_matches_interpolated(vol, frames: Sequence[RefFrame],
                                atol_hu: float = 1e-2) -> None:
    """Every voxel of ``vol`` lies on the in-plane grid of the reference
    slices (all of one orientation) and holds the linear interpolation,
    along the normal, of the two reference slices around it."""
    iop, spacing = frames[0].iop, frames[0].spacing
    normal = np.cross(iop[:3], iop[3:])
    frames = sorted(frames, key=lambda f: float(f.ipp @ normal))
    pos = np.array([f.ipp @ normal for f in frames])
    hu = np.stack([f.hu for f in frames])
    zyx, world = _voxel_world(vol)
    rel = world - frames[0].ipp
    col = rel @ iop[:3] / spacing[1]
    row = rel @ iop[3:] / spacing[0]
    for name, index in (('row', row), ('column', col)):
        assert np.abs(index - np.round(index)).max() < 1e-3, (
            f'voxels off the reference {name} grid')
    row, col = np.round(row).astype(int), np.round(col).astype(int)
    t = world @ normal
    assert t.min() > pos[0] - 1e-3 and t.max() < pos[-1] + 1e-3, (
        f'volume spans {t.min():.3f} .. {t.max():.3f} mm along the normal, '
        f'the slices {pos[0]:.3f} .. {pos[-1]:.3f}')
    upper = np.clip(np.searchsorted(pos, t), 1, len(pos) - 1)
    weight = np.clip((t - pos[upper - 1]) / (pos[upper] - pos[upper - 1]),
                     0, 1)
    want = (1 - weight) * hu[upper - 1, row, col] + weight * hu[upper, row,
                                                                col]
    got = vol.array[zyx[:, 0], zyx[:, 1], zyx[:, 2]]
    worst = float(np.abs(got - want).max())
    assert worst < atol_hu + 1e-5 * np.abs(want).max(), (
        f'interpolated HU differ by up to {worst:g}')


def write_dicomdir(root: str, paths: Sequence[str]) -> List[str]:
    """An export: ``paths`` copied under ``root`` with a DICOMDIR (pydicom
    FileSet); returns the files as written there."""
    from pydicom.fileset import FileSet
    fileset = FileSet()
    for path in paths:
        fileset.add(path)
    fileset.write(root)
    return [instance.path for instance in fileset]


def assert_matches_trilinear(vol, frames: Sequence[RefFrame],
                             outside: float, atol_hu: float = 0.05) -> None:
    """A volume resampled from an evenly spaced stack: every voxel inside
    the stack holds the trilinear interpolation of the reference voxels
    around its world position, every voxel more than half a voxel
    outside holds ``outside``."""
    iop, spacing = frames[0].iop, frames[0].spacing
    normal = np.cross(iop[:3], iop[3:])
    frames = sorted(frames, key=lambda f: float(f.ipp @ normal))
    hu = np.stack([f.hu for f in frames])
    pos = np.array([f.ipp @ normal for f in frames])
    step = (pos[-1] - pos[0]) / (len(pos) - 1)
    zyx, world = _voxel_world(vol)
    rel = world - frames[0].ipp
    index = np.stack([rel @ normal / step, rel @ iop[3:] / spacing[0],
                      rel @ iop[:3] / spacing[1]], -1)  # (slice, row, col)
    size = np.asarray(hu.shape)
    got = vol.array[zyx[:, 0], zyx[:, 1], zyx[:, 2]]
    far = np.any((index < -0.5 - 1e-3) | (index > size - 0.5 + 1e-3), 1)
    assert np.all(got[far] == outside), 'voxels outside the stack not ' \
        f'{outside}: {np.unique(got[far][got[far] != outside])[:5]}'
    inside = np.all((index >= 0) & (index <= size - 1), 1)
    assert inside.sum() > 0.2 * len(got), 'too few voxels inside'
    idx = index[inside]
    low = np.minimum(np.floor(idx).astype(int), size - 2)
    frac = idx - low
    want = np.zeros(len(idx))
    for corner in np.ndindex(2, 2, 2):
        c = np.asarray(corner)
        weight = np.prod(np.where(c, frac, 1 - frac), 1)
        k, r, q = (low + c).T
        want += weight * hu[k, r, q]
    worst = float(np.abs(got[inside] - want).max())
    assert worst < atol_hu + 1e-5 * np.abs(want).max(), (
        f'resampled HU differ from trilinear by up to {worst:g}')
