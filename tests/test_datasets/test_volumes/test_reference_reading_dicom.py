# Copyright (c) mmlesion contributors. All rights reserved.
"""``load_ct_volume`` on DICOM CT, class by class, against a reference
reading written from the standard with pydicom
(:mod:`tests.helpers.dicom_reference`): where the reference is
unambiguous, every reference voxel is found at its world position (LPS mm)
in the returned volume with its HU; where the input is ambiguous or
invalid, the reader refuses in one line naming the file and the tag.

The variants are cut from a real series (TotalSegmentator's example, 64 x
64 pixels, a few slices) and drawn by seeded generators.
"""
import os
import os.path as osp
import shutil

import numpy as np
import pydicom
import pytest
from pydicom import uid as syntaxes

from mmlesion.datasets.volumes import VolumeOptions, load_ct_volume
from mmlesion.testing import shared_data_root
from tests.helpers import dicom_reader_checks as checks
from tests.helpers import dicom_reference as ref

N = 8  # slices of a variant


@pytest.fixture(scope='module')
def stored():
    return checks.real_stored_or_skip(N, 64)


_matches, _refused = checks.matches, checks.refused


def test_generator_writes_the_stored_values(stored, tmp_path):
    """The files hold what was meant, for every transfer syntax used."""
    for k, syntax in enumerate(_SYNTAXES):
        paths = ref.write_series(str(tmp_path / str(k)), stored[:2],
                                 ref.stack_planes(2), syntax=syntax)
        for path, plane in zip(paths, stored[:2]):
            ds = pydicom.dcmread(path)
            assert ds.file_meta.TransferSyntaxUID == syntax
            np.testing.assert_array_equal(ds.pixel_array, plane)


# ------------------------------------------------------- slice order
def test_shuffled_files(stored, tmp_path):
    rng = np.random.default_rng(1)
    for v in range(4):
        perm = rng.permutation(N)
        planes = ref.stack_planes(N, step=float(rng.uniform(0.5, 5)))
        names = [f'IM{p:03d}' for p in perm]  # file order != position
        _matches(ref.write_series(str(tmp_path / str(v)), stored, planes,
                                  names=names))


# --------------------------------------------- uneven and missing slices
def test_uneven_positions_refused_or_interpolated(stored, tmp_path):
    rng = np.random.default_rng(2)
    for v in range(3):
        pos = np.cumsum(rng.uniform(1.0, 3.0, N)) - 1.0
        folder = str(tmp_path / str(v))
        paths = ref.write_series(folder, stored,
                                 ref.stack_planes(N, positions=pos))
        _refused(folder, folder, 'ImagePositionPatient (0020,0032)',
                 'resample_nonuniform=True')
        vol = load_ct_volume(
            folder, scan_checks=dict(resample_nonuniform=True))
        ref.assert_matches_interpolated(vol, ref.reference_frames(paths))


def test_missing_slices(stored, tmp_path):
    rng = np.random.default_rng(3)
    for v in range(3):
        gone = int(rng.integers(1, N - 1))
        keep = [k for k in range(N) if k != gone]
        planes = ref.stack_planes(N, step=2.0)
        folder = str(tmp_path / str(v))
        paths = ref.write_series(folder, stored[keep],
                                 [planes[k] for k in keep])
        _refused(folder, 'gap of 4.000 mm', 'resample_nonuniform=True')
        vol = load_ct_volume(
            folder, scan_checks=dict(resample_nonuniform=True))
        assert vol.shape_zyx[0] == N
        ref.assert_matches_interpolated(vol, ref.reference_frames(paths))


def test_slice_without_geometry_tag_refused(stored, tmp_path):
    rng = np.random.default_rng(13)
    for v, (tag, number) in enumerate((('ImagePositionPatient', '0020,0032'),
                                       ('ImageOrientationPatient',
                                        '0020,0037'),
                                       ('PixelSpacing', '0028,0030'))):
        folder = str(tmp_path / str(v))
        paths = ref.write_series(folder, stored, ref.stack_planes(N))
        bare = paths if tag == 'PixelSpacing' else [
            paths[int(rng.integers(N))]]
        for path in bare:
            ds = pydicom.dcmread(path)
            delattr(ds, tag)
            ds.save_as(path)
        _refused(folder, bare[0] if len(bare) == 1 else folder, number)


