# Copyright (c) mmlesion contributors. All rights reserved.
"""The trust boundary: every bad input, one case each.

A file never runs code, a scan is never silently wrong, an annotation or
result file is never taken half-read. Each case is a named parameter (the
``id`` says what it is), built from tiny synthetic files in ``tmp_path``;
the cases that need the real TotalSegmentator CT of ``$MMLESION_SHARED_DATA`` skip
cleanly without it.

Cases (issue item in brackets):

* checkpoints [1, 7] (``ckpt-*``): payloads of ``builtins.exec`` / ``eval``,
  ``subprocess.Popen``, ``importlib.import_module``, ``os.system`` and a
  ``getattr`` that is not a HistoryBuffer statistic are refused naming file
  and global, without running; a checkpoint written by plain mmengine's
  Runner (stock mmdet module) loads safely; ``--trust-checkpoint`` /
  ``MMLESION_TRUST_CHECKPOINTS=1`` is the only way to unpickle more; a
  checkpoint of another model is refused by ``load_model_checkpoint`` and
  ``tools/infer_volume.py`` unless partial loading is allowed;
* scans [2-5] (``SCAN_CASES``): truncated ``.nii.gz`` / ``.nii`` / ``.raw``
  / ``.mha``, ``ElementDataFile`` outside the folder (``../``, absolute),
  ``MET_USHORT`` without rescale, a label map, MR intensities, DICOM with a
  missing slice, two slices at one position, uneven spacing, a truncated
  (also last) slice, a header announcing 60000 rows, Modality MR; the
  switches ``--force-ct`` / ``--resample-nonuniform`` /
  ``--allow-outside-data``; the KiTS19 converter on a truncated scan;
* annotations [5, 6] (``ANNOTATION_CASES``): boxes outside the volume,
  1e308 / inf, an absurd ``center_world``, scan paths outside the data root;
* CSVs [8, evaluator side] (``CSV_CASES``): candidates / annotations /
  seriesuids with a partial last row, a row cut inside a field, missing or
  extra columns, NaN, 1e308; ``eval_luna16.py`` on a half-written file;
* DeepLesion-3D converter [10] (``DL3D_CASES``): bad split, non-numeric
  box, box outside the image, Image_size larger than the slices, missing
  slices, a 2 GB input refused before reading;
* handled earlier: the LENS manual 3D ``.pkl`` runs no code, empty
  and truncated checkpoints name the file.
"""
import argparse
import builtins
import datetime
import importlib
import os
import pickletools
import re
import subprocess
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel

import mmlesion  # noqa: F401  (registers the loader)
from mmlesion.utils import (CheckpointMismatchError, UntrustedCheckpointError,
                            load_local_checkpoint, load_model_checkpoint)
from mmlesion.utils.checkpoints.loader import (
    MMENGINE_HISTORY_BUFFER_GETSTATE, TRUST_ENV)
from mmlesion_cli.common_args import (add_scan_check_arguments,
                                      add_trust_checkpoint_argument)

# --------------------------------------------------------------------------
# 1. checkpoints never run code
# --------------------------------------------------------------------------


