# Copyright (c) mmlesion contributors. All rights reserved.

import cv2
import numpy as np
import pytest

from mmlesion.datasets import DeepLesionDataset
from mmlesion.datasets.transforms import (LoadDeepLesionSlices,
                                          LoadRecistPoints, WindowHU)
from mmlesion.datasets.deeplesion.png_slices import read_hu_png
from mmlesion.testing import shared_data_root
from mmlesion.visualization.lesion_visualizer import _as_hu

SERIES = '000062_01_01'  # real slices 056..084, 1 file per stored slice


def _deeplesion_root():
    root = shared_data_root()
    if root is None or not (root / 'deeplesion' / 'Images_png').is_dir():
        pytest.skip('shared DeepLesion data ($MMLESION_SHARED_DATA/deeplesion) is '
                    'not available')
    return root / 'deeplesion'


def _hu(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(
        np.float32) - 32768


def _series_results(key, slice_interval, series=SERIES):
    series_dir = _deeplesion_root() / 'Images_png' / series
    if not (series_dir / f'{key:03d}.png').is_file():
        pytest.skip(f'{series_dir} is incomplete')
    return dict(
        img_path=str(series_dir / f'{key:03d}.png'),
        series_dir=str(series_dir),
        key_slice=key,
        slice_interval=slice_interval), series_dir


# ------------------------------------------------------- real 29-slice series
def test_stored_positions_equal_stored_slices():
    # 1 mm slices, 2 mm apart: exactly slices 68, 70, 72
    results, series_dir = _series_results(70, 1.0)
    out = LoadDeepLesionSlices(num_slices=3, interval_mm=2.0)(results)
    img = out['img']
    assert img.dtype == np.float32 and img.shape == (512, 512, 3)
    assert out['img_shape'] == out['ori_shape'] == (512, 512)
    for c, index in enumerate((68, 70, 72)):
        np.testing.assert_array_equal(img[..., c],
                                      _hu(series_dir / f'{index:03d}.png'))
    assert out['num_fallback_slices'] == 0
    # key slice and series folder default to the file name and its folder
    minimal = dict(img_path=results['img_path'], slice_interval=1.0)
    again = LoadDeepLesionSlices(num_slices=3, interval_mm=2.0)(minimal)
    np.testing.assert_array_equal(again['img'], img)


def test_halfway_is_mean_of_neighbours():
    # pretend 4 mm slices: 2 mm away is halfway between two stored slices
    results, series_dir = _series_results(70, 4.0)
    out = LoadDeepLesionSlices(num_slices=5, interval_mm=2.0)(results)
    s = {i: _hu(series_dir / f'{i:03d}.png') for i in (69, 70, 71)}
    img = out['img']
    np.testing.assert_array_equal(img[..., 2], s[70])
    np.testing.assert_array_equal(img[..., 1], (s[69] + s[70]) / 2)
    np.testing.assert_array_equal(img[..., 3], (s[70] + s[71]) / 2)
    np.testing.assert_array_equal(img[..., 0], s[69])
    np.testing.assert_array_equal(img[..., 4], s[71])
    # a quarter of the way: linear weights
    results, _ = _series_results(70, 8.0)
    out = LoadDeepLesionSlices(num_slices=3, interval_mm=2.0)(results)
    np.testing.assert_allclose(
        out['img'][..., 2], 0.75 * s[70] + 0.25 * s[71], rtol=0, atol=1e-3)


def test_neighbours_past_the_series_fall_back(log_messages):
    # 9 slices 1 mm apart around 057: 053..055 are not stored -> 056
    results, series_dir = _series_results(57, 1.0)
    loader = LoadDeepLesionSlices(num_slices=9, interval_mm=1.0)
    out = loader(results)
    s56 = _hu(series_dir / '056.png')
    for c in range(3):
        np.testing.assert_array_equal(out['img'][..., c], s56)
    for c, index in zip(range(3, 9), range(56, 62)):
        np.testing.assert_array_equal(out['img'][..., c],
                                      _hu(series_dir / f'{index:03d}.png'))
    assert out['num_fallback_slices'] == 3
    assert loader.num_fallbacks == 3 and loader.num_samples == 1
    # logged once (first occurrence), not once per missing slice
    assert len(log_messages) == 1 and 'missing neighbour' in log_messages[0]
    # upper end: 085.. are missing -> 084
    results, series_dir = _series_results(83, 1.0)
    out = loader(results)
    s84 = _hu(series_dir / '084.png')
    for c in (5, 6, 7, 8):
        np.testing.assert_array_equal(out['img'][..., c], s84)
    assert out['num_fallback_slices'] == 3


def test_fallback_logging_is_throttled(log_messages):
    results, _ = _series_results(57, 1.0)
    loader = LoadDeepLesionSlices(num_slices=9, interval_mm=1.0, log_every=4)
    for _ in range(4):  # 3 fallbacks each: 12 in total
        loader(dict(results))
    assert loader.num_fallbacks == 12
    # first, 4th, 8th and 12th fallback
    assert len(log_messages) == 4
    assert '12 missing neighbour slice(s) so far in 4 sample(s)' in \
        log_messages[-1]


def test_sparse_series_and_invalid_interval():
    # 000007_03_01 stores every 10th slice (040..070)
    results, series_dir = _series_results(50, 1.0, series='000007_03_01')
    out = LoadDeepLesionSlices(num_slices=3, interval_mm=10.0)(results)
    for c, index in enumerate((40, 50, 60)):
        np.testing.assert_array_equal(out['img'][..., c],
                                      _hu(series_dir / f'{index:03d}.png'))
    # 2 mm away = slice 48 and 52: missing, replaced towards the key (050)
    out = LoadDeepLesionSlices(num_slices=3)(dict(results))
    key = _hu(series_dir / '050.png')
    for c in range(3):
        np.testing.assert_array_equal(out['img'][..., c], key)
    assert out['num_fallback_slices'] == 2
    for bad in (float('nan'), 0.0, float('inf')):
        results['slice_interval'] = bad
        out = LoadDeepLesionSlices(num_slices=3)(dict(results))
        for c in range(3):
            np.testing.assert_array_equal(out['img'][..., c], key)
        assert out['num_fallback_slices'] == 2


# ------------------------------------------------- the 48 real key slices
def _real_key_slice_dataset(pipeline):
    root = _deeplesion_root()
    datasets = []
    for name in ('DL_info_val.csv', 'DL_info_test.csv'):
        datasets.append(
            DeepLesionDataset(
                data_root=str(root),
                ann_file=f'annotations/{name}',
                skip_missing_key_slices=True,
                serialize_data=False,
                pipeline=pipeline))
    return datasets


def test_real_annotated_key_slices_load():
    pipeline = [
        dict(type='LoadDeepLesionSlices', num_slices=3),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='LoadRecistPoints'),
    ]
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    n_images = n_lesions = n_repeated = 0
    seen_interpolated = False
    for ds in _real_key_slice_dataset(pipeline):
        for i in range(len(ds)):
            out = ds[i]
            img = out['img']
            assert img.shape == (512, 512, 3) and img.dtype == np.float32
            assert img.min() >= -1024 and img.max() <= 3071
            # the key slice is the middle channel, as stored (clamped)
            np.testing.assert_array_equal(
                img[..., 1], np.clip(_hu(out['img_path']), -1024, 3071))
            if out['num_fallback_slices'] == 2:
                # both neighbours absent: the key slice repeated
                np.testing.assert_array_equal(img[..., 0], img[..., 1])
                np.testing.assert_array_equal(img[..., 2], img[..., 1])
                n_repeated += 1
            if out['file_name'] == '003657_01_01_050.png':
                # 5 mm slices, 049 is stored: 2 mm above = 0.4 * 049 +
                # 0.6 * 050; 051 is absent -> key slice
                s49 = _hu(out['img_path'].replace('050.png', '049.png'))
                np.testing.assert_allclose(
                    img[..., 0], 0.4 * s49 + 0.6 * img[..., 1], atol=1e-3)
                np.testing.assert_array_equal(img[..., 2], img[..., 1])
                assert out['num_fallback_slices'] == 1
                seen_interpolated = True
            h, w = out['img_shape']
            boxes = out['gt_bboxes'].numpy()
            assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w - 1).all()
            assert (boxes[:, 3] <= h - 1).all()
            assert (boxes[:, 2:] > boxes[:, :2]).all()
            recists = out['gt_recists']
            assert recists.shape == (len(boxes), 4, 2)
            # RECIST end points lie in their box
            assert (recists >= boxes[:, None, :2] - 1e-3).all()
            assert (recists <= boxes[:, None, 2:] + 1e-3).all()
            n_images += 1
            n_lesions += len(boxes)
    assert (n_images, n_lesions) == (47, 48)
    assert n_repeated >= 40 and seen_interpolated