# -------------------------------------------------------------- duplicates
def test_duplicate_slices(stored, tmp_path, log_messages):
    rng = np.random.default_rng(4)
    planes = ref.stack_planes(N)
    for v in range(3):
        k = int(rng.integers(0, N))
        folder = str(tmp_path / f'same{v}')
        paths = ref.write_series(folder, stored, planes)
        copy = ref.write_slice(osp.join(folder, 'COPY'), stored[k],
                               planes[k], ref.UID_ROOT + '2', 100 + k)
        # one slice stored twice: the reading is unambiguous, and said
        log_messages.clear()
        vol = _matches(paths)
        assert vol.shape_zyx[0] == N
        said = [m for m in log_messages if 'stored twice' in m]
        assert len(said) == 1 and 'COPY' in said[0], said
        other = stored[k].copy()
        other[10:20, 10:20] += 1 + v
        ref.write_slice(copy, other, planes[k], ref.UID_ROOT + '2', 100 + k)
        for resample in (False, True):
            _refused(folder, 'ImagePositionPatient (0020,0032)',
                     'different pixels', osp.basename(paths[k]), 'COPY',
                     scan_checks=dict(resample_nonuniform=resample))


# ------------------------------------------------------ per-slice rescale
def test_rescale_varying_across_slices(stored, tmp_path):
    rng = np.random.default_rng(5)
    for v in range(4):
        planes = ref.stack_planes(N)
        for p in planes:
            p.rescale = (float(rng.choice([0.25, 0.5, 1.0, 2.0])),
                         float(np.round(rng.uniform(-1100, -900), 2)))
        _matches(ref.write_series(str(tmp_path / str(v)), stored, planes))


def test_rescale_missing_on_one_slice_refused(stored, tmp_path):
    rng = np.random.default_rng(6)
    for v in range(3):
        k = int(rng.integers(0, N))
        planes = ref.stack_planes(N)
        planes[k].rescale = None
        folder = str(tmp_path / str(v))
        paths = ref.write_series(folder, stored, planes)
        _refused(folder, paths[k], 'RescaleSlope (0028,1053)',
                 'RescaleIntercept (0028,1052)', 'add the tags')
    planes[k].rescale = (0.0, -1024.0)  # a slope of 0: no image
    paths = ref.write_series(folder, stored, planes)
    _refused(folder, paths[k], 'RescaleSlope (0028,1053) 0')
    ds = pydicom.dcmread(paths[0])
    del ds.RescaleIntercept
    ds.save_as(paths[0])
    _refused(folder, paths[0], 'RescaleSlope (0028,1053) without '
             'RescaleIntercept (0028,1052)')


# ---------------------------------------------- photometric interpretation
def test_monochrome1_and_2(stored, tmp_path):
    rng = np.random.default_rng(7)
    metal = stored.copy()
    metal[:, 30:34, 30:34] = 4095  # 3071 HU
    for v, (values, mix) in enumerate([(stored, 'all'), (metal, 'all'),
                                       (stored, 'mixed'), (metal, 'mixed'),
                                       (stored, 'mixed')]):
        folder = str(tmp_path / str(v))
        os.makedirs(folder)
        planes = ref.stack_planes(N)
        mono1 = rng.random(N) < 0.5 if mix == 'mixed' else np.ones(N, bool)
        paths = [
            ref.write_slice(osp.join(folder, f'IM{k}'), values[k], planes[k],
                            ref.UID_ROOT + '2', k + 1,
                            photometric='MONOCHROME1' if mono1[k] else
                            'MONOCHROME2', signed=bool(v % 2))
            for k in range(N)
        ]
        vol = _matches(paths)
        assert vol.array.min() < -900  # air stays air
    one = ref.write_slice(str(tmp_path / 'one.dcm'), stored[0],
                          ref.stack_planes(1)[0], ref.UID_ROOT + '5', 1,
                          photometric='MONOCHROME1')
    _matches([one], one, options=VolumeOptions(allow_single_slice=True))


# ------------------------------------------------------------ orientation
def _signed_permutations(rng, count):
    out = []
    while len(out) < count:
        perm = rng.permutation(3)
        signs = rng.choice([-1.0, 1.0], 3)
        m = np.eye(3)[:, perm] * signs
        if np.linalg.det(m) < 0:
            m[:, 2] *= -1
        out.append(m)
    return out