class _Payload:
    """Unpickling this calls ``func(*args)``."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    code = f'open({str(marker)!r}, "w").close()'
    return {
        'ckpt-builtins-exec': (builtins.exec, (code, ), 'builtins.exec'),
        'ckpt-builtins-eval': (builtins.eval, (code, ), 'builtins.eval'),
        'ckpt-subprocess-popen':
        (subprocess.Popen, (['touch', str(marker)], ), 'subprocess.Popen'),
        'ckpt-importlib': (importlib.import_module, ('this', ),
                           'importlib.import_module'),
        'ckpt-os-system': (os.system, (f'touch {marker}', ), 'system'),
        'ckpt-getattr-escape': (getattr, (HistoryBuffer, '__init__'),
                                'getattr'),
    }


@pytest.fixture
def untrusted(monkeypatch):
    """No trust switch set, whatever the environment of the test run."""
    monkeypatch.setenv(TRUST_ENV, '0')


@pytest.mark.parametrize('case', list(_payloads('x')))
def test_checkpoint_payload_is_refused_and_not_run(case, tmp_path,
                                                   untrusted):
    marker = tmp_path / 'payload_ran'
    func, args, name = _payloads(marker)[case]
    path = tmp_path / f'{case}.pth'
    torch.save(dict(state_dict={}, meta=_Payload(func, args)), str(path))
    with pytest.raises(UntrustedCheckpointError) as info:
        load_local_checkpoint(str(path))
    msg = str(info.value)
    assert str(path) in msg and name in msg and '--trust-checkpoint' in msg
    assert TRUST_ENV in msg
    assert not marker.exists(), 'the payload ran'


def _pickle_globals(path) -> set:
    """``module name`` of every GLOBAL / STACK_GLOBAL in a checkpoint."""
    with zipfile.ZipFile(path) as zf:
        data = zf.read(next(n for n in zf.namelist()
                            if n.endswith('data.pkl')))
    ops = list(pickletools.genops(data))
    found = set()
    for i, (op, arg, _) in enumerate(ops):
        if op.name == 'GLOBAL':
            found.add(arg)
        elif op.name == 'STACK_GLOBAL':
            found.add(f'{ops[i - 2][1]} {ops[i - 1][1]}')
    return found


class _TinyDetector(nn.Module):
    """A stock mmdet neck with a loss, for mmengine's Runner."""

    def __init__(self):
        super().__init__()
        from mmdet.models.necks import ChannelMapper
        self.neck = ChannelMapper([3], 4, kernel_size=1,
                                  norm_cfg=dict(type='BN'))


class _RunnerModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.det = _TinyDetector()

    def forward(self, inputs, data_samples=None, mode='loss'):
        out = self.det.neck([torch.stack(inputs)])[0]
        return dict(loss=out.pow(2).mean())


def _plain_mmengine_checkpoint(work_dir, monkeypatch) -> str:
    """Train 1 epoch with plain mmengine's Runner; return epoch_1.pth."""
    from mmengine.runner import Runner

    class Data(torch.utils.data.Dataset):
        metainfo = dict(classes=('nodule', ), palette=[(220, 20, 60)])

        def __len__(self):
            return 4

        def __getitem__(self, idx):
            return dict(inputs=torch.full((3, 4, 4), float(idx)))

    # mmengine's own HistoryBuffer pickling (getattr globals), as without
    # mmlesion imported
    monkeypatch.setattr(HistoryBuffer, '__getstate__',
                        MMENGINE_HISTORY_BUFFER_GETSTATE)
    runner = Runner(
        model=_RunnerModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Data(),
            batch_size=2,
            collate_fn=dict(type='pseudo_collate'),
            sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                 begin=0, end=2),
            dict(type='MultiStepLR', milestones=[1], by_epoch=True)
        ],
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1)),
        randomness=dict(seed=0),
        default_scope='mmengine')
    runner.train()
    return str(work_dir / 'epoch_1.pth')


def test_plain_mmengine_checkpoint_loads_safely(tmp_path, monkeypatch,
                                                untrusted):
    path = _plain_mmengine_checkpoint(tmp_path / 'work', monkeypatch)
    monkeypatch.undo()
    monkeypatch.setenv(TRUST_ENV, '0')
    # what plain mmengine writes besides torch's defaults, and nothing else
    assert _pickle_globals(path) - {
        'collections OrderedDict', '_codecs encode', 'torch FloatStorage',
        'torch LongStorage', 'torch._utils _rebuild_tensor_v2'
    } == {
        '__builtin__ getattr', 'collections Counter',
        'mmengine.logging.history_buffer HistoryBuffer', 'numpy dtype',
        'numpy ndarray', 'numpy._core.multiarray _reconstruct',
        'numpy._core.multiarray scalar'
    }
    ckpt = load_local_checkpoint(path)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.statistics('mean') == pytest.approx(buf.mean())
    assert ckpt['meta']['dataset_meta']['classes'] == ('nodule', )
    model = _RunnerModel()
    ckpt = load_model_checkpoint(model, path)
    assert torch.equal(model.det.neck.convs[0].conv.weight,
                       ckpt['state_dict']['det.neck.convs.0.conv.weight'])


