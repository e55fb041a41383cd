# Copyright (c) mmlesion contributors. All rights reserved.
"""``load_ct_volume`` on the DICOM attributes that change HU or position
beyond the plane and rescale tags, against the standard's rules
(:mod:`tests.helpers.dicom_reference` writes the files with pydicom).

* A DICOMDIR export read in a fresh interpreter: nothing the tests import
  (``pydicom.fileset`` for one) can make it work.
* Pixel padding (PS3.3 C.7.5.1.1.2), RescaleType, FrameOfReferenceUID,
  a rescale given twice in an enhanced image and values below air
  (:mod:`mmlesion.datasets.volumes.checks.dicom_values`): the standard's
  rule written here on the raw pixel words, or a refusal in one line.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pydicom
import pytest

from mmlesion.datasets.volumes import CTVolume, VolumeOptions, load_ct_volume
from mmlesion.testing import repo_root
from tests.helpers import dicom_reader_checks as checks
from tests.helpers import dicom_reference as ref

N = 6  # slices of a variant


@pytest.fixture(scope='module')
def stored():
    return checks.real_stored_or_skip(N, 32)


#: Run in a new interpreter: what ``import mmlesion.datasets.volumes``
#: loaded of pydicom, then the volume read from argv[1] saved to argv[2].
_FRESH = """
import sys, json
import numpy as np
from mmlesion.datasets.volumes import load_ct_volume
before = sorted(m for m in sys.modules if m.startswith('pydicom.fileset'))
vol = load_ct_volume(sys.argv[1])
np.save(sys.argv[2], vol.array)
print(json.dumps(dict(before=before, spacing=vol.spacing_zyx,
                      origin=vol.origin_xyz,
                      direction=np.asarray(vol.direction).tolist(),
                      folder=vol.meta['series_folder'])))