def _rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]],
                  [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def test_orientations(stored, tmp_path):
    rng = np.random.default_rng(8)
    named = [np.eye(3), np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0.]]).T,
             np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0.]]).T]
    for v, m in enumerate(named + _signed_permutations(rng, 5)):
        # columns: row direction, column direction, normal
        for reverse in (False, True):
            planes = ref.stack_planes(N, iop=np.r_[m[:, 0], m[:, 1]],
                                      step=-2.0 if reverse else 2.0)
            folder = str(tmp_path / f'{v}{reverse}')
            _matches(ref.write_series(folder, stored, planes))
    # slightly oblique (within oblique_tol_deg): kept with its direction,
    # also with positions written to 0.01 mm (no gantry tilt)
    for v in range(3):
        m = _rotation(rng.normal(size=3), 0.5)
        planes = ref.stack_planes(N, iop=np.r_[m[:, 0], m[:, 1]])
        for p in planes[:N if v == 2 else 0]:
            p.ipp = np.round(p.ipp, 2)
        paths = ref.write_series(str(tmp_path / f'obl{v}'), stored, planes)
        ref.assert_matches_reference(load_ct_volume(osp.dirname(paths[0])),
                                     ref.reference_frames(paths),
                                     atol_index=0.02 if v == 2 else 1e-3)
    m = _rotation((1, 0, 0), 20)
    folder = str(tmp_path / 'oblique20')
    ref.write_series(folder, stored,
                     ref.stack_planes(N, iop=np.r_[m[:, 0], m[:, 1]]))
    _refused(folder, 'oblique scan', 'resample_oblique=True')
    for v, (axis, degrees) in enumerate((((1, 0, 0), 20), ((1, 2, 3), 33))):
        m = _rotation(axis, degrees)
        folder = str(tmp_path / f'resampled{v}')
        paths = ref.write_series(
            folder, stored, ref.stack_planes(N, iop=np.r_[m[:, 0], m[:, 1]]))
        vol = load_ct_volume(folder, options=VolumeOptions(
            resample_oblique=True, default_value=-2000.0))
        ref.assert_matches_trilinear(vol, ref.reference_frames(paths),
                                     outside=-2000.0)


def test_gantry_tilt_refused(stored, tmp_path):
    """Positions sheared off the normal: ITK would stack the slices
    straight, shifting each in-plane."""
    for v, shift in enumerate((0.3, -1.2)):
        planes = ref.stack_planes(N)
        for k, p in enumerate(planes):
            p.ipp = p.ipp + np.array([0, shift * k, 0])
        folder = str(tmp_path / str(v))
        paths = ref.write_series(folder, stored, planes)
        _refused(folder, 'ImagePositionPatient (0020,0032)',
                 'gantry tilt', osp.basename(paths[-1]))


# -------------------------------------------------------- transfer syntax
_SYNTAXES = (syntaxes.ExplicitVRLittleEndian, syntaxes.ImplicitVRLittleEndian,
             syntaxes.ExplicitVRBigEndian,
             syntaxes.DeflatedExplicitVRLittleEndian, syntaxes.RLELossless,
             syntaxes.JPEGLSLossless)


def test_transfer_syntaxes(stored, tmp_path):
    rng = np.random.default_rng(9)
    for v, syntax in enumerate(_SYNTAXES):
        _matches(ref.write_series(str(tmp_path / str(v)), stored,
                                  ref.stack_planes(N), syntax=syntax,
                                  signed=bool(v % 2)))
    folder = str(tmp_path / 'mixed')
    os.makedirs(folder)
    planes = ref.stack_planes(N)
    _matches([
        ref.write_slice(osp.join(folder, f'IM{k}'), stored[k], planes[k],
                        ref.UID_ROOT + '2', k + 1,
                        syntax=_SYNTAXES[int(rng.integers(len(_SYNTAXES)))])
        for k in range(N)
    ])


def test_pixel_representation(stored, tmp_path):
    """Signed and unsigned slices mixed; signed 12 bits stored without
    sign extension in their 16-bit words."""
    rng = np.random.default_rng(14)
    folder = str(tmp_path / 'mixed')
    os.makedirs(folder)
    planes = ref.stack_planes(N)
    signed = rng.random(N) < 0.5
    _matches([
        ref.write_slice(osp.join(folder, f'IM{k}'), stored[k], planes[k],
                        ref.UID_ROOT + '2', k + 1, signed=bool(signed[k]))
        for k in range(N)
    ])
    hu = stored.astype(np.int32) - 1024
    paths = ref.write_series(str(tmp_path / 's12'), hu,
                             ref.stack_planes(N, rescale=(1.0, 0.0)),
                             signed=True)
    for path in paths:
        ds = pydicom.dcmread(path)
        words = np.frombuffer(ds.PixelData, '<i2').astype(np.int32)
        ds.BitsStored, ds.HighBit = 12, 11
        ds.PixelData = (words & 0x0FFF).astype('<u2').tobytes()
        ds.save_as(path)
    assert _matches(paths).array.min() < -1000


