# Copyright (c) mmlesion contributors. All rights reserved.
import json

import pytest

from mmlesion.datasets import CrossValVolumeDataset
from mmlesion.datasets.volumes.dataset import volume_fold


def _ann_file(tmp_path, files):
    volumes = [
        dict(id=f'scan{i}', file=f, series_uid=f'1.{i}', shape_zyx=[8, 8, 8],
             spacing_zyx=[1., 1., 1.], origin_xyz=[0., 0., 0.],
             direction=[1., 0, 0, 0, 1., 0, 0, 0, 1.], annotations=[])
        for i, f in enumerate(files)
    ]
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(dict(
        metainfo=dict(dataset='luna16', classes=['nodule'],
                      box_format='x1y1z1x2y2z2_voxel'),
        volumes=volumes)))
    return str(path)


def test_luna16_subset_folds(tmp_path):
    files = [f'subset{k}/a{i}.mhd' for k in range(10) for i in range(2)]
    ann = _ann_file(tmp_path, files)
    test = CrossValVolumeDataset(ann_file=ann, fold=3, split='test',
                                 lazy_init=False)
    train = CrossValVolumeDataset(ann_file=ann, fold=3, split='train')
    assert len(test) == 2 and len(train) == 18
    assert all('subset3' in test.get_data_info(i)['img_path']
               for i in range(2))
    assert not any('subset3' in train.get_data_info(i)['img_path']
                   for i in range(18))
    assert volume_fold(train.get_data_info(0), 10, 'subset') != 3


def test_hash_folds_partition(tmp_path):
    ann = _ann_file(tmp_path, [f'subset0/a{i}.mhd' for i in range(40)])
    ids = set()
    for fold in range(4):
        test = CrossValVolumeDataset(ann_file=ann, fold=fold, split='test',
                                     num_folds=4, fold_source='hash')
        ids |= {test.get_data_info(i)['img_id'] for i in range(len(test))}
        assert 0 < len(test) < 40
    assert len(ids) == 40


def test_errors(tmp_path):
    ann = _ann_file(tmp_path, ['scans/a.mhd'])
    with pytest.raises(ValueError, match='no subsetN folder'):
        CrossValVolumeDataset(ann_file=ann, fold=0)
    with pytest.raises(ValueError, match='fold 10'):
        CrossValVolumeDataset(ann_file=ann, fold=10)
    assert volume_fold(dict(img_id='x', img_path='/d/subset12/x.mhd'), 20,
                       'subset') == 12
