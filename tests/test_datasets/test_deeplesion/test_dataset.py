# Copyright (c) mmlesion contributors. All rights reserved.
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmlesion.datasets import DeepLesionDataset
from mmlesion.datasets.deeplesion.dl_info import (COARSE_LESION_TYPES,
                                                  DL_INFO_COLUMNS)
from mmlesion.testing import get_config, shared_data_root

CONTRACT_KEYS = {
    'img_path', 'img_id', 'file_name', 'series_dir', 'key_slice',
    'slice_range', 'slice_interval', 'spacing', 'height', 'width',
    'patient_id', 'study_id', 'series_id', 'instances'
}
INSTANCE_KEYS = {
    'bbox', 'bbox_label', 'ignore_flag', 'recist', 'diameters_px',
    'diameters_mm', 'lesion_type', 'normalized_location', 'noisy', 'row'
}


def _deeplesion_root():
    root = shared_data_root()
    if root is None or not (root / 'deeplesion' / 'Images_png').is_dir():
        pytest.skip('shared DeepLesion data ($MMLESION_SHARED_DATA/deeplesion) is '
                    'not available')
    return root / 'deeplesion'


def _row(file_name, box=(10, 12, 30, 34), lesion_type=4, noisy=0,
         split=1, size=(64, 64), spacing=(0.7, 0.7, 5.0), slice_range=None):
    """One DL_info.csv row (1-based coordinates) as a list of strings."""
    patient, study, series, key = (int(p) for p in file_name[:-4].split('_'))
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    recist = (x1 + 5, cy, x2 - 5, cy, cx, y1 + 5, cx, y2 - 5)
    if slice_range is None:
        slice_range = (key - 2, key + 2)

    def j(values):
        return ', '.join(str(v) for v in values)

    return [
        file_name,
        str(patient),
        str(study),
        str(series),
        str(key),
        j(recist),
        j(box),
        j((x2 - x1 - 10, y2 - y1 - 10)), '0.5, 0.5, 0.5',
        str(lesion_type),
        str(noisy),
        j(slice_range),
        j(spacing),
        j(size), '-175, 275', 'M', '60',
        str(split)
    ]