# ------------------------------------------------ enhanced multi-frame CT
def test_enhanced_ordered_and_shuffled(stored, tmp_path):
    rng = np.random.default_rng(10)
    for v in range(6):
        m = _signed_permutations(rng, 1)[0] if v > 2 else np.eye(3)
        planes = ref.stack_planes(N, iop=np.r_[m[:, 0], m[:, 1]],
                                  step=float(rng.choice([-10., 2.5, 10.])),
                                  spacing=(0.388672, 0.388672))
        perm = np.arange(N) if v == 0 else rng.permutation(N)
        if v % 2:
            for p in planes:
                p.rescale = (float(rng.choice([0.5, 1, 2])),
                             float(rng.integers(-1100, -900)))
        path = ref.write_enhanced(
            str(tmp_path / f'{v}.dcm'), stored[perm],
            [planes[i] for i in perm], shared_geometry=v % 3 != 2,
            syntax=_SYNTAXES[v % len(_SYNTAXES)],
            photometric='MONOCHROME1' if v == 4 else 'MONOCHROME2')
        vol = _matches([path], path)
        # PixelSpacing of the functional groups, not GDCM's 1 mm
        assert sorted(vol.spacing_zyx)[:2] == pytest.approx([0.388672] * 2)
    # the folder holding it reads the same; beside single-frame slices it
    # is named
    folder = str(tmp_path / 'folder')
    os.makedirs(folder)
    shutil.copy(path, folder)
    _matches([osp.join(folder, f'{v}.dcm')], folder)
    ref.write_series(folder, stored[:2], ref.stack_planes(2),
                     series_uid=ref.UID_ROOT + '3')
    _refused(folder, f'{v}.dcm', 'multi-frame', 'NumberOfFrames (0028,0008)')


def test_enhanced_uneven_duplicate_and_missing_position(stored, tmp_path):
    rng = np.random.default_rng(11)
    for v in range(2):
        pos = np.cumsum(rng.uniform(2.0, 10.0, N))
        perm = rng.permutation(N)
        planes = ref.stack_planes(N, positions=pos)
        path = ref.write_enhanced(str(tmp_path / f'{v}.dcm'), stored[perm],
                                  [planes[i] for i in perm])
        _refused(path, path, 'ImagePositionPatient (0020,0032)', 'frame ',
                 'resample_nonuniform=True')
        vol = load_ct_volume(
            path, scan_checks=dict(resample_nonuniform=True))
        ref.assert_matches_interpolated(vol, ref.reference_frames([path]))
    planes = ref.stack_planes(N)
    dup = list(range(N)) + [3]
    path = ref.write_enhanced(str(tmp_path / 'dup.dcm'), stored[dup],
                              [planes[i] for i in dup])
    vol = _matches([path], path)  # frame 4 stored twice: one slice
    assert vol.shape_zyx[0] == N
    values = stored[dup].copy()
    values[-1, 0, 0] += 7
    path = ref.write_enhanced(str(tmp_path / 'dup2.dcm'), values,
                              [planes[i] for i in dup])
    _refused(path, path, 'frame 4 and frame 9', 'different pixels')
    ds = pydicom.dcmread(path)
    del ds.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence
    ds.save_as(path)
    _refused(path, path, 'frame 3', 'PlanePositionSequence',
             'ImagePositionPatient (0020,0032)')
    del ds.PerFrameFunctionalGroupsSequence  # no frame has a position
    ds.save_as(path)
    _refused(path, path, 'NumberOfFrames (0028,0008)', '(5200,9230)')


