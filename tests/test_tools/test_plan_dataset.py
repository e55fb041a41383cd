# Copyright (c) mmlesion contributors. All rights reserved.
"""Your own data end to end: convert (patients split), plan
(``tools/plan_dataset.py``), train one tiny epoch, test on the held-out
patients (FROC), detect on a new scan with the planned spacing and window
taken from the model (no flags); on a KiTS19-like replica (scans + label
maps), a LUNA16-like one (scans + a box CSV in world mm, through the general
converter) and the real CT volumes with masks made here. The planned config
is shrunk only by ``--cfg-options``, as the other end-to-end tests."""
import json
import math
import re
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmlesion.testing import repo_root
from tests.helpers.tool_modules import load_tool

# `python tools/...` runs fork a process that imported mmdet once
pytestmark = pytest.mark.usefixtures('tools_forked')

#: ResNet-18 of a quarter of the widths, an FPN and heads of 64 channels, no
#: loader workers, few proposals, one batch: seconds on a CPU (the planned
#: spacings give slices of up to 1,100 px, where mmdet's widths took 25 s of
#: CPU an iteration and 2 s a slice to detect).
_MODEL = ['model.backbone.depth=18', 'model.backbone.init_cfg=None',
          'model.backbone.base_channels=16',
          'model.neck.in_channels=[16,32,64,128]',
          'model.neck.out_channels=64', 'model.rpn_head.in_channels=64',
          'model.rpn_head.feat_channels=64',
          'model.roi_head.bbox_roi_extractor.out_channels=64',
          'model.roi_head.bbox_head.in_channels=64',
          'model.roi_head.bbox_head.fc_out_channels=256',
          'model.test_cfg.rpn.nms_pre=100',
          'model.test_cfg.rpn.max_per_img=20',
          'model.test_cfg.rcnn.max_per_img=5']
_LOADERS = [f'{s}_dataloader.{k}' for s in ('train', 'test')
            for k in ('num_workers=0', 'persistent_workers=False')]
_TRAIN = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
          'train_dataloader.dataset.indices=2']