# --------------------------------------------------------------- bad input
def _write_png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def test_8bit_png_is_rejected(tmp_path):
    path = _write_png(tmp_path / 's' / '010.png',
                      np.zeros((16, 16), np.uint8))
    results = dict(img_path=str(path), key_slice=10, slice_interval=1.0)
    with pytest.raises(ValueError) as err:
        LoadDeepLesionSlices()(results)
    assert str(path) in str(err.value) and '16-bit' in str(err.value)
    # an 8-bit neighbour is rejected too, naming the neighbour
    key = _write_png(tmp_path / 't' / '010.png',
                     np.full((16, 16), 32768, np.uint16))
    bad = _write_png(tmp_path / 't' / '012.png', np.zeros((16, 16),
                                                          np.uint8))
    results = dict(img_path=str(key), key_slice=10, slice_interval=1.0)
    with pytest.raises(ValueError, match=str(bad)):
        LoadDeepLesionSlices()(results)
    # 16-bit but 3 channels
    rgb = _write_png(tmp_path / 'u' / '010.png',
                     np.zeros((16, 16, 3), np.uint16))
    with pytest.raises(ValueError, match='single-channel'):
        LoadDeepLesionSlices()(
            dict(img_path=str(rgb), key_slice=10, slice_interval=1.0))


