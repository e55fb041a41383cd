# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the RECIST mask cache
(:mod:`mmlesion.datasets.transforms.recist_mask_cache`).

Pinned: the file name of an image (``file_name`` first, an empty one
ignored, else ``<parent>_<stem>`` of the path, only ``<stem>`` without a
parent), the exact arrays and dtypes of a cache file and the crops pasted
back at their offsets (an image without lesions too, no temporary file
left), ``meta.json`` (format, tuples written as lists, nested, a folder
created) and the two refusals of :func:`read_cache_params` with their
messages (docs/mutation_testing.md).
"""
import json
import os

import numpy as np
import pytest

from mmlesion.datasets.transforms.recist_mask_cache import (
    CACHE_FORMAT, CACHE_PARAM_KEYS, _json_value, cache_file_name,
    load_mask_npz, read_cache_params, save_mask_npz, write_cache_meta)


def test_cache_file_name():
    assert cache_file_name('/d/Images_png/000002_01_01/162.png') == \
        '000002_01_01_162.npz'
    assert cache_file_name('162.png') == '162.npz'
    assert cache_file_name('a.b/c.d.png') == 'a.b_c.d.npz'
    assert cache_file_name(dict(file_name='x/000002_01_01_162.png',
                                img_path='/p/q/r.png')) == \
        '000002_01_01_162.npz'
    # an empty or missing file_name: the path decides
    assert cache_file_name(dict(file_name='', img_path='/p/q/r.png')) == \
        'q_r.npz'
    assert cache_file_name(dict(img_path='/p/q/r.png')) == 'q_r.npz'
    assert cache_file_name(dict(img_path='r.png')) == 'r.npz'


def test_save_and_load_mask_npz(tmp_path):
    path = str(tmp_path / 'a.npz')
    crops = [np.array([[1, 0], [1, 1]], bool), np.array([[2, 1, 0]])]
    save_mask_npz(path, [[1, 2, 3, 4], [0, 0, 5, 0]], crops,
                  [(3, 1), (0, 3)], (4, 6))
    assert os.listdir(tmp_path) == ['a.npz']
    with np.load(path) as raw:
        assert sorted(raw.files) == ['bboxes', 'image_shape', 'mask_0',
                                     'mask_1', 'offsets']
        assert raw['bboxes'].dtype == np.float64
        assert raw['bboxes'].tolist() == [[1, 2, 3, 4], [0, 0, 5, 0]]
        assert raw['image_shape'].dtype == np.int64
        assert raw['image_shape'].tolist() == [4, 6]
        assert raw['offsets'].dtype == np.int64
        assert raw['offsets'].tolist() == [[3, 1], [0, 3]]
        assert raw['mask_0'].dtype == np.uint8
        assert raw['mask_0'].tolist() == [[1, 0], [1, 1]]
        assert raw['mask_1'].dtype == np.uint8
        assert raw['mask_1'].tolist() == [[2, 1, 0]]
    data = load_mask_npz(path)
    assert data._fields == ('bboxes', 'image_shape', 'masks')
    assert data.image_shape == (4, 6)
    assert all(type(v) is int for v in data.image_shape)
    assert data.bboxes.tolist() == [[1, 2, 3, 4], [0, 0, 5, 0]]
    first = np.zeros((4, 6), np.uint8)
    first[1:3, 3:5] = [[1, 0], [1, 1]]
    second = np.zeros((4, 6), np.uint8)
    second[3, 0:3] = [1, 1, 0]  # paste_crop writes into a uint8 mask
    assert len(data.masks) == 2
    np.testing.assert_array_equal(data.masks[0], first)
    np.testing.assert_array_equal(data.masks[1] > 0, second > 0)
    assert data.masks[0].dtype == np.uint8


def test_flat_boxes_and_offsets_and_no_lesion(tmp_path):
    path = str(tmp_path / 'b.npz')
    # int32 offsets and shape are written as int64 (the cache format)
    save_mask_npz(path, [1, 2, 3, 4], [np.ones((1, 1))],
                  np.array([2, 3], np.int32), np.array([5, 5], np.int32))
    with np.load(path) as raw:
        assert raw['bboxes'].shape == (1, 4)
        assert raw['offsets'].shape == (1, 2)
        assert raw['offsets'].dtype == np.int64
        assert raw['image_shape'].dtype == np.int64
    assert load_mask_npz(path).masks[0][3, 2] == 1
    empty = str(tmp_path / 'c.npz')
    save_mask_npz(empty, np.zeros((0, 4)), [], np.zeros((0, 2)), (5, 5))
    with np.load(empty) as raw:
        assert raw['bboxes'].shape == (0, 4)
        assert raw['offsets'].shape == (0, 2)
    data = load_mask_npz(empty)
    assert data.masks == [] and data.image_shape == (5, 5)


def test_json_value():
    assert _json_value((1, (2.0, 'a'))) == [1, [2.0, 'a']]
    assert _json_value([1, (2, )]) == [1, (2, )]  # only tuples
    assert _json_value(None) is None and _json_value('ab') == 'ab'


def test_write_and_read_meta(tmp_path):
    folder = tmp_path / 'new' / 'cache'
    write_cache_meta(str(folder), dict(window=(-160.0, 240.0), seed=0))
    text = (folder / 'meta.json').read_text()
    assert json.loads(text) == dict(
        format='mmlesion-recist-masks-v1',
        params=dict(window=[-160.0, 240.0], seed=0))
    assert text.startswith('{\n  "format"')  # indented by two
    assert read_cache_params(str(folder))['window'] == [-160.0, 240.0]
    # an existing folder is fine
    write_cache_meta(str(folder), dict(seed=1))
    assert read_cache_params(str(folder)) == dict(seed=1)
    assert CACHE_FORMAT == 'mmlesion-recist-masks-v1'
    assert CACHE_PARAM_KEYS[0] == 'window' and len(CACHE_PARAM_KEYS) == 10


def test_read_meta_refusals(tmp_path):
    path = os.path.join(str(tmp_path), 'meta.json')
    with pytest.raises(FileNotFoundError) as err:
        read_cache_params(str(tmp_path))
    assert str(err.value) == (
        f'{path} not found: not a RECIST mask cache (write one with '
        'tools/dataset_converters/recist_to_masks.py)')
    # a folder named meta.json is not a file
    os.mkdir(path)
    with pytest.raises(FileNotFoundError):
        read_cache_params(str(tmp_path))
    os.rmdir(path)
    with open(path, 'w') as f:
        json.dump(dict(format='other-v2', params={}), f)
    with pytest.raises(ValueError) as err:
        read_cache_params(str(tmp_path))
    assert str(err.value) == (
        f"{path}: format 'other-v2', expected 'mmlesion-recist-masks-v1'")
    with open(path, 'w') as f:
        json.dump(dict(params={}), f)
    with pytest.raises(ValueError, match="format None, expected"):
        read_cache_params(str(tmp_path))
