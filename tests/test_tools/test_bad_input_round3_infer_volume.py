# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/infer_volume.py: outputs into its inputs, gigavoxel resampling,
NaN weights, and the staging folder a killed run left behind."""
import importlib.util

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from mmlesion.apis.detector_loader import init_lesion_detector
from mmlesion.apis.whole_scan import infer, run
from mmlesion.apis.whole_scan.read import check_resampled_size
from mmlesion.apis.whole_scan.settings import volume_settings_from_config
from mmlesion.apis.whole_scan.write import (OutputIntoInputError,
                                            check_out_dir_apart)
from mmlesion.testing import get_config, repo_root
from mmlesion.utils.writing.atomic import TMP_PREFIX

DEMO_CFG = str(repo_root() / 'configs' / 'demo' /
               'faster-rcnn_r18_fpn_36e_deeplesion-demo.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        'mmlesion_infer_volume_tool', repo_root() / 'tools' /
        'infer_volume.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scan(path, shape=(8, 32, 32), spacing=(1., 1., 2.)):
    """A small CT-like NIfTI (HU of air and soft tissue)."""
    rng = np.random.default_rng(0)
    array = rng.uniform(-1000, 400, size=shape).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)  # x, y, z
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def no_detection(monkeypatch):
    """Fail if the model is loaded or the detection runs."""

    def fail(*args, **kwargs):
        raise AssertionError('the run went on after the bad input')

    monkeypatch.setattr(run, 'init_lesion_detector', fail)
    monkeypatch.setattr(infer, 'detect_slices', fail)


@pytest.mark.parametrize('where', ['series', 'series/results',
                                   'series/a/b'])
def test_out_dir_in_dicom_series_folder_is_refused(tmp_path, capsys,
                                                   no_detection, where):
    series = tmp_path / 'series'
    series.mkdir()
    (series / 'IM0001.dcm').write_bytes(b'not read')
    out = tmp_path / where
    code = _tool().main([DEMO_CFG, str(tmp_path / 'w.pth'), str(series),
                         '--out-dir', str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert f'--out-dir {out} is ' in err and f'folder {series} it reads' in err
    assert sorted(p.name for p in series.iterdir()) == ['IM0001.dcm']
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_out_dir_beside_a_scan_file(tmp_path):
    """The folder of a NIfTI is fine, unless an output would replace the
    scan itself."""
    check_out_dir_apart(tmp_path, tmp_path / 'scan.nii.gz')
    (tmp_path / 'candidates.csv').write_text('x')
    with pytest.raises(OutputIntoInputError, match='would replace the scan'):
        check_out_dir_apart(tmp_path, tmp_path / 'candidates.csv')


@pytest.mark.parametrize('option,named', [
    (['--pixel-spacing', '0.001'], '--pixel-spacing 0.001'),
    (['--pixel-spacing', '1.4', '--cfg-options',
      'test_dataloader.dataset.pipeline.1.interval_mm=0.000001'],
     "interval_mm 1e-06 (the config's LoadDeepLesionSlices)"),
])
def test_gigavoxel_resampling_is_refused_before_allocation(
        tmp_path, capsys, no_detection, monkeypatch, option, named):
    scan = _scan(tmp_path / 'scan.nii.gz')
    monkeypatch.setattr(
        infer, 'prepare_volume',
        lambda *a: pytest.fail('resampled although too large'))
    code = _tool().main([DEMO_CFG, str(tmp_path / 'w.pth'), str(scan),
                         '--out-dir', str(tmp_path / 'out')] + option)
    err = capsys.readouterr().err
    assert code == 1, err
    assert f'error: {scan}: resampling its (8, 32, 32) voxels' in err
    assert 'more than the limit of 1.07e+09 (MMLESION_MAX_VOXELS)' in err
    assert f'check {named}' in err


def test_voxel_limit_is_a_setting(tmp_path, monkeypatch):
    from mmlesion.datasets.volumes import load_ct_volume
    volume = load_ct_volume(_scan(tmp_path / 'scan.nii.gz'))
    settings = volume_settings_from_config(
        get_config('demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'), 1.)
    assert check_resampled_size(volume, settings) == (
        8, 32, 32)
    monkeypatch.setenv('MMLESION_MAX_VOXELS', '1000')
    with pytest.raises(ValueError, match='8 x 32 x 32 = 8.19e\\+03 voxels'):
        check_resampled_size(volume, settings)


def test_nan_checkpoint_is_refused(tmp_path, capsys):
    """Weights of a diverged training: refused naming the file and the
    parameters (they ran and reported 0 findings with status 0)."""
    scan = _scan(tmp_path / 'scan.nii.gz')
    model = init_lesion_detector(get_config(
        'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py')).model
    state = model.state_dict()
    state['roi_head.bbox_head.fc_cls.weight'][:] = float('nan')
    ckpt = tmp_path / 'diverged.pth'
    torch.save(dict(state_dict=state, meta={}), ckpt)
    torch.set_num_threads(1)
    code = _tool().main([DEMO_CFG, str(ckpt), str(scan), '--out-dir',
                         str(tmp_path / 'out'), '--pixel-spacing', '1.4'])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f'error: {ckpt}: 1 of ' in err
    assert 'roi_head.bbox_head.fc_cls.weight: 256 NaN, 0 Inf of 256' in err
    assert not (tmp_path / 'out').exists()


def test_refused_rerun_removes_stale_staging_only(tmp_path, capsys,
                                                  no_detection):
    """A killed run left its staging folder; the next run is refused (the
    out-dir holds results, no --overwrite): the staging folder goes, what
    the user gave stays (even a scan kept in a folder of that name)."""
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'findings.json').write_text('{}')
    stale = tmp_path / f'{TMP_PREFIX}set-out-k1ll3d_x'
    (stale / 'key_slices').mkdir(parents=True)
    (stale / 'findings.json').write_text('{}')
    users = tmp_path / f'{TMP_PREFIX}set-out-mine'  # not a staging name
    users.mkdir()
    holding_scan = tmp_path / f'{TMP_PREFIX}set-out-abcd1234'
    scan = _scan(holding_scan / 'scan.nii.gz')
    other = tmp_path / f'{TMP_PREFIX}set-other-abcdefgh'  # another out-dir
    other.mkdir()
    code = _tool().main([DEMO_CFG, str(tmp_path / 'w.pth'), str(scan),
                         '--out-dir', str(out), '--pixel-spacing', '1.4'])
    assert code == 1
    assert 'already holds results' in capsys.readouterr().err
    assert not stale.exists()
    assert users.is_dir() and scan.is_file() and other.is_dir()
    assert (out / 'findings.json').read_text() == '{}'