def test_trust_switch_is_the_only_way_to_unpickle_more(tmp_path,
                                                       monkeypatch,
                                                       untrusted):
    path = str(tmp_path / 'custom.pth')
    torch.save(dict(state_dict={}, when=datetime.date(2024, 1, 2)), path)
    with pytest.raises(UntrustedCheckpointError, match='custom.pth'):
        load_local_checkpoint(path)
    parser = argparse.ArgumentParser()
    add_trust_checkpoint_argument(parser)
    assert parser.parse_args([]).trust_checkpoint is False
    assert os.environ[TRUST_ENV] == '0'
    assert parser.parse_args(['--trust-checkpoint']).trust_checkpoint
    assert os.environ[TRUST_ENV] == '1'
    assert load_local_checkpoint(path)['when'] == datetime.date(2024, 1, 2)


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_checkpoint_of_another_model_is_refused(tmp_path, untrusted):
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=nn.Sequential(nn.Linear(2, 2)).state_dict()),
               path)
    with pytest.raises(CheckpointMismatchError, match='other.pth'):
        load_model_checkpoint(_model(), path)
    model = _model()
    before = model[0].weight.detach().clone()
    load_model_checkpoint(model, path, allow_partial=True)  # only logged
    assert torch.equal(model[0].weight, before)
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=_model().state_dict()), good)
    assert 'state_dict' in load_model_checkpoint(model, good)


def test_infer_volume_refuses_a_checkpoint_of_another_model(
        tmp_path, capsys, untrusted):
    from tools.infer_volume import main
    path = str(tmp_path / 'other_model.pth')
    torch.save(dict(state_dict=_model().state_dict()), path)
    scan = tmp_path / 'scan.nii.gz'
    import SimpleITK as sitk
    sitk.WriteImage(sitk.GetImageFromArray(
        np.full((4, 8, 8), -1000, np.int16)), str(scan))
    rc = main([
        'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py', path,
        str(scan), '--out-dir', str(tmp_path / 'out')
    ])
    err = capsys.readouterr().err
    assert rc == 1 and 'other_model.pth' in err and 'does not fit' in err
    assert not (tmp_path / 'out' / 'candidates.csv').exists()


# --------------------------------------------------------------------------
# 2-5. scans are never silently wrong
# --------------------------------------------------------------------------


def _ct(shape=(6, 16, 16), seed=0) -> np.ndarray:
    """A CT-like int16 array in HU: air around a body of noisy tissue."""
    rng = np.random.default_rng(seed)
    arr = rng.normal(40, 30, shape).astype(np.int16)
    arr[:, :3] = -1000
    return arr


def _write(path, array, spacing=(0.7, 0.7, 2.0)) -> str:
    from mmlesion.testing.volume_files import write_volume
    return write_volume(str(path), array, spacing_xyz=spacing)


