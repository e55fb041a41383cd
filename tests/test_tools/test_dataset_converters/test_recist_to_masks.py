# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/dataset_converters/recist_to_masks.py: cache a split's masks."""
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmlesion.datasets.transforms.recist_grabcut import RecistToMask
from mmlesion.datasets.transforms.recist_mask_cache import load_mask_npz
from mmlesion.testing import shared_data_root
from tests.helpers.dl_info_rows import (lesion_row, write_dl_info_csv,
                                           write_key_slices)

TOOL = (
    Path(__file__).resolve().parents[3] / 'tools' / 'dataset_converters' /
    'recist_to_masks.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('recist_to_masks', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def summary_of(out: str) -> dict:
    line = [ln for ln in out.splitlines() if ln.startswith('summary json: ')]
    assert len(line) == 1, out
    return json.loads(line[0][len('summary json: '):])


def synthetic_dataset(root: Path):
    """Two key slices with bright round lesions drawn where RECIST says."""
    rows = [
        lesion_row(1, 10, (60, 70), 30, 22, split=1, image_size=256),
        lesion_row(
            1, 10, (150, 160), 16, 12, angle_deg=45, split=1, image_size=256),
        lesion_row(
            2, 12, (100, 90), 40, 26, angle_deg=90, split=1, image_size=256),
    ]
    write_dl_info_csv(str(root / 'DL_info.csv'), rows)
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[:256, :256]
    for file_rows in (rows[:2], rows[2:]):
        hu = 40 + rng.normal(0, 8, (256, 256))
        for row in file_rows:
            p = np.array(
                [float(v)
                 for v in row['Measurement_coordinates'].split(',')]) - 1
            c = p.reshape(4, 2)[:2].mean(0)
            r = np.hypot(*(p[2:4] - p[0:2])) / 2
            hu[(xs - c[0])**2 + (ys - c[1])**2 <= r**2] += 90
        write_key_slices(str(root / 'Images_png'), file_rows, hu)
    return rows


def test_config_run_uses_the_pipeline_mask_arguments(tmp_path, capsys):
    tool = load_tool()
    data = tmp_path / 'data'
    synthetic_dataset(data)
    config = tmp_path / 'cfg.py'
    config.write_text(f"""
custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)
default_scope = 'mmdet'
train_dataloader = dict(dataset=dict(
    type='DeepLesionDataset', data_root={str(data)!r},
    ann_file='DL_info.csv', data_prefix=dict(img='Images_png/'),
    split='train',
    pipeline=[
        dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
        dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='LoadRecistPoints'),
        dict(type='RecistToMask', iterations=3, window=(-100., 200.)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')]))
""")
    out = tmp_path / 'cache'
    assert tool.main([str(config), '--out', str(out)]) == 0
    summary = summary_of(capsys.readouterr().out)
    assert summary['images'] == 2 and summary['written'] == 2
    assert summary['lesions'] == 3
    assert summary['params']['iterations'] == 3
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['params']['window'] == [-100.0, 200.0]
    assert sorted(os.listdir(out)) == [
        '000001_01_01_010.npz', '000002_01_01_012.npz', 'meta.json'
    ]
    data0 = load_mask_npz(str(out / '000001_01_01_010.npz'))
    assert len(data0.masks) == 2 and data0.image_shape == (256, 256)
    # the masks found the drawn discs (centre = box centre, radius = half
    # the long diameter), well beyond the quadrilaterals
    ys, xs = np.mgrid[:256, :256]
    for mask, box, long_d in zip(data0.masks, data0.bboxes, (30, 16)):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        disc = (xs - cx)**2 + (ys - cy)**2 <= (long_d / 2)**2
        mask = mask.astype(bool)
        assert (mask & disc).sum() / (mask | disc).sum() > 0.85

    # a training pipeline reading the cache gets the same masks
    init_default_scope('mmdet')
    from mmlesion.datasets import DeepLesionDataset
    ds = DeepLesionDataset(
        data_root=str(data),
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        pipeline=[
            dict(type='LoadDeepLesionSlices'),
            dict(type='WindowHU'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='LoadRecistPoints'),
        ])
    results = ds[0]
    cached = RecistToMask(
        iterations=3,
        window=(-100., 200.),
        cache_dir=str(out),
        cache_missing='error')(
            dict(results))
    fresh = RecistToMask(iterations=3, window=(-100., 200.))(dict(results))
    np.testing.assert_array_equal(cached['gt_masks'].masks,
                                  fresh['gt_masks'].masks)

    # rerun: nothing rewritten; other parameters: refused
    mtime = os.path.getmtime(out / '000001_01_01_010.npz')
    assert tool.main([str(config), '--out', str(out)]) == 0
    assert summary_of(capsys.readouterr().out)['skipped_existing'] == 2
    assert tool.main([str(config), '--out',
                      str(out), '--iterations', '7']) == 1
    assert 'other parameters' in capsys.readouterr().err
    assert os.path.getmtime(out / '000001_01_01_010.npz') == mtime
    assert tool.main(
        [str(config), '--out',
         str(out), '--iterations', '7', '--force']) == 0
    assert summary_of(capsys.readouterr().out)['written'] == 2
    assert json.loads(
        (out / 'meta.json').read_text())['params']['iterations'] == 7


def test_refuses_a_foreign_folder(tmp_path, capsys):
    tool = load_tool()
    data = tmp_path / 'data'
    synthetic_dataset(data)
    out = tmp_path / 'busy'
    out.mkdir()
    (out / 'notes.txt').write_text('keep me')
    assert tool.main(['--csv',
                      str(data / 'DL_info.csv'), '--out',
                      str(out)]) == 1
    assert 'not a RECIST mask cache' in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ['notes.txt']


def test_csv_run_on_real_key_slices(tmp_path, capsys):
    root = shared_data_root()
    csv = None if root is None else (root / 'deeplesion' / 'annotations' /
                                     'DL_info_val.csv')
    if csv is None or not csv.is_file():
        pytest.skip('shared DeepLesion data is not available')
    tool = load_tool()
    out = tmp_path / 'cache'
    assert tool.main(['--csv',
                      str(csv), '--skip-missing', '--out',
                      str(out)]) == 0
    summary = summary_of(capsys.readouterr().out)
    assert summary['written'] == summary['images'] > 10
    assert len(list(out.glob('*.npz'))) == summary['images']
    q = summary['mask_box_fraction_percentiles_0_5_25_50_75_95_100']
    assert 0.05 < q[0] and q[-1] < 0.9 and 0.15 < q[3] < 0.6


def test_the_full_size_config_reads_the_masks_the_tool_wrote(
        tmp_path, capsys, monkeypatch):
    """The Improved RetinaNet configs name the cache folder the tool's
    documented command writes; a cache written for the config's own
    pipeline is read by it (GrabCut never runs) and gives the masks the
    pipeline computes without it."""
    from mmengine.config import Config
    from mmengine.dataset import Compose
    config = ('configs/retinanet_lesion/improved-retinanet_vgg19_densefpn-'
              'ag_1xb4-adam-plateau-50e_deeplesion.py')
    cfg = Config.fromfile(config)
    pipeline = cfg.train_dataloader.dataset.pipeline
    (index, step), = [(i, t) for i, t in enumerate(pipeline)
                      if t['type'] == 'RecistToMask']
    assert step['cache_dir'] == 'data/DeepLesion/recist_masks/'
    data = tmp_path / 'data'
    synthetic_dataset(data)
    out = tmp_path / 'cache'
    options = [f'train_dataloader.dataset.data_root={data}/',
               'train_dataloader.dataset.ann_file=DL_info.csv']
    assert tool_main(config, out, options) == 0
    assert summary_of(capsys.readouterr().out)['lesions'] == 3

    init_default_scope('mmdet')
    from mmlesion.datasets import DeepLesionDataset
    ds = DeepLesionDataset(data_root=str(data), ann_file='DL_info.csv',
                           data_prefix=dict(img='Images_png/'),
                           pipeline=pipeline[:index])
    computed = Compose([dict(step, cache_dir=None)])
    cached = Compose([dict(step, cache_dir=str(out),
                           cache_missing='error')])
    expected = [computed(dict(ds[i]))['gt_masks'].masks
                for i in range(len(ds))]
    import mmlesion.datasets.transforms.recist_grabcut as module

    def no_grabcut(*args, **kwargs):
        raise AssertionError('GrabCut ran although the cache holds the mask')

    monkeypatch.setattr(module, 'recist_grabcut_mask', no_grabcut)
    for i, masks in enumerate(expected):
        np.testing.assert_array_equal(cached(dict(ds[i]))['gt_masks'].masks,
                                      masks)


def tool_main(config: str, out: Path, options: list) -> int:
    """The tool on ``config``'s train split, with ``--cfg-options``."""
    return load_tool().main([config, '--split', 'train', '--out', str(out),
                             '--cfg-options', *options])
