# Copyright (c) mmlesion contributors. All rights reserved.
import importlib.util
import json

import numpy as np
import pytest
import SimpleITK as sitk
from mmengine.config import Config

from mmlesion.testing import repo_root
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg


def _tool():
    path = repo_root() / 'tools/analysis_tools/predict_luna16_candidates.py'
    spec = importlib.util.spec_from_file_location('predict_cands', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_end_to_end_tiny_model(tmp_path):
    tool = _tool()
    arr = np.full((40, 36, 36), -800, np.int16)
    arr[18:24, 15:21, 15:21] = 40
    img = sitk.GetImageFromArray(arr)
    img.SetOrigin((-10., -20., -30.))
    sitk.WriteImage(img, str(tmp_path / 'scan.nii.gz'))
    ann = dict(
        metainfo=dict(dataset='luna16', classes=['nodule'],
                      box_format='x1y1z1x2y2z2_voxel'),
        volumes=[dict(id='uid1', file='scan.nii.gz', series_uid='uid1',
                      shape_zyx=[40, 36, 36], spacing_zyx=[1., 1., 1.],
                      origin_xyz=[-10., -20., -30.],
                      direction=[1., 0, 0, 0, 1., 0, 0, 0, 1.],
                      annotations=[])])
    (tmp_path / 'ann.json').write_text(json.dumps(ann))
    (tmp_path / 'annotations.csv').write_text(
        'seriesuid,coordX,coordY,coordZ,diameter_mm\nuid1,7.5,-2.5,-9.5,6\n')
    cfg = Config(dict(
        default_scope='mmdet',
        model=tiny_aggregated3d_cfg(window_size=32),
        test_dataloader=dict(dataset=dict(
            type='CTVolumeDataset', ann_file=str(tmp_path / 'ann.json'),
            test_mode=True, pipeline=[
                dict(type='LoadCTVolume'),
                dict(type='WindowHU', window=(-1200., 600.),
                     out_range=(-1., 1.)),
                dict(type='PackVolumeDetInputs')
            ]))))
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    out = tmp_path / 'out' / 'cands.csv'
    argv = [str(cfg_path), '--out', str(out), '--annotations',
            str(tmp_path / 'annotations.csv')]
    metrics = tool.main(argv)
    lines = out.read_text().splitlines()
    assert lines[0] == 'seriesuid,coordX,coordY,coordZ,probability'
    assert 1 < len(lines) <= 101 and lines[1].startswith('uid1,')
    assert 0 <= metrics['cpm'] <= 1 and metrics['scans'] == 1
    assert (out.parent / 'metrics.json').is_file()
    with pytest.raises(SystemExit):  # no silent overwrite
        tool.main(argv)