# --------------------------------------------- several series in one tree
def test_localizer_and_screenshot_beside_the_series(stored, tmp_path):
    folder = str(tmp_path / 'tree')
    paths = ref.write_series(folder, stored, ref.stack_planes(N))
    ref.write_secondary_capture_rgb(osp.join(folder, 'SC'),
                                    ref.series_uid(1))
    ref.write_series(folder, stored[:1],
                     ref.stack_planes(1, iop=(0, 1, 0, 0, 0, -1)),
                     series_uid=ref.series_uid(2), names=['LOC'],
                     extra=dict(ImageType=['ORIGINAL', 'PRIMARY',
                                           'LOCALIZER']))
    # a CT dose report (an SR, no image) of the series and of its own
    for k, uid in enumerate((ref.UID_ROOT + '2', ref.series_uid(7))):
        ref.write_non_image(osp.join(folder, f'SR{k}'), uid)
    vol = _matches(paths, folder)
    assert vol.series_uid == ref.UID_ROOT + '2'
    # a second volume series: the choice is the user's
    ref.write_series(folder, stored[:3], ref.stack_planes(3),
                     series_uid=ref.series_uid(3), names=['A', 'B', 'C'])
    _refused(folder, folder, 'series_uid', ref.series_uid(3),
             'a localizer', 'not a CT image')
    # a screenshot inside the series itself: named for what it is
    shutil.rmtree(folder)
    paths = ref.write_series(folder, stored, ref.stack_planes(N))
    sc = ref.write_secondary_capture_rgb(osp.join(folder, 'SC'),
                                         ref.UID_ROOT + '2')
    _refused(folder, sc, 'SamplesPerPixel (0028,0002) 3', "'RGB'",
             'not a CT image')
    # a slice cut before its position is no report: refused, not skipped
    os.remove(sc)
    data = open(paths[2], 'rb').read()
    open(paths[2], 'wb').write(data[:data.find(b'\x20\x00\x32\x00')])
    _refused(folder, 'could not read', osp.basename(paths[2]))


def test_dicomdir_export(stored, tmp_path):
    rng = np.random.default_rng(12)
    series = ref.write_series(str(tmp_path / 'a'), stored,
                              ref.stack_planes(N),
                              names=[f'IM{p}' for p in rng.permutation(N)])
    root = str(tmp_path / 'export')
    written = ref.write_dicomdir(root, series)
    vol = _matches(sorted(written), root)
    assert vol.meta['series_folder'] == osp.dirname(written[0])
    aside = [ref.write_secondary_capture_rgb(str(tmp_path / 'sc'),
                                             ref.series_uid(5))]
    aside += ref.write_series(
        str(tmp_path / 'loc'), stored[:1],
        ref.stack_planes(1, iop=(0, 1, 0, 0, 0, -1)),
        series_uid=ref.series_uid(6), names=['LOC'],
        extra=dict(ImageType=['ORIGINAL', 'PRIMARY', 'LOCALIZER']))
    root1 = str(tmp_path / 'export1')
    written = ref.write_dicomdir(root1, series + aside)
    _matches(sorted(p for p in written if ref.UID_ROOT + '2.' in str(
        pydicom.dcmread(p).SOPInstanceUID)), root1)
    other = ref.write_series(str(tmp_path / 'b'), stored[:3],
                             ref.stack_planes(3),
                             series_uid=ref.series_uid(4))
    root2 = str(tmp_path / 'export2')
    written = ref.write_dicomdir(root2, series + other)
    folders = sorted({osp.dirname(p) for p in written})
    _refused(root2, root2, 'DICOMDIR', 'give the folder of one series',
             *folders)
    _matches([p for p in written if ref.series_uid(4) in
              str(pydicom.dcmread(p).SeriesInstanceUID)], root2,
             series_uid=ref.series_uid(4))


# ---------------------------------------------------------- the real files
def test_real_files_against_the_reference(stored, tmp_path):
    """The real enhanced CT (0.388672 mm pixels, frames 10 mm apart), also
    with its frames stored in the other order, a real single slice and
    three slices of the real JPEG 2000 series."""
    root = shared_data_root() / 'ct_volumes'
    enhanced = str(root / 'pydicom' / 'eCT_Supplemental.dcm')
    # a perfusion map (RescaleType 'US'): its geometry, read with force_ct
    _refused(enhanced, 'frame 1', "RescaleType (0028,1054) 'US'")
    force = dict(scan_checks=dict(force_ct=True))
    vol = _matches([enhanced], enhanced, **force)
    assert vol.spacing_zyx == pytest.approx((10.0, 0.388672, 0.388672))
    ds = pydicom.dcmread(enhanced)
    frame = ds.Rows * ds.Columns * 2
    ds.PixelData = ds.PixelData[frame:2 * frame] + ds.PixelData[:frame]
    ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence(
        list(ds.PerFrameFunctionalGroupsSequence)[::-1])
    swapped = str(tmp_path / 'swapped.dcm')
    ds.save_as(swapped)
    assert _matches([swapped], swapped, **force).spacing_zyx == \
        vol.spacing_zyx
    small = str(root / 'pydicom' / 'CT_small.dcm')
    _matches([small], small,
             options=VolumeOptions(allow_single_slice=True))
    series = root / 'totalsegmentator' / 'example_ct_dicom'
    os.makedirs(tmp_path / 'j2k')
    copies = [shutil.copy(series / name, tmp_path / 'j2k')
              for name in sorted(os.listdir(series))[5:8]]
    _matches(copies)
