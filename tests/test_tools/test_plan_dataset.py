# Copyright (c) mmlesion contributors. All rights reserved.
"""Your own data end to end on a KiTS19-like replica (scans + label maps):
convert (patients split), plan (``tools/plan_dataset.py``), train one tiny
epoch, test on the held-out patients (FROC), detect on a new scan with the
planned spacing and window taken from the model (no flags). The planned
config is shrunk only by ``--cfg-options``, as the other end-to-end tests."""
import json
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmlesion.testing import repo_root
from tests.helpers.tool_modules import load_tool

# `python tools/...` runs fork a process that imported mmdet once
pytestmark = pytest.mark.usefixtures('tools_forked')

#: ResNet-18, no loader workers, few proposals: seconds on a CPU.
_MODEL = ['model.backbone.depth=18', 'model.backbone.init_cfg=None',
          'model.neck.in_channels=[64,128,256,512]',
          'model.test_cfg.rpn.nms_pre=100',
          'model.test_cfg.rpn.max_per_img=20',
          'model.test_cfg.rcnn.max_per_img=5']
_LOADERS = [f'{s}_dataloader.{k}' for s in ('train', 'test')
            for k in ('num_workers=0', 'persistent_workers=False')]
_TRAIN = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
          'train_dataloader.dataset.indices=4']


def _run(*args) -> str:
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=repo_root(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """The replica converted: its root, annotation file and 2D export."""
    root = tmp_path_factory.mktemp('own_data')
    data = root / 'kits19'
    assert load_tool('misc/generate_release_replica.py').main(
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

    work = tmp_path / 'work'
    _run('tools/train.py', config, '--work-dir', work, '--cfg-options',
         *_MODEL, *_LOADERS, *_TRAIN)
    ckpt = work / 'epoch_1.pth'
    out = _run('tools/test.py', config, ckpt, '--work-dir', work,
               '--cfg-options', *_MODEL, *_LOADERS)
    # the held-out patient's key slices only: case_00000's tumour slices
    rows = [r for r in (export / 'DL_info.csv').read_text().splitlines()[1:]
            if r.endswith(',3')]
    assert f'images: {len(rows)} ' in out and 'froc/sens@4' in out

    scan = data / 'data' / 'case_00210' / 'imaging.nii.gz'  # unlabelled
    _run('tools/infer_volume.py', config, ckpt, scan, '--out-dir',
         tmp_path / 'found', '--batch-size', 8, '--cfg-options', *_MODEL)
    settings = json.loads(
        (tmp_path / 'found' / 'findings.json').read_text())['settings']
    assert settings['window'] == window
    assert settings['pixel_spacing'] == cfg.pixel_spacing
    assert settings['interval_mm'] == cfg.slice_interval_mm
    assert settings['sources'] == dict(interval_mm='checkpoint',
                                       pixel_spacing='checkpoint')


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