"""


def test_dicomdir_export_in_a_fresh_interpreter(stored, tmp_path):
    """The export's root read by a new Python process that imported only
    the reader: the reference voxels at their world positions."""
    series = ref.write_series(str(tmp_path / 'a'), stored,
                              ref.stack_planes(N))
    root = str(tmp_path / 'export')
    written = ref.write_dicomdir(root, series)
    out = str(tmp_path / 'array.npy')
    run = subprocess.run([sys.executable, '-c', _FRESH, root, out],
                         capture_output=True, text=True, timeout=300,
                         cwd=str(repo_root()))
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    # the process had not loaded pydicom.fileset before reading
    assert got['before'] == []
    assert got['folder'] == osp.dirname(written[0])
    vol = CTVolume(np.load(out), got['spacing'], got['origin'],
                   np.asarray(got['direction']))
    ref.assert_matches_reference(vol, ref.reference_frames(sorted(written)))


# ------------------------------------------------------------ pixel padding
def _ring(shape) -> np.ndarray:
    """The pixels outside the circle inscribed in a slice (a scanner's
    padding around its round field)."""
    rows, cols = shape
    r, c = np.ogrid[:rows, :cols]
    return np.hypot(r - (rows - 1) / 2, c - (cols - 1) / 2) >= min(
        rows, cols) / 2


def _set_words(path: str, words: np.ndarray, **tags) -> None:
    """Store raw 16-bit ``words`` as the pixel data (native syntax) and set
    ``tags`` (keyword: (VR, value) for an ambiguous VR, else the value)."""
    ds = pydicom.dcmread(path)
    ds.PixelData = np.asarray(words).astype('<u2').tobytes()
    for key, value in tags.items():
        if isinstance(value, tuple):
            tag = pydicom.datadict.tag_for_keyword(key)
            ds.add_new(tag, *value)
        else:
            setattr(ds, key, value)
    ds.save_as(path)


def _raw_words(path: str) -> np.ndarray:
    """The 16-bit words of a native little-endian file's pixel data, read
    from the bytes (not through a decoder)."""
    ds = pydicom.dcmread(path)
    return np.frombuffer(ds.PixelData, '<u2').reshape(
        (-1, int(ds.Rows), int(ds.Columns))).astype(np.int64)


def _padded_reference(paths, padded, fill):
    """The reference frames with the pixels the standard calls padding
    (``padded(words of the file)``) at ``fill``."""
    frames = []
    for path in paths:
        words = _raw_words(path)
        mine = ref.reference_frames([path])
        for k, frame in enumerate(mine):
            frame.hu[padded(words[k])] = fill
        frames += mine
    return frames


#: (PixelRepresentation, BitsStored, PixelPaddingValue as (VR, value),
#: PixelPaddingRangeLimit or None, words written in the ring, the rule on
#: the raw words). The words are drawn in the padding range; one case
#: holds a padding word outside BitsStored.
_PADDING = [
    (0, 12, ('US', 4095), None, lambda n, g: np.full(n, 4095),
     lambda w: w == 4095),
    (0, 12, ('US', 4095), ('US', 3996),
     lambda n, g: g.integers(3996, 4096, n), lambda w: w >= 3996),
    (0, 12, ('US', 3996), ('US', 4095),
     lambda n, g: g.integers(3996, 4096, n), lambda w: w >= 3996),
    # -2000 in 16-bit words, 12 bits stored: GDCM keeps 2096 (1072 HU)
    (0, 12, ('US', 0xF830), None, lambda n, g: np.full(n, 0xF830),
     lambda w: w == 0xF830),
    (1, 16, ('SS', -2000), ('SS', -2048),
     lambda n, g: g.integers(-2048, -1999, n) & 0xFFFF,
     lambda w: (w >= 0x10000 - 2048) & (w <= 0x10000 - 2000)),
]


@pytest.mark.parametrize('case', range(len(_PADDING)))
def test_pixel_padding_is_fill_not_tissue(stored, tmp_path, case):
    """Series, single file and enhanced image: padding pixels hold the
    fill value (VolumeOptions.default_value), every other pixel its HU;
    a tissue pixel of the padding word's low 12 bits stays tissue."""
    signed, bits, value, limit, draw, padded = _PADDING[case]
    rng = np.random.default_rng(20 + case)
    ring = _ring(stored.shape[1:])
    tags = dict(PixelRepresentation=signed, BitsStored=bits,
                HighBit=bits - 1, PixelPaddingValue=value)
    if limit is not None:
        tags['PixelPaddingRangeLimit'] = limit
    folder = str(tmp_path / 'series')
    paths = ref.write_series(folder, stored, ref.stack_planes(N))
    for k, path in enumerate(paths):
        words = stored[k].astype(np.int64)
        words[ring] = draw(int(ring.sum()), rng)
        words[N // 2, N // 2] = 0x0830  # tissue: 2096 stored, 1072 HU
        _set_words(path, words, **tags)
    for fill in (-1024., -3000.):
        opts = dict(options=VolumeOptions(default_value=fill))
        frames = _padded_reference(paths, padded, fill)
        vol = load_ct_volume(folder, **opts)
        ref.assert_matches_reference(vol, frames)
        assert np.any(vol.array == 1072.)
    single = load_ct_volume(paths[0], options=VolumeOptions(
        allow_single_slice=True))
    ref.assert_matches_reference(single,
                                 _padded_reference(paths[:1], padded, -1024))
    path = ref.write_enhanced(str(tmp_path / 'e.dcm'), stored,
                              ref.stack_planes(N))
    _set_words(path, np.stack([_raw_words(p)[0] for p in paths]), **tags)
    ref.assert_matches_reference(load_ct_volume(path),
                                 _padded_reference([path], padded, -1024))


# --------------------------------------------------------- RescaleType
@pytest.mark.parametrize('kind', ['series', 'file', 'shared', 'per-frame'])
def test_rescale_type_other_than_hu_refused(stored, tmp_path, kind):
    planes = ref.stack_planes(N)
    if kind in ('series', 'file'):
        paths = ref.write_series(str(tmp_path / 's'), stored, planes)
        target = paths[0] if kind == 'file' else osp.dirname(paths[0])
        opts = dict(options=VolumeOptions(allow_single_slice=True))
        for value in ('HU', None):  # HU, and absent: the CT Image's HU
            for path in paths:
                ds = pydicom.dcmread(path)
                ds.RescaleType = value
                if value is None:
                    del ds.RescaleType
                ds.save_as(path)
            checks.matches(paths[:1] if kind == 'file' else paths, target,
                           **opts)
        for path in paths:
            _set_words(path, _raw_words(path)[0], RescaleType='US')
        checks.refused(target, osp.basename(paths[0]),
                       "RescaleType (0028,1054) 'US'", '--force-ct', **opts)
        checks.matches(paths[:1] if kind == 'file' else paths, target,
                       scan_checks=dict(force_ct=True), **opts)
        return
    path = ref.write_enhanced(str(tmp_path / 'e.dcm'), stored, planes,
                              shared_geometry=kind == 'shared')
    ds = pydicom.dcmread(path)
    group = ds.SharedFunctionalGroupsSequence[0] if kind == 'shared' else \
        ds.PerFrameFunctionalGroupsSequence[2]
    group.PixelValueTransformationSequence[0].RescaleType = 'US'
    ds.save_as(path)
    checks.refused(path, path, "RescaleType (0028,1054) 'US'",
                   'frame 1: ' if kind == 'shared' else 'frame 3: ')


# --------------------------------------------------- frames of reference
def test_series_in_two_frames_of_reference_refused(stored, tmp_path):
    rng = np.random.default_rng(30)
    paths = ref.write_series(str(tmp_path / 's'), stored,
                             ref.stack_planes(N))
    moved = sorted(rng.choice(N, 2, replace=False))
    for k in moved:
        ds = pydicom.dcmread(paths[k])
        ds.FrameOfReferenceUID = ref.UID_ROOT + '77'
        ds.save_as(paths[k])
    msg = checks.refused(osp.dirname(paths[0]),
                         'FrameOfReferenceUID (0020,0052)',
                         ref.UID_ROOT + '2.0', ref.UID_ROOT + '77')
    assert osp.basename(paths[moved[0]]) in msg or osp.basename(
        paths[0]) in msg


# ------------------------------- enhanced: rescale shared and per frame
def test_enhanced_rescale_shared_and_per_frame(stored, tmp_path):
    """The standard gives a frame one rescale (per frame or shared): both
    alike are read; two different ones refused naming the frame."""
    planes = ref.stack_planes(N)
    for p in planes:
        p.rescale = (2.0, -2048.0)
    path = ref.write_enhanced(str(tmp_path / 'e.dcm'), stored, planes,
                              shared_geometry=False)
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    shared.PixelValueTransformationSequence = pydicom.Sequence(
        [pydicom.Dataset()])
    item = shared.PixelValueTransformationSequence[0]
    item.RescaleSlope, item.RescaleIntercept, item.RescaleType = \
        '2', '-2048', 'HU'
    ds.save_as(path)
    checks.matches([path], path)
    item.RescaleSlope, item.RescaleIntercept = '1', '-1024'
    ds.save_as(path)
    checks.refused(path, path, 'frame 1: two rescales', 'per-frame 2, -2048',
                   'shared 1, -1024')
    item.RescaleSlope, item.RescaleIntercept, item.RescaleType = \
        '2', '-2048', 'US'
    ds.save_as(path)
    checks.refused(path, path, 'frame 1: RescaleType (0028,1054)', 'HU, US')
    del shared.PixelValueTransformationSequence
    ds.RescaleSlope, ds.RescaleIntercept = '1', '-1024'
    ds.save_as(path)
    checks.refused(path, path, 'per-frame 2, -2048', 'top-level 1, -1024')


# ---------------------------------------------------- values below air
def test_values_below_air_in_the_field_refused(stored, tmp_path):
    """Unsigned 12-bit values declared signed: bone (stored >= 2048)
    becomes -3072 .. -2049 HU inside the field: refused naming the file.
    Values that low outside the field circle (undeclared out-of-field
    fill) are read as they are."""
    ring = _ring(stored.shape[1:])
    folder = str(tmp_path / 'ring')
    paths = ref.write_series(folder, stored, ref.stack_planes(N))
    for path, plane in zip(paths, stored):
        words = plane.astype(np.int64)
        words[ring] = 0x10000 - 2900  # -2900 stored, -3924 HU
        _set_words(path, words, PixelRepresentation=1, BitsStored=16,
                   HighBit=15)
    vol = checks.matches(paths)
    assert vol.array.min() == -3924.
    hot = np.minimum(stored, 2000)
    hot[:, N, N:N + 3] = 3000  # inside the field
    folder = str(tmp_path / 'signed')
    paths = ref.write_series(folder, hot, ref.stack_planes(N))
    for path in paths:
        _set_words(path, _raw_words(path)[0], PixelRepresentation=1,
                   BitsStored=12, HighBit=11)
    checks.refused(folder, osp.basename(paths[0]), '3 pixels',
                   'below -2048 HU', 'PixelRepresentation (0028,0103)',
                   '--force-ct')
    checks.refused(paths[0], paths[0], 'below -2048 HU',
                   options=VolumeOptions(allow_single_slice=True))
    path = ref.write_enhanced(str(tmp_path / 'e.dcm'), hot,
                              ref.stack_planes(N))
    _set_words(path, np.stack([_raw_words(p)[0] for p in paths]),
               PixelRepresentation=1, BitsStored=12, HighBit=11)
    checks.refused(path, path, 'frame 1', 'below -2048 HU')
    load_ct_volume(folder, scan_checks=dict(force_ct=True))


# ------------------------------------------------ images announced, absent
def test_announced_images_missing_warned(stored, tmp_path,
                                         log_messages):
    """Half a series (its files announce twice as many images): read as
    the reference, with one line naming both counts; a whole one quietly."""
    for announced, said in ((N, False), (2 * N, True)):
        folder = str(tmp_path / str(announced))
        paths = ref.write_series(folder, stored, ref.stack_planes(N),
                                 extra=dict(ImagesInAcquisition=announced))
        log_messages.clear()
        checks.matches(paths)
        lines = [m for m in log_messages if 'ImagesInAcquisition' in m]
        assert len(lines) == int(said), lines
        if said:
            assert f'announces {2 * N} images, {N} of this series' in \
                lines[0], lines


# ------------------------------------------------------ Modality LUT
def _add_modality_lut(path: str) -> None:
    ds = pydicom.dcmread(path)
    item = pydicom.Dataset()
    item.add_new(0x00283002, 'US', [4096, 0, 16])  # LUTDescriptor
    item.ModalityLUTType = 'HU'
    item.add_new(0x00283006, 'US', list(range(4096)))  # LUTData
    ds.ModalityLUTSequence = pydicom.Sequence([item])
    ds.save_as(path)


def test_modality_lut_refused(stored, tmp_path):
    """HU from a Modality LUT Sequence: not a CT image's way (GDCM
    ignores the table): refused naming the file, in a series, alone and
    in an enhanced image."""
    rng = np.random.default_rng(40)
    paths = ref.write_series(str(tmp_path / 's'), stored,
                             ref.stack_planes(N))
    k = int(rng.integers(N))
    _add_modality_lut(paths[k])
    checks.refused(osp.dirname(paths[k]), paths[k],
                   'ModalityLUTSequence (0028,3000)')
    checks.refused(paths[k], paths[k], 'ModalityLUTSequence (0028,3000)',
                   options=VolumeOptions(allow_single_slice=True))
    path = ref.write_enhanced(str(tmp_path / 'e.dcm'), stored,
                              ref.stack_planes(N))
    _add_modality_lut(path)
    checks.refused(path, path, 'ModalityLUTSequence (0028,3000)')


# ------------------------------------------- a series over two folders
def _split_export(root: str, moved) -> list:
    """Move the files of DICOMDIR image records ``moved`` (indices) into
    another series folder (SE000009) and rewrite their records; the files
    of the export."""
    path = osp.join(root, 'DICOMDIR')
    ds = pydicom.dcmread(path)
    images = [r for r in ds.DirectoryRecordSequence
              if r.DirectoryRecordType == 'IMAGE']
    for k in moved:
        old = list(images[k].ReferencedFileID)
        new = old[:-2] + ['SE000009', old[-1]]
        os.makedirs(osp.join(root, *new[:-1]), exist_ok=True)
        os.rename(osp.join(root, *old), osp.join(root, *new))
        images[k].ReferencedFileID = new
    ds.save_as(path)
    return [osp.join(root, *r.ReferencedFileID) for r in images]


def test_series_over_two_folders_of_an_export(stored, tmp_path,
                                              log_messages):
    """The export's root reads the files its DICOMDIR lists, in both
    folders, saying so; one of the folders reads its half with a line
    naming the root that holds the whole series."""
    rng = np.random.default_rng(50)
    series = ref.write_series(str(tmp_path / 'a'), stored,
                              ref.stack_planes(N))
    root = str(tmp_path / 'export')
    ref.write_dicomdir(root, series)
    files = _split_export(root, sorted(rng.choice(N, N // 2, False)))
    log_messages.clear()
    checks.matches(files, root)
    assert any('lies in 2 folders' in m and f'the {N} files' in m
               for m in log_messages), log_messages
    half = osp.dirname(files[-1]) if 'SE000009' in files[-1] else \
        osp.dirname(files[0])
    log_messages.clear()
    load_ct_volume(half, scan_checks=dict(resample_nonuniform=True))
    said = [m for m in log_messages if 'DICOMDIR of' in m]
    assert len(said) == 1 and f'lists {N} images' in said[0] and \
        f'{N // 2} are here' in said[0] and root in said[0], log_messages