def test_missing_or_broken_key_slice(tmp_path):
    path = tmp_path / 's' / '010.png'
    with pytest.raises(FileNotFoundError, match=str(path)):
        LoadDeepLesionSlices()(
            dict(img_path=str(path), key_slice=10, slice_interval=1.0))
    path.parent.mkdir()
    path.write_bytes(b'not a png')
    with pytest.raises(ValueError, match='cannot be decoded'):
        LoadDeepLesionSlices()(
            dict(img_path=str(path), key_slice=10, slice_interval=1.0))


def test_neighbour_of_another_size(tmp_path):
    key = _write_png(tmp_path / 's' / '010.png',
                     np.full((16, 16), 32768, np.uint16))
    bad = _write_png(tmp_path / 's' / '008.png',
                     np.full((8, 16), 32768, np.uint16))
    with pytest.raises(ValueError, match=f'{bad}: shape'):
        LoadDeepLesionSlices()(
            dict(img_path=str(key), key_slice=10, slice_interval=1.0))


def test_size_mismatch_and_hu_clip(tmp_path):
    img = np.full((16, 20), 32768 - 3024, np.uint16)
    img[4:8, 4:8] = 32768 + 4000
    path = _write_png(tmp_path / 's' / '010.png', img)
    results = dict(
        img_path=str(path), key_slice=10, slice_interval=1.0, height=512,
        width=512)
    with pytest.raises(ValueError, match=r'16x20.*Image_size.*512x512'):
        LoadDeepLesionSlices()(results)
    results.update(height=16, width=20)
    out = LoadDeepLesionSlices()(dict(results))
    assert out['img'].min() == -1024 and out['img'].max() == 3071
    raw = LoadDeepLesionSlices(hu_clip=None)(dict(results))
    assert raw['img'].min() == -3024 and raw['img'].max() == 4000


def test_arguments_checked():
    for bad in (dict(num_slices=2), dict(num_slices=0),
                dict(interval_mm=0), dict(hu_clip=(10, -10)),
                dict(log_every=0)):
        with pytest.raises(ValueError):
            LoadDeepLesionSlices(**bad)


# ---------------------------------------------------------- RECIST points
def test_load_recist_points_keeps_ignored():
    instances = [
        dict(bbox=[0, 0, 4, 4], bbox_label=0, ignore_flag=0,
             recist=[[1, 2], [3, 2], [2, 1], [2, 3]]),
        dict(bbox=[5, 5, 9, 9], bbox_label=-1, ignore_flag=1,
             recist=[[6, 7], [8, 7], [7, 6], [7, 8]]),
    ]
    out = LoadRecistPoints()(dict(instances=instances))
    assert out['gt_recists'].dtype == np.float32
    assert out['gt_recists'].shape == (2, 4, 2)
    assert out['gt_recists'][1, 0].tolist() == [6, 7]
    assert LoadRecistPoints()(dict(instances=[]))['gt_recists'].shape == \
        (0, 4, 2)
    with pytest.raises(ValueError, match='instance 0.*CSV row 7'):
        LoadRecistPoints()(
            dict(img_path='x.png',
                 instances=[dict(bbox=[0, 0, 1, 1], row=7)]))
    with pytest.raises(ValueError, match='instance 0'):
        LoadRecistPoints(allow_missing=True)(
            dict(instances=[dict(bbox=[0, 0, 1, 1], recist=[[1, 2]])]))
    out = LoadRecistPoints(allow_missing=True)(
        dict(instances=[dict(bbox=[0, 0, 1, 1])] + instances))
    assert out['gt_recists'].shape == (3, 4, 2)
    assert np.isnan(out['gt_recists'][0]).all()
    assert out['gt_recists'][2, 0].tolist() == [6, 7]