def _truncate(path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def _truncated_nii_gz(tmp_path):
    path = tmp_path / 'scan.nii.gz'
    _write(path, _ct())
    _truncate(path)
    return str(path), r'scan\.nii\.gz: truncated: \d+ of \d+ bytes'


def _truncated_nii(tmp_path):
    path = tmp_path / 'scan.nii'
    _write(path, _ct())
    _truncate(path)
    return str(path), r'scan\.nii: truncated: \d+ of 3424 bytes'


def _truncated_raw(tmp_path):
    _write(tmp_path / 'scan.mhd', _ct())
    _truncate(tmp_path / 'scan.raw')
    return str(tmp_path / 'scan.mhd'), r'scan\.raw: truncated: \d+ of 3072'


def _truncated_mha(tmp_path):
    path = tmp_path / 'scan.mha'
    _write(path, _ct())
    _truncate(path, 0.9)
    return str(path), r'scan\.mha: truncated: \d+ of 3072 bytes'


def _mhd_outside(tmp_path, data_file):
    _write(tmp_path / 'data' / 'scan.mhd', _ct())
    header = tmp_path / 'data' / 'scan.mhd'
    (tmp_path / 'secret.raw').write_bytes(
        (tmp_path / 'data' / 'scan.raw').read_bytes())
    text = header.read_text().replace('ElementDataFile = scan.raw',
                                      f'ElementDataFile = {data_file}')
    header.write_text(text)
    return str(header), r'points outside the header.s folder'


def _mhd_parent(tmp_path):
    return _mhd_outside(tmp_path, '../secret.raw')


def _mhd_absolute(tmp_path):
    return _mhd_outside(tmp_path, str(tmp_path / 'secret.raw'))


def _mhd_ushort(tmp_path):
    """Raw unsigned scanner values (HU + 1024) without rescale."""
    arr = (_ct().astype(np.int32) + 1024).astype(np.uint16)
    return _write(tmp_path / 'ushort.mhd', arr), \
        r'no voxel below -200 HU.*16-bit unsigned.*--force-ct'


def _label_map(tmp_path):
    arr = np.zeros((6, 16, 16), np.uint8)
    arr[2:4, 5:9, 5:9] = 1
    arr[3, 6, 6] = 2
    return _write(tmp_path / 'seg.nii.gz', arr), \
        r'seg\.nii\.gz: only 3 distinct integer values.*label map'


def _mr_values(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.gamma(2, 150, (6, 16, 16)).astype(np.float32)
    return _write(tmp_path / 'mr.nii.gz', arr), r'mr\.nii\.gz: no voxel ' \
        r'below -200 HU.*MR'


def _dicom(tmp_path, z, name='series', modality='CT'):
    from mmlesion.testing.volume_files import (SeriesLayout,
                                               write_dicom_series)
    folder = tmp_path / name
    write_dicom_series(str(folder), '1.2.826.0.1.3680043.2.1125.9',
                       _ct((len(z), 8, 8)),
                       SeriesLayout(spacing_xyz=(0.7, 0.7, 2.0),
                                    z_positions=z, modality=modality))
    return str(folder)


def _dicom_gap(tmp_path):
    return _dicom(tmp_path, [0, 2, 4, 8, 10, 12]), \
        r'series: the slice positions.*gap of 4\.000 mm.*_2\.dcm and ' \
        r'\S+_3\.dcm.*--resample-nonuniform'


def _dicom_duplicate(tmp_path):
    return _dicom(tmp_path, [0, 2, 4, 4, 6, 8]), \
        r'_2\.dcm and \S+_3\.dcm at one position \(4\.000 mm'


def _dicom_uneven(tmp_path):
    return _dicom(tmp_path, [0, 2, 4, 6.5, 8.5, 10.5]), \
        r'uneven step of 2\.500 mm \(median 2\.000 mm\)'


def _dicom_truncated_slice(tmp_path, index=3):
    folder = _dicom(tmp_path, [0, 2, 4, 6, 8, 10])
    path = tmp_path / 'series' / f'1.2.826.0.1.3680043.2.1125.9_{index}.dcm'
    _truncate(path, 0.97)
    # GDCM leaves the damaged file out: it is named
    return folder, r'1 DICOM file\(s\) that GDCM could not read \(truncated' \
        rf'.*_{index}\.dcm'


def _dicom_truncated_last_slice(tmp_path):
    """Without it the series would be one slice shorter, evenly spaced."""
    return _dicom_truncated_slice(tmp_path, 5)


def _dicom_huge_rows(tmp_path):
    """A header announcing 60000 rows: a reader would allocate for them."""
    folder = _dicom(tmp_path, [0, 2, 4, 6])
    path = tmp_path / 'series' / '1.2.826.0.1.3680043.2.1125.9_2.dcm'
    rows = b'\x28\x00\x10\x00\x02\x00\x00\x00'  # (0028,0010), implicit VR
    data = path.read_bytes()
    assert data.count(rows + b'\x08\x00') == 1
    path.write_bytes(data.replace(rows + b'\x08\x00',
                                  rows + (60000).to_bytes(2, 'little')))
    return folder, r'_2\.dcm: truncated: \d+ bytes, less than the 960000 ' \
        r'bytes of pixel data its header announces \(60000 rows'


def _dicom_mr(tmp_path):
    return _dicom(tmp_path, [0, 2, 4], modality='MR'), \
        r"Modality is 'MR', not CT.*--force-ct"


SCAN_CASES = {
    'nii-gz-truncated': _truncated_nii_gz,
    'nii-truncated': _truncated_nii,
    'mhd-raw-truncated': _truncated_raw,
    'mha-truncated': _truncated_mha,
    'mhd-data-file-parent-dir': _mhd_parent,
    'mhd-data-file-absolute': _mhd_absolute,
    'mhd-ushort-no-rescale': _mhd_ushort,
    'label-map-as-ct': _label_map,
    'mr-values-as-ct': _mr_values,
    'dicom-missing-slice': _dicom_gap,
    'dicom-duplicate-position': _dicom_duplicate,
    'dicom-uneven-spacing': _dicom_uneven,
    'dicom-truncated-slice': _dicom_truncated_slice,
    'dicom-truncated-last-slice': _dicom_truncated_last_slice,
    'dicom-header-rows-lie': _dicom_huge_rows,
    'dicom-modality-mr': _dicom_mr,
}


@pytest.fixture
def strict_scans(monkeypatch):
    """No scan switch set, whatever the environment of the test run."""
    from mmlesion.datasets.volumes import scan_switches
    for env in (scan_switches.FORCE_CT_ENV,
                scan_switches.RESAMPLE_NONUNIFORM_ENV,
                scan_switches.ALLOW_OUTSIDE_DATA_ENV):
        monkeypatch.setenv(env, '0')


@pytest.mark.parametrize('case', list(SCAN_CASES))
def test_bad_scan_is_refused_naming_the_file(case, tmp_path, strict_scans):
    from mmlesion.datasets.volumes import load_ct_volume
    path, pattern = SCAN_CASES[case](tmp_path)
    with pytest.raises(ValueError, match='(?s)' + pattern):
        load_ct_volume(path)


@pytest.mark.parametrize('case', [
    'mhd-data-file-parent-dir', 'mhd-ushort-no-rescale', 'label-map-as-ct',
    'dicom-missing-slice', 'dicom-modality-mr'
])
def test_switches_read_the_rare_real_exception(case, tmp_path, monkeypatch,
                                               strict_scans):
    """--allow-outside-data, --force-ct, --resample-nonuniform: the tool
    flags, as settings (no environment variable set)."""
    from mmlesion.datasets.volumes import load_ct_volume
    from mmlesion.datasets.volumes.scan_switches import ScanChecks
    from mmlesion_cli.common_args import scan_check_flags
    path, _ = SCAN_CASES[case](tmp_path)
    flag = {
        'mhd-data-file-parent-dir': '--allow-outside-data',
        'dicom-missing-slice': '--resample-nonuniform'
    }.get(case, '--force-ct')
    parser = argparse.ArgumentParser()
    add_scan_check_arguments(parser)
    environ = dict(os.environ)
    checks = ScanChecks(**scan_check_flags(parser.parse_args([flag])))
    assert dict(os.environ) == environ
    with pytest.raises(ValueError):
        load_ct_volume(path)
    vol = load_ct_volume(path, scan_checks=checks)
    assert vol.array.ndim == 3


def test_resampled_dicom_series_is_uniform(tmp_path, strict_scans):
    from mmlesion.datasets.volumes import load_ct_volume
    folder, _ = _dicom_gap(tmp_path)
    vol = load_ct_volume(folder,
                         scan_checks=dict(resample_nonuniform=True))
    # slices at 0, 2, 4, (6 interpolated), 8, 10, 12 mm
    assert vol.shape_zyx == (7, 8, 8)
    assert vol.spacing_zyx[0] == pytest.approx(2.0)
    assert vol.world_to_voxel([[0., 0., 12.]])[0][0] == pytest.approx(6)  # z
    assert 'gap of 4.000 mm' in vol.meta['resampled_nonuniform'][0]
    even = load_ct_volume(_dicom(tmp_path, [0, 2, 4, 6], name='even'))
    np.testing.assert_allclose(vol.array[3], (vol.array[2] + vol.array[4]) / 2,
                               atol=1e-3)
    assert 'resampled_nonuniform' not in even.meta


def test_real_scans_pass_the_checks(strict_scans):
    """The real TotalSegmentator CT (NIfTI and DICOM) passes every check."""
    from mmlesion.datasets.volumes import load_ct_volume
    from mmlesion.testing import shared_data_root
    root = shared_data_root()
    if root is None or not (root / 'ct_volumes' / 'totalsegmentator').is_dir():
        pytest.skip('$MMLESION_SHARED_DATA/ct_volumes/totalsegmentator not found')
    ts = root / 'ct_volumes' / 'totalsegmentator'
    nii = load_ct_volume(ts / 'example_ct_sm.nii.gz')
    assert nii.array.min() < -500
    with pytest.raises(ValueError, match='example_seg.*no voxel below'):
        load_ct_volume(ts / 'example_seg.nii.gz')
    dicom = load_ct_volume(ts / 'example_ct_dicom')
    assert 'resampled_nonuniform' not in dicom.meta


def test_kits19_converter_refuses_a_truncated_scan(tmp_path, capsys,
                                                   strict_scans):
    from tools.dataset_converters.kits19 import main
    case = tmp_path / 'kits19' / 'case_00000'
    _write(case / 'imaging.nii.gz', _ct())
    seg = np.zeros((6, 16, 16), np.uint8)
    seg[2:4, 5:9, 5:9] = 2
    _write(case / 'segmentation.nii.gz', seg)
    _truncate(case / 'imaging.nii.gz')
    out = tmp_path / 'kits.json'
    assert main([str(tmp_path / 'kits19'), '--out', str(out)]) == 1
    assert re.search(r'imaging\.nii\.gz: truncated: \d+ of \d+ bytes',
                     capsys.readouterr().err)
    assert not out.exists()


# --------------------------------------------------------------------------
# 6. annotations: inside the volume, finite, plausible; scans in the root
# --------------------------------------------------------------------------


def _annotation_file(tmp_path, bbox=(2, 2, 1, 6, 6, 3), file='scan.nii.gz',
                     center=(0., 0., 0.)):
    import json
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(dict(
        metainfo=dict(classes=['lesion']),
        volumes=[dict(id='s1', file=file, shape_zyx=[6, 16, 16],
                      spacing_zyx=[2., .7, .7], origin_xyz=[0., 0., 0.],
                      direction=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                      annotations=[dict(bbox=list(bbox),
                                        center_world=list(center))])])))
    return str(path)


ANNOTATION_CASES = {
    'box-outside-volume': (dict(bbox=(20, 2, 1, 30, 6, 3)),
                           r'annotations\[0\], field "bbox".*outside the '
                           r'volume'),
    'box-1e308': (dict(bbox=(2, 2, 1, 1e308, 6, 3)), None),
    'box-1e308-start': (dict(bbox=(1e308, 2, 1, float('inf'), 6, 3)),
                        r'field "bbox": expected 6 finite'),
    'center-absurd': (dict(center=(1e300, 0., 0.)),
                      r'field "center_world".*farther than'),
    'scan-path-parent-dir': (dict(file='../other/scan.nii.gz'),
                             r"scan path '\.\./other/scan\.nii\.gz' lies "
                             r'outside the data root'),
    'scan-path-absolute': (dict(file='/etc/scan.nii.gz'),
                           r'outside the data root'),
}


@pytest.mark.parametrize('case', list(ANNOTATION_CASES))
def test_bad_annotation_is_refused_naming_file_row_field(
        case, tmp_path, strict_scans):
    from mmlesion.datasets import CTVolumeDataset
    kwargs, pattern = ANNOTATION_CASES[case]
    path = _annotation_file(tmp_path, **kwargs)
    pattern = pattern or r'ann\.json: volumes\[0\].*annotations\[0\], ' \
        r'field "bbox"'
    with pytest.raises(ValueError, match=pattern) as info:
        CTVolumeDataset(ann_file=path, pipeline=[], lazy_init=False)
    assert 'ann.json' in str(info.value)


def test_scan_outside_the_root_with_the_switch(tmp_path, monkeypatch):
    from mmlesion.datasets.volumes.annotation_file import resolve_volume_file
    monkeypatch.setenv('MMLESION_ALLOW_OUTSIDE_DATA', '1')
    assert resolve_volume_file(str(tmp_path / 'a.json'), '/x/s.nii') == \
        '/x/s.nii'


# --------------------------------------------------------------------------
# 8. (evaluator side) half-written result CSVs; LUNA16 annotation CSVs
# --------------------------------------------------------------------------

_CANDIDATES = ('seriesuid,coordX,coordY,coordZ,probability\r\n'
               '1.2.3,10.5,-20.25,-300.0,0.9731\r\n'
               '1.2.3,11.5,-21.25,-310.0,0.8712\r\n')
CSV_CASES = {
    'candidates-partial-last-line':
    ('candidates', _CANDIDATES[:-8], r'cand\.csv line 3: the last row has '
     r'no line end: a partial row'),
    'candidates-cut-in-field':
    ('candidates', _CANDIDATES[:-2].rsplit(',', 1)[0], r'cand\.csv line 3'),
    'candidates-missing-column':
    ('candidates', _CANDIDATES + '1.2.3,1.0,2.0,0.5\r\n',
     r'cand\.csv line 4: 4 fields, the header has 5'),
    'candidates-extra-column':
    ('candidates', _CANDIDATES + '1.2.3,1,2,3,0.5,7\r\n',
     r'cand\.csv line 4: 6 fields'),
    'candidates-nan':
    ('candidates', _CANDIDATES + '1.2.3,nan,2,3,0.5\r\n',
     r"line 4: field 'coordX' is not finite"),
    'annotations-1e308':
    ('annotations', 'seriesuid,coordX,coordY,coordZ,diameter_mm\n'
     '1.2.3,1e308,0,0,5\n', r"cand\.csv line 2: field 'coordX' is not "
     r'finite or absurd'),
    'annotations-partial-last-line':
    ('annotations', 'seriesuid,coordX,coordY,coordZ,diameter_mm\n'
     '1.2.3,10,0,0,5', r'cand\.csv line 2: the last row has no line end'),
    'dl-info-partial-last-line':
    ('dl_info', None, r'cand\.csv line 3: the last row has no line end'),
    'seriesuids-partial-last-line':
    ('seriesuids', '1.2.3\n1.2.', r'cand\.csv line 2: the last row'),
}


@pytest.mark.parametrize('case', list(CSV_CASES))
def test_bad_csv_is_refused_naming_file_and_line(case, tmp_path):
    from mmlesion.evaluation.functional import luna16
    from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
    from tests.helpers.dl_info_rows import lesion_row, write_dl_info_csv
    kind, text, pattern = CSV_CASES[case]
    path = tmp_path / 'cand.csv'
    if kind == 'dl_info':  # two rows, the second cut short
        write_dl_info_csv(str(path), [
            lesion_row(1, 10, (32, 30), 8, 4),
            lesion_row(2, 10, (32, 30), 8, 4)
        ])
        text = path.read_text()[:-12]
    path.write_bytes(text.encode())
    reader = dict(candidates=luna16.read_candidates_csv,
                  annotations=luna16.read_findings_csv,
                  seriesuids=luna16.read_seriesuids_csv,
                  dl_info=parse_dl_info)[kind]
    with pytest.raises(ValueError, match=pattern):
        reader(str(path))


def test_complete_csv_is_read(tmp_path):
    from mmlesion.evaluation.functional.luna16 import read_candidates_csv
    path = tmp_path / 'cand.csv'
    path.write_text(_CANDIDATES)
    cands = read_candidates_csv(str(path))
    assert cands.probability.tolist() == [0.9731, 0.8712]


def test_eval_luna16_refuses_a_half_written_candidates_csv(tmp_path,
                                                          capsys):
    from tools.analysis_tools.eval_luna16 import main
    (tmp_path / 'ann.csv').write_text(
        'seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2.3,10,0,0,5\n')
    (tmp_path / 'uids.csv').write_text('1.2.3\n')
    (tmp_path / 'cand.csv').write_text(_CANDIDATES[:-8])
    status = main([
        '--candidates', str(tmp_path / 'cand.csv'), '--annotations',
        str(tmp_path / 'ann.csv'), '--seriesuids',
        str(tmp_path / 'uids.csv'), '--out-dir',
        str(tmp_path / 'out'), '--num-bootstrap', '0'
    ])
    assert status != 0
    assert 'cand.csv line 3: the last row has no line end' in \
        capsys.readouterr().err


# --------------------------------------------------------------------------
# 10. deeplesion_to_3d: malformed rows and oversized inputs
# --------------------------------------------------------------------------


def _dl_rows(tmp_path, **overrides):
    from tests.helpers.dl_info_rows import (lesion_row, write_dl_info_csv,
                                               write_key_slices)
    row = lesion_row(1, 10, (32, 30), 8, 4, image_size=64, split=1)
    img_dir = tmp_path / 'Images_png'
    for k in range(8, 13):
        write_key_slices(str(img_dir), [dict(
            row, File_name=row['File_name'][:-7] + f'{k:03d}.png')])
    row.update(overrides)
    return write_dl_info_csv(str(tmp_path / 'dl.csv'), [row]), str(img_dir)


DL3D_CASES = {
    'dl3d-bad-split': (dict(Train_Val_Test='7'),
                       r'dl\.csv.*row 2.*Train_Val_Test.*expected 1, 2 or 3'),
    'dl3d-non-numeric-box': (dict(Bounding_boxes='1, 2, x, 4'),
                             r'dl\.csv.*row 2.*Bounding_boxes'),
    'dl3d-box-outside-slices': (
        dict(Bounding_boxes='895, 893, 915, 907', Image_size='1024, 1024'),
        r'dl\.csv: rows \[2\].*outside its slices'),
    'dl3d-box-outside-image': (dict(Bounding_boxes='895, 893, 915, 907'),
                               r"dl\.csv: row 2, field 'Bounding_boxes'.*"
                               r'outside the image'),
    'dl3d-box-1e308': (dict(Bounding_boxes='20, 20, 1e308, 40'),
                       r'dl\.csv.*row 2.*Bounding_boxes.*outside the '
                       r'image'),
    'dl3d-missing-slices': (dict(Key_slice_index='40',
                                 File_name='000001_01_01_040.png',
                                 Slice_range='38, 42'),
                            r'040\.png|038\.png'),
}


@pytest.mark.parametrize('case', list(DL3D_CASES))
def test_deeplesion_to_3d_names_the_row(case, tmp_path, capsys):
    from tools.dataset_converters.deeplesion_to_3d import cli
    overrides, pattern = DL3D_CASES[case]
    csv_path, img_dir = _dl_rows(tmp_path, **overrides)
    assert cli([csv_path, img_dir, str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'Traceback' not in err
    assert re.search(pattern, err), err


def test_deeplesion_to_3d_refuses_a_huge_input_before_reading(tmp_path,
                                                              capsys):
    from tools.dataset_converters.deeplesion_to_3d import cli
    huge = tmp_path / 'annotations.json'
    with open(huge, 'wb') as f:  # sparse: 2 GB without writing them
        f.truncate(2 * 2**30)
    assert cli([str(huge), str(tmp_path), str(tmp_path / 'out')]) == 1
    assert re.search(r'annotations\.json: 2048 MB, more than --max-input-mb '
                     r'100', capsys.readouterr().err)
    assert not (tmp_path / 'out').exists()


# --------------------------------------------------------------------------
# already handled earlier (kept here so they stay handled)
# --------------------------------------------------------------------------


def test_lens_manual_3d_pickle_runs_no_code(tmp_path):
    import pickle

    from mmlesion.evaluation.functional.froc_3d import \
        load_deeplesion_manual_3d
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'DeepLesion_manual_1K_test_release.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(val=_Payload(os.system, (f'touch {marker}', ))), f)
    with pytest.raises(pickle.UnpicklingError):
        load_deeplesion_manual_3d(str(path))
    assert not marker.exists()


@pytest.mark.parametrize('content', [b'', b'PK\x03\x04 truncated zip'],
                         ids=['ckpt-empty', 'ckpt-truncated'])
def test_corrupt_checkpoint_names_the_file(content, tmp_path):
    from mmlesion.utils import CorruptCheckpointError
    path = tmp_path / 'bad.pth'
    path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match='bad.pth'):
        load_local_checkpoint(str(path))


def test_complete_nifti_in_two_gzip_members_is_read(tmp_path, strict_scans):
    """A complete .nii.gz whose gzip trailer does not give its length (two
    members) is counted, not refused."""
    import gzip

    from mmlesion.datasets.volumes import load_ct_volume
    path = tmp_path / 'scan.nii.gz'
    arr = _ct()
    _write(path, arr)
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    assert load_ct_volume(str(path)).array.shape == arr.shape
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:-9]))
    with pytest.raises(ValueError, match='truncated: 3415 of 3424 bytes'):
        load_ct_volume(str(path))


@pytest.mark.parametrize('name', ['scan.nii', 'scan.nii.gz', 'scan.mhd',
                                  'scan.mha'])
def test_complete_files_pass_the_length_checks(name, tmp_path, strict_scans):
    from mmlesion.datasets.volumes import load_ct_volume
    arr = _ct()
    vol = load_ct_volume(_write(tmp_path / name, arr))
    np.testing.assert_array_equal(vol.array, arr)


def test_real_luna16_csvs_pass_the_checks():
    from mmlesion.evaluation.functional import luna16
    from mmlesion.testing import shared_data_root
    root = shared_data_root()
    if root is None or not (root / 'luna16' / 'annotations.csv').is_file():
        pytest.skip('$MMLESION_SHARED_DATA/luna16 not found')
    assert len(luna16.read_findings_csv(
        str(root / 'luna16' / 'annotations.csv')).seriesuids) > 0
    assert luna16.read_seriesuids_csv(str(root / 'luna16' /
                                          'seriesuids.csv'))