def _run(*args) -> str:
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=repo_root(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def _train_and_test(config, work):
    """Train ``config`` one tiny epoch, test it on the held-out split.

    Returns:
        tuple: the checkpoint and the test's output (the training's losses
        and the metrics file's FROC sensitivities asserted finite).
    """
    out = _run('tools/train.py', config, '--work-dir', work,
               '--cfg-options', *_MODEL, *_LOADERS, *_TRAIN)
    assert 'loss:' in out and not re.search(r'loss\w*: nan', out)
    ckpt, metrics = work / 'epoch_1.pth', work / 'metrics.json'
    out = _run('tools/test.py', config, ckpt, '--work-dir', work,
               '--metrics-out', metrics, '--cfg-options', *_MODEL, *_LOADERS)
    metrics = json.loads(metrics.read_text())
    # the overall FROC (a lesion type or size absent from the split is NaN)
    overall = [v for k, v in metrics.items()
               if k.startswith('froc/sens@') and '_' not in k]
    assert len(overall) == 7 and all(map(math.isfinite, overall))
    return ckpt, out


def _detect(config, ckpt, scan, out_dir):
    """``infer_volume`` on ``scan`` without spacing or window flags: the
    findings file is written with the model's spacing and window."""
    _run('tools/infer_volume.py', config, ckpt, scan, '--out-dir', out_dir,
         '--batch-size', 8, '--cfg-options', *_MODEL)
    settings = json.loads((out_dir / 'findings.json').read_text())['settings']
    cfg = Config.fromfile(str(config))
    assert settings['window'] == list(cfg.hu_window)
    assert settings['pixel_spacing'] == cfg.pixel_spacing
    assert settings['interval_mm'] == cfg.slice_interval_mm
    assert settings['sources'] == dict(interval_mm='checkpoint',
                                       pixel_spacing='checkpoint')


def _plan(ann, export, config):
    """Plan a config for ``ann`` and its 2D export; the planner's output."""
    proc = _run('tools/plan_dataset.py', ann, '--export-2d', export,
                '--gpu-mem-gb', 16, '--out', config)
    assert (ann.parent / (ann.stem + '.fingerprint.json')).is_file()
    return proc


def _test_rows(export):
    """The number of key slices of the 2D export's test split."""
    return len({r.split(',')[0] for r in
                (export / 'DL_info.csv').read_text().splitlines()[1:]
                if r.endswith(',3')})


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """The replica converted: its root, annotation file and 2D export."""
    root = tmp_path_factory.mktemp('own_data')
    data = root / 'kits19'
    assert load_tool('projects/replicas/tools/generate_release_replica.py').main(
        ['kits19', '--out', str(data), '--size', 'small', '--quiet']) == 0
    ann, export = data / 'volumes.json', root / 'kits19_2d'
    # case_00000 falls in the test third (stable hash of the case id)
    assert load_tool('dataset_converters/kits19.py').main([
        str(data / 'data'), '--out', str(ann), '--export-2d', str(export),
        '--val-fraction', '0', '--test-fraction', '0.34', '--key-slices',
        'every', '--num-slices', '3', '--negatives-per-key', '0']) == 0
    return data, ann, export


def test_convert_plan_train_test_detect(converted, tmp_path, capsys):
    data, ann, export = converted
    config = tmp_path / 'planned.py'
    plan = ['--export-2d', export, '--gpu-mem-gb', '16', '--out', config]
    assert load_tool('plan_dataset.py').main(
        [str(a) for a in [ann, *plan]]) == 0
    out = capsys.readouterr().out
    assert "detector = '2.5d'\n      because median slice thickness" in out
    assert (data / 'volumes.fingerprint.png').is_file()
    fingerprint = json.loads((data / 'volumes.fingerprint.json').read_text())
    assert fingerprint['splits']['test']['num_scans'] == 1
    text = config.read_text()
    cfg = Config.fromfile(str(config))
    # each planned value stands under its reason
    for name in ('pixel_spacing', 'hu_window', 'num_slices', 'batch_size',
                 'anchor_generator', 'max_epochs'):
        assert f'\n# {name}: ' in text and f'\n{name} = ' in text
    window = list(cfg.hu_window)
    assert cfg.test_pipeline[2] == dict(type='WindowHU', window=tuple(window),
                                        out_range=(-1., 1.))
    # the fingerprint is reused while the annotation file is unchanged
    assert load_tool('plan_dataset.py').main(
        [str(a) for a in [ann, *plan, '--overwrite']]) == 0
    assert '(of this annotation file, reused)' in capsys.readouterr().out

    ckpt, out = _train_and_test(config, tmp_path / 'work')
    # the held-out patient's key slices only: case_00000's tumour slices
    assert f'images: {_test_rows(export)} ' in out

    scan = data / 'data' / 'case_00210' / 'imaging.nii.gz'  # unlabelled
    _detect(config, ckpt, scan, tmp_path / 'found')


def test_luna16_like_box_csv_through_the_general_converter(tmp_path):
    """A folder of scans and a box CSV in world mm (LUNA16's replica, its
    scans gathered into one folder as a user's would be), converted by the
    general converter (``--boxes``, no preset), planned, trained one tiny
    epoch and tested on the held-out scan."""
    luna = tmp_path / 'luna16'
    assert load_tool('projects/replicas/tools/generate_release_replica.py').main(
        ['luna16', '--out', str(luna), '--size', 'small', '--quiet']) == 0
    data = tmp_path / 'mine'
    (data / 'scans').mkdir(parents=True)
    for f in luna.glob('subset*/*'):
        shutil.copy(f, data / 'scans')
    ann, export = data / 'volumes.json', tmp_path / 'mine_2d'
    _run('tools/dataset_converters/convert_dataset.py', data / 'scans',
         '--boxes', luna / 'annotations.csv', '--out', ann, '--export-2d',
         export, '--val-fraction', 0, '--test-fraction', 0.34,
         '--num-slices', 3, '--negatives-per-key', 0)
    written = json.loads(ann.read_text())
    assert written['metainfo']['dataset'] == 'custom'  # no preset
    volumes = written['volumes']
    assert [v['split'] for v in volumes].count(3) == 1
    assert sum(len(v['annotations']) for v in volumes) == 6
    config = tmp_path / 'planned.py'
    assert "detector = '2.5d'" in _plan(ann, export, config)
    _, out = _train_and_test(config, tmp_path / 'work')
    assert f'images: {_test_rows(export)} ' in out


def _bone_mask(image, keep=3):
    """A made mask on ``image``'s grid: the ``keep`` largest connected
    pieces above 300 HU (the real scans have no lesion labels)."""
    import numpy as np
    import SimpleITK as sitk
    from scipy import ndimage
    pieces, _ = ndimage.label(sitk.GetArrayFromImage(image) > 300,
                              np.ones((3, 3, 3)))
    sizes = np.bincount(pieces.ravel())[1:]
    largest = np.argsort(sizes)[::-1][:keep] + 1
    mask = sitk.GetImageFromArray(np.isin(pieces, largest).astype(np.uint8))
    mask.CopyInformation(image)
    return mask


def test_real_ct_with_made_masks(tmp_path):
    """The real CT volumes (TotalSegmentator's example: a NIfTI scan and a
    DICOM series of another patient) with made masks (the largest bone
    pieces), converted with the user's split file (the DICOM patient held
    out), planned, trained one tiny epoch, tested, and run by
    ``infer_volume`` on the held-out DICOM series without spacing or
    window flags. The plan is used as it is (2.5D: two scans), at the
    spacing it chose."""
    import SimpleITK as sitk

    from mmlesion.datasets.volumes import load_ct_volume
    from mmlesion.testing import shared_data_root
    root = shared_data_root()
    src = None if root is None else root / 'ct_volumes' / 'totalsegmentator'
    if src is None or not src.is_dir():
        pytest.skip('real CT not available ($MMLESION_SHARED_DATA/'
                    'ct_volumes/totalsegmentator; set MMLESION_SHARED_DATA)')
    data = tmp_path / 'real'
    scans, masks = data / 'scans', data / 'masks'
    masks.mkdir(parents=True)
    shutil.copytree(src / 'example_ct_dicom', scans / 'b')
    shutil.copy(src / 'example_ct.nii.gz', scans / 'a.nii.gz')
    sitk.WriteImage(_bone_mask(sitk.ReadImage(str(scans / 'a.nii.gz'))),
                    str(masks / 'a.nii.gz'))
    sitk.WriteImage(_bone_mask(load_ct_volume(scans / 'b').to_sitk()),
                    str(masks / 'b.nii.gz'))
    split = data / 'split.csv'
    split.write_text('volume_id,split,patient_id\na,train,A\nb,test,B\n')
    ann, export = data / 'volumes.json', tmp_path / 'real_2d'
    _run('tools/dataset_converters/convert_dataset.py', scans, masks,
         '--out', ann, '--export-2d', export, '--split-file', split,
         '--num-slices', 3, '--negatives-per-key', 0)
    volumes = json.loads(ann.read_text())['volumes']
    assert [(v['id'], v['split'], len(v['annotations'])) for v in volumes
            ] == [('a', 1, 3), ('b', 3, 3)]
    config = tmp_path / 'planned.py'
    _plan(ann, export, config)
    ckpt, out = _train_and_test(config, tmp_path / 'work')
    assert f'images: {_test_rows(export)} ' in out
    _detect(config, ckpt, scans / 'b', tmp_path / 'found')


#: The 3D-AG model at the demo config's size, a 32 x 48 x 48 crop.
_TINY_3D = ['model.backbone.base_channels=4', 'model.backbone.growth_rate=8',
            'model.backbone.out_channels=16', 'model.rpn_head.in_channels=16',
            'model.fprn_head.in_channels=16', 'model.fprn_head.fc_channels=64',
            'model.test_cfg.rpn.nms_pre=100',
            'model.test_cfg.rpn.max_per_img=10']


def test_3d_plan_trains_and_tests_on_the_held_out_scan(converted, tmp_path,
                                                       capsys):
    """--family 3d: a 3D-AG config on the annotation file's splits, trained
    one tiny epoch and tested LUNA16-style on the test scan only."""
    _, ann, _ = converted
    config = tmp_path / 'planned3d.py'
    assert load_tool('plan_dataset.py').main([
        str(ann), '--family', '3d', '--gpu-mem-gb', '16', '--out',
        str(config)]) == 0
    assert "detector = '3d'\n      because forced by --family" in \
        capsys.readouterr().out
    cfg = Config.fromfile(str(config))
    assert (cfg.train_scans, cfg.test_scans) == ([1, 2], [0])
    work = tmp_path / 'work'
    _run('tools/train.py', config, '--work-dir', work, '--cfg-options',
         *_TINY_3D, *_LOADERS, 'train_cfg.max_epochs=1',
         'train_dataloader.batch_size=1',
         'train_dataloader.dataset.pipeline.1.crop_size=[32,48,48]')
    out = _run('tools/test.py', config, work / 'epoch_1.pth', '--work-dir',
               work, '--cfg-options', *_TINY_3D, *_LOADERS)
    assert 'scans 1, nodules 1' in out and 'luna16/cpm' in out


def test_bad_inputs_get_one_line(converted, tmp_path, capsys):
    _, ann, _ = converted
    tool = load_tool('plan_dataset.py')
    out = str(tmp_path / 'p.py')
    # the rule picks 2.5D, whose data is the 2D export
    assert tool.main([str(ann), '--gpu-mem-gb', '16', '--out', out]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "reads the converter's 2D export" in err
    fingerprint = ann.parent / 'volumes.fingerprint.json'
    good = fingerprint.read_text() if fingerprint.exists() else None
    fingerprint.write_text('{"splits": ')
    try:
        assert tool.main([str(ann), '--gpu-mem-gb', '16', '--out', out]) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and \
            'volumes.fingerprint.json: not valid JSON' in err
    finally:
        fingerprint.unlink()
        if good is not None:
            fingerprint.write_text(good)
    assert tool.main([str(ann), '--gpu-mem-gb', '0', '--out', out,
                      '--family', '3d']) == 2
    assert '--gpu-mem-gb must be > 0' in capsys.readouterr().err
    assert not (tmp_path / 'p.py').exists()  # nothing written