# --------------------------------------- mmdet transforms on 3 / 9 slices
@pytest.mark.parametrize('num_slices', [3, 9])
def test_mmdet_transforms_on_multi_slice_output(num_slices):
    from mmengine.registry import init_default_scope
    from mmdet.registry import TRANSFORMS
    init_default_scope('mmdet')
    results, _ = _series_results(70, 1.0)
    results['instances'] = [
        dict(bbox=[200., 220., 260., 270.], bbox_label=0, ignore_flag=0,
             recist=[[200, 245], [260, 245], [230, 220], [230, 270]])
    ]
    pipeline = [
        LoadDeepLesionSlices(num_slices=num_slices),
        WindowHU(),
        TRANSFORMS.build(dict(type='LoadAnnotations', with_bbox=True)),
        TRANSFORMS.build(dict(type='Resize', scale=(256, 256),
                              keep_ratio=True)),
        TRANSFORMS.build(dict(type='RandomFlip', prob=1.0,
                              direction='horizontal')),
        TRANSFORMS.build(
            dict(
                type='RandomAffine',
                max_rotate_degree=5,
                max_translate_ratio=0.05,
                scaling_ratio_range=(0.9, 1.1),
                max_shear_degree=2,
                border_val=(-1., -1., -1., -1.))),
        TRANSFORMS.build(
            dict(
                type='PackDetInputs',
                meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                           'scale_factor', 'flip', 'flip_direction',
                           'instances'))),
    ]
    for t in pipeline:
        results = t(results)
    inputs = results['inputs']
    sample = results['data_samples']
    assert inputs.shape == (num_slices, 256, 256)
    assert inputs.dtype.is_floating_point
    assert float(inputs.min()) >= -1 and float(inputs.max()) <= 1
    assert sample.scale_factor == (0.5, 0.5)
    assert sample.flip and sample.ori_shape == (512, 512)
    assert len(sample.gt_instances.bboxes) == 1
    box = sample.gt_instances.bboxes.numpy()[0]
    # resized to 30 x 25 px, then flipped and a small affine transform
    assert (box >= 0).all() and (box <= 256).all()
    assert 20 < box[2] - box[0] < 45 and 15 < box[3] - box[1] < 40
    assert sample.instances[0]['bbox'] == [200., 220., 260., 270.]


def test_png_without_offset_is_refused(tmp_path):
    """Raw HU cast to uint16 (negatives wrap) or unsigned scanner values
    (HU + 1024) decode far outside the CT range: refused, naming the file,
    instead of becoming a blank image after HU clipping."""
    hu = np.full((32, 32), -1000.0)
    hu[8:24, 8:24] = 40.0  # a body in air
    series = tmp_path / 'Images_png' / '000001_01_01'
    series.mkdir(parents=True)
    wrapped = series / '010.png'
    cv2.imwrite(str(wrapped), hu.astype(np.int16).view(np.uint16))
    unsigned = tmp_path / 'unsigned.png'
    cv2.imwrite(str(unsigned), (hu + 1024).astype(np.uint16))
    for path in (wrapped, unsigned):
        with pytest.raises(ValueError,
                           match=rf'{path}: .*without the \+32768 offset'):
            read_hu_png(str(path))
    with pytest.raises(ValueError, match=rf'{wrapped}: .*blank image'):
        LoadDeepLesionSlices(num_slices=3)(
            dict(img_path=str(wrapped), key_slice=10, slice_interval=2.0))
    with pytest.raises(ValueError, match='uint16 image: .*offset'):
        _as_hu(hu.astype(np.int16).view(np.uint16))

    # a real slice padded with -32768 outside a round field of view loads
    yy, xx = np.mgrid[:32, :32]
    padded = hu.copy()
    padded[(yy - 15.5)**2 + (xx - 15.5)**2 > 16**2] = -32768
    ok = tmp_path / 'padded.png'
    cv2.imwrite(str(ok), (padded + 32768).astype(np.uint16))
    np.testing.assert_array_equal(read_hu_png(str(ok)), padded)