def _write_dataset(root, rows, images=None, size=(64, 64)):
    """Write DL_info.csv and the key-slice PNGs (or only ``images``)."""
    import csv
    root.mkdir(parents=True, exist_ok=True)
    with open(root / 'DL_info.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(DL_INFO_COLUMNS)
        writer.writerows(rows)
    names = {r[0] for r in rows} if images is None else images
    for name in names:
        series, slice_file = name.rsplit('_', 1)
        folder = root / 'Images_png' / series
        folder.mkdir(parents=True, exist_ok=True)
        img = np.full(size, 32768 - 1000, np.uint16)
        cv2.imwrite(str(folder / slice_file), img)
    return root


def _build(root, **kwargs):
    # serialize_data=False: mmengine's serialization runs gc.collect(),
    # slow in a process that imported torch
    return DeepLesionDataset(
        data_root=str(root), pipeline=[], serialize_data=False, **kwargs)


# ---------------------------------------------------------------- real data
def _real_dataset(name, **kwargs):
    root = _deeplesion_root()
    return DeepLesionDataset(
        data_root=str(root),
        ann_file=f'annotations/{name}',
        skip_missing_key_slices=True,
        pipeline=[],
        serialize_data=False,
        **kwargs)


def test_real_key_slices_data_infos():
    val = _real_dataset('DL_info_val.csv')
    test = _real_dataset('DL_info_test.csv')
    assert len(val) == 23 and len(test) == 24
    infos = [val.get_data_info(i) for i in range(len(val))] + \
        [test.get_data_info(i) for i in range(len(test))]
    assert sum(len(i['instances']) for i in infos) == 48
    assert len({i['file_name'] for i in infos}) == 47
    for info in infos:
        assert CONTRACT_KEYS <= set(info)
        assert osp.isabs(info['img_path']) and osp.isfile(info['img_path'])
        assert info['img_path'] == osp.join(info['series_dir'],
                                            f"{info['key_slice']:03d}.png")
        assert info['file_name'] == (
            f"{info['patient_id']:06d}_{info['study_id']:02d}_"
            f"{info['series_id']:02d}_{info['key_slice']:03d}.png")
        assert info['slice_range'][0] <= info['key_slice'] <= \
            info['slice_range'][1]
        assert (info['height'], info['width']) == (512, 512)
        assert 0.5 < info['spacing'] < 1.0
        assert info['slice_interval'] in (1.0, 2.0, 5.0)
        for ins in info['instances']:
            assert set(ins) == INSTANCE_KEYS
            x1, y1, x2, y2 = ins['bbox']
            assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512
            assert np.array(ins['recist']).shape == (4, 2)
            assert ins['bbox_label'] == 0 and ins['ignore_flag'] == 0
            assert ins['noisy'] is False
            assert ins['diameters_mm'][0] == pytest.approx(
                ins['diameters_px'][0] * info['spacing'])
    two = [i for i in infos if i['file_name'] == '002648_01_01_061.png']
    assert len(two) == 1 and len(two[0]['instances']) == 2
    assert sorted(ins['lesion_type']
                  for ins in two[0]['instances']) == [2, 4]
    # first row of 000069_02_01_058.png: box "159.869, 267.93, ..." (1-based
    # first and last pixel): 0-based, x2 and y2 one past the last pixel
    first = next(i for i in infos if i['file_name'] == '000069_02_01_058.png')
    assert first['instances'][0]['bbox'] == pytest.approx(
        [158.869, 266.93, 186.078, 289.996])
    assert val.metainfo['box_convention'] == 'exclusive'


def test_real_missing_key_slice_raises():
    root = _deeplesion_root()
    with pytest.raises(FileNotFoundError) as err:
        DeepLesionDataset(
            data_root=str(root),
            ann_file='annotations/DL_info_val.csv',
            pipeline=[])
    msg = str(err.value)
    # the first row of the file: 000002_01_01_162.png is not in shared data
    assert 'DL_info_val.csv: row 2' in msg and '000002_01_01_162.png' in msg
    assert "'File_name'" in msg


def test_real_split_and_coarse_types():
    with pytest.raises(ValueError) as err:
        _real_dataset('DL_info_val.csv', split='test')
    assert ("DL_info_val.csv: no row of split 'test' (Train_Val_Test=3); "
            "the file has 'val' (4889 rows)") in str(err.value)
    typed = _real_dataset('DL_info_val.csv', label_mode='coarse_type')
    assert typed.metainfo['classes'] == COARSE_LESION_TYPES
    labels = sorted(
        ins['bbox_label'] for i in range(len(typed))
        for ins in typed.get_data_info(i)['instances'])
    assert set(labels) == {1, 3}  # abdomen (2) and liver (4)


# ----------------------------------------------------------- synthetic data
def test_grouping_split_noisy_ids(tmp_path):
    rows = [
        _row('000001_01_01_010.png', split=1),
        _row('000001_01_01_010.png', box=(30, 30, 50, 50), split=1),
        _row('000002_01_01_020.png', split=2, noisy=1),
        _row('000002_01_01_020.png', split=2, box=(5, 5, 15, 15)),
        _row('000003_01_01_030.png', split=3, noisy=1),
    ]
    root = _write_dataset(tmp_path / 'dl', rows)
    ds = _build(root)
    assert len(ds) == 2  # the only-noisy image disappears
    info = ds.get_data_info(0)
    assert info['file_name'] == '000001_01_01_010.png'
    assert len(info['instances']) == 2
    assert [ins['row'] for ins in info['instances']] == [2, 3]
    assert info['instances'][1]['bbox'] == [29.0, 29.0, 50.0, 50.0]
    assert ds.get_data_info(1)['instances'][0]['row'] == 5

    all_rows = _build(root, drop_noisy=False)
    assert len(all_rows) == 3
    assert [len(all_rows.get_data_info(i)['instances'])
            for i in range(3)] == [2, 2, 1]
    assert all_rows.get_data_info(2)['instances'][0]['noisy'] is True

    for split, expected in (('train', 0), (1, 0), ('val', 1), (2, 1),
                            ('test', 2)):
        ds = _build(root, split=split, drop_noisy=False)
        assert len(ds) == 1
        assert ds.get_data_info(0)['img_id'] == expected  # stable ids
    with pytest.raises(ValueError, match='split'):
        _build(root, split='training')


def test_coarse_type_labels_and_unknown(tmp_path):
    rows = [
        _row('000001_01_01_010.png', lesion_type=5),
        _row('000001_01_01_010.png', lesion_type=-1, box=(30, 30, 50, 50)),
        _row('000002_01_01_020.png', lesion_type=-1),
    ]
    root = _write_dataset(tmp_path / 'dl', rows)
    ds = _build(root, label_mode='coarse_type')
    assert len(ds.metainfo['classes']) == 8
    ins = ds.get_data_info(0)['instances']
    assert (ins[0]['bbox_label'], ins[0]['ignore_flag']) == (4, 0)
    assert (ins[1]['bbox_label'], ins[1]['ignore_flag']) == (-1, 1)
    assert ds.get_cat_ids(0) == [4]
    # filter_empty_gt drops the image whose only lesion is ignored
    assert len(ds) == 2
    filtered = _build(
        root, label_mode='coarse_type', filter_cfg=dict(filter_empty_gt=True))
    assert len(filtered) == 1
    test_mode = _build(
        root,
        label_mode='coarse_type',
        filter_cfg=dict(filter_empty_gt=True),
        test_mode=True)
    assert len(test_mode) == 2
    dropped = _build(root, label_mode='coarse_type', unknown_type='drop')
    assert len(dropped) == 1
    assert len(dropped.get_data_info(0)['instances']) == 1
    with pytest.raises(ValueError, match=r"row 3, field 'Coarse_lesion_type'"):
        _build(root, label_mode='coarse_type', unknown_type='error')
    with pytest.raises(ValueError, match='needs 8 class'):
        _build(root, label_mode='coarse_type', metainfo=dict(classes=('a', )))
    with pytest.raises(ValueError, match='label_mode'):
        _build(root, label_mode='types')
    # lesion mode ignores types
    plain = _build(root)
    assert plain.metainfo['classes'] == ('lesion', )
    assert {i['bbox_label'] for i in plain.get_data_info(1)['instances']} \
        == {0}


def test_box_without_width_is_ignored(tmp_path):
    """A converter's one-pixel cross-section (x1 == x2 in DL_info, one
    pixel wide in mmdet's box): kept, ignored."""
    tip = _row('000001_01_01_010.png', box=(30, 30, 30, 32))
    tip[5], tip[7] = '30, 30, 30, 32, 30, 30, 30, 32', '0, 2'
    root = _write_dataset(tmp_path / 'dl',
                          [_row('000001_01_01_010.png'), tip])
    ins = _build(root).get_data_info(0)['instances']
    assert [i['ignore_flag'] for i in ins] == [0, 1]
    assert ins[1]['bbox'] == [29., 29., 30., 32.]


def test_min_size_filter(tmp_path):
    rows = [_row('000001_01_01_010.png')]
    root = _write_dataset(tmp_path / 'dl', rows)
    assert len(_build(root, filter_cfg=dict(min_size=64))) == 1
    with pytest.raises(ValueError, match='DL_info.csv: filter_cfg=.* removed '
                       'all 1 images'):
        _build(root, filter_cfg=dict(min_size=65))


def test_missing_key_slice(tmp_path):
    rows = [_row('000001_01_01_010.png'), _row('000002_01_01_020.png')]
    root = _write_dataset(
        tmp_path / 'dl', rows, images=['000001_01_01_010.png'])
    with pytest.raises(FileNotFoundError) as err:
        _build(root)
    msg = str(err.value)
    assert f"{root / 'DL_info.csv'}: row 3, field 'File_name'" in msg
    assert osp.join('Images_png', '000002_01_01', '020.png') in msg
    ds = _build(root, skip_missing_key_slices=True)
    assert len(ds) == 1


def test_box_outside_image(tmp_path):
    # 1-based box reaching 5 px past a 64-px image: DeepLesion-like, kept
    rows = [_row('000001_01_01_010.png', box=(40, 10, 69, 30))]
    root = _write_dataset(tmp_path / 'ok', rows)
    info = _build(root).get_data_info(0)
    assert info['instances'][0]['bbox'] == [39.0, 9.0, 69.0, 30.0]

    rows = [
        _row('000001_01_01_010.png'),
        _row('000001_01_01_010.png', box=(40, 10, 90, 30))
    ]
    root = _write_dataset(tmp_path / 'bad', rows)
    with pytest.raises(ValueError) as err:
        _build(root)
    msg = str(err.value)
    assert msg.startswith(
        f"{root / 'DL_info.csv'}: row 3, field 'Bounding_boxes'")
    assert '64x64' in msg
    assert len(_build(root, box_tolerance=None)) == 1

    rows = [_row('000001_01_01_010.png', box=(-30, 10, -20, 30))]
    root = _write_dataset(tmp_path / 'left', rows)
    with pytest.raises(ValueError, match="row 2, field 'Bounding_boxes'"):
        _build(root)


def test_inconsistent_rows_of_one_image(tmp_path):
    rows = [
        _row('000001_01_01_010.png'),
        _row('000001_01_01_010.png', box=(30, 30, 50, 50),
             spacing=(0.8, 0.8, 5.0))
    ]
    root = _write_dataset(tmp_path / 'dl', rows)
    with pytest.raises(ValueError, match=r"row 3, field 'Spacing_mm_px_'"):
        _build(root)


def test_malformed_csv_through_dataset(tmp_path):
    row = _row('000001_01_01_010.png')
    row[6] = '1, 2, 3'
    root = _write_dataset(tmp_path / 'dl', [row])
    with pytest.raises(ValueError) as err:
        _build(root)
    assert str(err.value).startswith(
        f"{root / 'DL_info.csv'}: row 2, field 'Bounding_boxes': "
        'expected 4 numbers, got 3')


# ------------------------------------------------------------- base configs
@pytest.mark.parametrize('name,num_slices', [('deeplesion_3slice.py', 3),
                                             ('deeplesion_9slice.py', 9)])
def test_base_configs_on_real_key_slices(name, num_slices):
    root = _deeplesion_root()
    init_default_scope('mmdet')
    from mmdet.registry import DATASETS
    cfg = get_config(f'_base_/datasets/{name}')
    assert cfg.val_evaluator.type == 'FROCMetric'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds_cfg = cfg[loader].dataset
        assert ds_cfg.data_root == 'data/DeepLesion/'
        assert ds_cfg.ann_file == 'DL_info.csv'
        pack = ds_cfg.pipeline[-1]
        assert pack.type == 'PackDetInputs' and 'instances' in pack.meta_keys
        ds_cfg.data_root = str(root)
        ds_cfg.ann_file = 'annotations/DL_info_test.csv'
        ds_cfg.split = None
        ds_cfg.skip_missing_key_slices = True
        ds_cfg.serialize_data = False
        dataset = DATASETS.build(ds_cfg)
        assert len(dataset) == 24
        packed = dataset[0]
        assert packed['inputs'].shape == (num_slices, 512, 512)
        sample = packed['data_samples']
        assert sample.instances == dataset.get_data_info(0)['instances']
        if loader == 'train_dataloader':
            lo, hi = packed['inputs'].min(), packed['inputs'].max()
            assert -1.0 <= lo and hi <= 1.0
            # the data_preprocessor recommended in the config comments
            from mmengine.dataset import pseudo_collate
            from mmdet.registry import MODELS
            pre = MODELS.build(
                dict(
                    type='DetDataPreprocessor',
                    mean=None,
                    std=None,
                    bgr_to_rgb=False,
                    pad_size_divisor=32,
                    pad_value=-1.))
            batch = pre(pseudo_collate([packed, dataset[1]]), training=True)
            assert batch['inputs'].shape[:2] == (2, num_slices)
        else:
            assert sample.scale_factor == (1.0, 1.0)
            gt = sample.gt_instances.bboxes.numpy()
            assert np.allclose(
                gt, [i['bbox'] for i in sample.instances], atol=1e-3)


def test_no_image_raises_when_built(tmp_path):
    """An empty split used to crash later in mmengine (ZeroDivisionError)."""
    header_only = _write_dataset(tmp_path / 'header', [])
    with pytest.raises(ValueError, match=r'DL_info.csv: no lesion row, only '
                       'a header'):
        _build(header_only)
    rows = [_row('000001_01_01_010.png', split=1),
            _row('000002_01_01_010.png', split=3, noisy=1)]
    root = _write_dataset(tmp_path / 'dl', rows)
    with pytest.raises(ValueError) as err:
        _build(root, split='val')
    assert (f"{root / 'DL_info.csv'}: no row of split 'val' "
            "(Train_Val_Test=2); the file has 'train' (1 rows), 'test' "
            '(1 rows)') in str(err.value)
    with pytest.raises(ValueError, match=r"all 1 key slices of split 'test' "
                       r'were dropped .*drop_noisy=True'):
        _build(root, split='test')
    with pytest.raises(ValueError, match=r"split 'train' is empty after "
                       'indices=0'):
        _build(root, split='train', indices=0)


def test_duplicated_row_names_both_rows(tmp_path):
    rows = [_row('000001_01_01_010.png'),
            _row('000001_01_01_010.png', box=(30, 30, 50, 50)),
            _row('000001_01_01_010.png')]
    root = _write_dataset(tmp_path / 'dl', rows)
    with pytest.raises(ValueError) as err:
        _build(root)
    assert (f"{root / 'DL_info.csv'}: 1 duplicated lesion row(s): row 4 "
            "repeats row 2 ('000001_01_01_010.png', same Bounding_boxes)"
            ) in str(err.value)
    ds = _build(root, duplicate_rows='drop')
    assert [ins['row'] for ins in ds.get_data_info(0)['instances']] == [2, 3]


# ------------------------------------------- mmdet's stock image loader
@pytest.mark.parametrize('step', [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmcv.LoadImageFromFile', color_type='unchanged'),
    'class',
])
def test_stock_image_loader_in_pipeline_is_refused(tmp_path, step):
    """mmdet's LoadImageFromFile reads the 16-bit HU PNGs as 8-bit
    pictures: refused naming the dataset, the step and the replacement."""
    from mmcv.transforms import LoadImageFromFile
    if step == 'class':
        step = dict(type=LoadImageFromFile)
    init_default_scope('mmdet')
    root = _write_dataset(tmp_path / 'dl', [_row('000001_01_01_005.png')])
    with pytest.raises(ValueError) as info:
        DeepLesionDataset(
            data_root=str(root),
            pipeline=[dict(type='LoadAnnotations', with_bbox=True), step],
            serialize_data=False)
    msg = str(info.value)
    assert '\n' not in msg, msg
    for word in ('DeepLesionDataset', 'DL_info.csv', 'pipeline step 1',
                 'LoadImageFromFile', "dict(type='LoadDeepLesionSlices')"):
        assert word in msg, (word, msg)


def test_deeplesion_loader_in_pipeline_loads_hu(tmp_path):
    init_default_scope('mmdet')
    root = _write_dataset(tmp_path / 'dl', [_row('000001_01_01_005.png')])
    ds = DeepLesionDataset(
        data_root=str(root),
        pipeline=[dict(type='LoadDeepLesionSlices', num_slices=3)],
        serialize_data=False)
    img = ds[0]['img']
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
    assert np.all(img == -1000)
