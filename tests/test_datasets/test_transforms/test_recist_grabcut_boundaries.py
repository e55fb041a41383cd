# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the ``RecistToMask`` transform
(:mod:`mmlesion.datasets.transforms.recist_grabcut`), without the real data.

Pinned: the identity geometry accepted before the transform (scale factor,
flip, a 3 x 3 homography, given as exact numbers too), the ``repr``, the
checks of the cache's ``meta.json`` (missing ``params``, the message naming
the differing values and the file, read once per transform), the box
matching of the cache (the closest stored box, a difference of exactly
``_BOX_TOL`` still matching and one just above not, an image file with no
lesion, a shape mismatch) and the messages naming the image: the cases a
small change of the code would get wrong while ``test_recist_grabcut.py``
passes (docs/mutation_testing.md).
"""
import json
import os.path as osp
import re
from dataclasses import asdict
from decimal import Decimal

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmlesion.datasets.transforms.recist_grabcut import RecistToMask
from mmlesion.datasets.transforms.recist_grabcut_ops import (_BOX_TOL,
                                                             box_pixel_mask)
from mmlesion.datasets.transforms.recist_mask_cache import (cache_file_name,
                                                            save_mask_npz,
                                                            write_cache_meta)

init_default_scope('mmdet')

SHAPE = (32, 32)


def _results(boxes, recists=None, **extra):
    """A small results dict with float64 boxes (no rounding to float32)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if recists is None:
        recists = np.full((len(boxes), 4, 2), np.nan)
    img = np.zeros(SHAPE + (3, ), dtype=np.float32)
    out = dict(
        img=img,
        img_path='/nowhere/000001_01_01/010.png',
        gt_bboxes=boxes,
        gt_recists=np.asarray(recists, dtype=np.float64))
    out.update(extra)
    return out


def _cache(tmp_path, boxes, masks, shape=SHAPE, params=None):
    """A cache folder holding one image's full-size masks at (0, 0)."""
    write_cache_meta(
        str(tmp_path), RecistToMask().params if params is None else params)
    results = _results(boxes)
    save_mask_npz(
        str(tmp_path / cache_file_name(results)), boxes, masks,
        [(0, 0)] * len(masks), shape)
    return results


# -------------------------------------------------------------- geometry
@pytest.mark.parametrize('extra', [
    dict(scale_factor=(1.0, 1.0)),
    dict(scale_factor=(Decimal(1), Decimal(1))),
    dict(flip=False),
    dict(homography_matrix=np.eye(3)),
    dict(homography_matrix=[[Decimal(int(i == j)) for j in range(3)]
                            for i in range(3)]),
])
def test_identity_geometry_is_accepted(extra):
    out = RecistToMask()(_results([[4, 4, 12, 12]], **extra))
    assert out['gt_masks'].masks.shape == (1, ) + SHAPE


@pytest.mark.parametrize('extra', [
    dict(scale_factor=(1.0, 1.001)),
    dict(flip=True),
    dict(homography_matrix=np.diag([1.0, 1.0, 1.001])),
])
def test_any_other_geometry_is_refused(extra):
    key = next(iter(extra))
    with pytest.raises(ValueError, match=f'found {key!r}'):
        RecistToMask()(_results([[4, 4, 12, 12]], **extra))


def test_repr_names_every_mask_parameter_and_the_cache():
    t = RecistToMask(window=None, iterations=3, cache_dir='/c')
    assert repr(t) == (
        'RecistToMask(window=None, iterations=3, unknown=\'ellipse\', '
        'context_px=16, context_ratio=0.5, min_diameter=6.0, '
        'min_quad_area=2.0, keep_connected=True, fill_holes=True, seed=0, '
        "cache_dir='/c')")


# ------------------------------------------------------------ cache meta
def test_meta_without_params_differs_in_every_parameter(tmp_path):
    (tmp_path / 'meta.json').write_text(
        json.dumps(dict(format='mmlesion-recist-masks-v1')))
    with pytest.raises(ValueError, match='other parameters') as err:
        RecistToMask(cache_dir=str(tmp_path))(_results([[4, 4, 12, 12]]))
    assert "'seed': (None, 0)" in str(err.value)
    assert "'window': (None, [-160.0, 240.0])" in str(err.value)


def test_meta_mismatch_message(tmp_path):
    _cache(tmp_path, np.zeros((0, 4)), [],
           params=dict(RecistToMask().params, iterations=7))
    with pytest.raises(ValueError) as err:
        RecistToMask(cache_dir=str(tmp_path))(_results([[4, 4, 12, 12]]))
    assert str(err.value) == (
        f'{osp.join(str(tmp_path), "meta.json")}: the cached masks were made '
        "with other parameters (cache, transform): {'iterations': (7, 5)}. "
        'Use the same RecistToMask arguments or rebuild the cache with '
        'tools/dataset_converters/recist_to_masks.py --force')


def test_meta_is_read_once(tmp_path):
    box = [4, 4, 12, 12]
    full = box_pixel_mask(box, SHAPE).astype(np.uint8)
    results = _cache(tmp_path, np.array([box], float), [full])
    t = RecistToMask(cache_dir=str(tmp_path), cache_missing='error')
    np.testing.assert_array_equal(t(dict(results))['gt_masks'].masks[0], full)
    (tmp_path / 'meta.json').unlink()
    np.testing.assert_array_equal(t(dict(results))['gt_masks'].masks[0], full)
    with pytest.raises(FileNotFoundError, match='meta.json'):
        RecistToMask(cache_dir=str(tmp_path),
                     cache_missing='error')(dict(results))
    # a folder without meta.json is no cache: the mask is computed (here:
    # not the stored full box, which a read would give)
    computed = RecistToMask(cache_dir=str(tmp_path))(dict(results))
    assert not np.array_equal(computed['gt_masks'].masks[0], full)



def test_an_absent_cache_is_looked_for_once(tmp_path):
    """Without ``meta.json`` the masks are computed, and stay computed when
    a cache appears later (the folder is not looked at again)."""
    box = [4, 4, 12, 12]
    t = RecistToMask(cache_dir=str(tmp_path))
    first = t(_results([box]))['gt_masks'].masks[0]
    full = box_pixel_mask(box, SHAPE).astype(np.uint8)
    results = _cache(tmp_path, np.array([box], float), [full])
    again = t(dict(results))['gt_masks'].masks[0]
    np.testing.assert_array_equal(again, first)
    assert not np.array_equal(again, full)


def test_a_written_cache_file_reads_back_as_the_computed_masks(tmp_path):
    results = _results([[4, 4, 12, 12], [14, 6, 28, 20]])
    crops, _, methods = RecistToMask().write_cache_file(
        dict(results), str(tmp_path))
    write_cache_meta(str(tmp_path), RecistToMask().params)
    got = RecistToMask(cache_dir=str(tmp_path), cache_missing='error')(
        dict(results))['gt_masks'].masks
    want = RecistToMask()(dict(results))['gt_masks'].masks
    np.testing.assert_array_equal(got, want)
    assert methods == ['degenerate', 'degenerate']
    assert [c.sum() for c in crops] == [m.sum() for m in want]

# ----------------------------------------------------------- box matching
def test_the_closest_stored_box_is_used(tmp_path):
    boxes = np.array([[0, 0, 5, 5], [4, 4, 12, 12], [4, 4, 12, 13]], float)
    masks = [np.zeros(SHAPE, np.uint8) for _ in range(3)]
    for i, m in enumerate(masks):
        m[i, i] = 1  # a mark telling the stored masks apart
    _cache(tmp_path, boxes, masks)
    t = RecistToMask(cache_dir=str(tmp_path), cache_missing='error')
    out = t(_results(boxes[[2, 1]]))['gt_masks'].masks
    np.testing.assert_array_equal(out[0], masks[2])
    np.testing.assert_array_equal(out[1], masks[1])


def test_box_tolerance_is_inclusive(tmp_path):
    stored = np.array([[0., 4., 12., 12.]])
    mark = np.zeros(SHAPE, np.uint8)
    mark[0, 0] = 1  # not what GrabCut or a fallback would give
    _cache(tmp_path, stored, [mark])
    t = RecistToMask(cache_dir=str(tmp_path), cache_missing='error')
    at_tol = stored + [[_BOX_TOL, 0, 0, 0]]
    assert np.abs(at_tol - stored).max() == _BOX_TOL
    np.testing.assert_array_equal(
        t(_results(at_tol))['gt_masks'].masks[0], mark)
    above = stored + [[_BOX_TOL * 1.001, 0, 0, 0]]
    with pytest.raises(FileNotFoundError, match='no cached mask'):
        t(_results(above))


def test_a_cache_file_without_lesions_computes_them(tmp_path):
    results = _cache(tmp_path, np.zeros((0, 4)), [])
    box = [4, 4, 12, 12]
    got = RecistToMask(cache_dir=str(tmp_path))(_results([box]))
    expected = RecistToMask()(_results([box]))
    np.testing.assert_array_equal(got['gt_masks'].masks,
                                  expected['gt_masks'].masks)
    assert got['gt_masks'].masks.sum() > 0
    path = osp.join(str(tmp_path), cache_file_name(results))
    with pytest.raises(FileNotFoundError) as err:
        RecistToMask(
            cache_dir=str(tmp_path), cache_missing='error')(_results([box]))
    assert str(err.value) == (
        f'{path}: no cached mask for box(es) [[4.0, 4.0, 12.0, 12.0]] of '
        '/nowhere/000001_01_01/010.png')


def test_missing_message_without_an_image_path(tmp_path):
    write_cache_meta(str(tmp_path), RecistToMask().params)
    results = _results([[4, 4, 12, 12]], file_name='000009_01_01_001.png')
    del results['img_path']
    with pytest.raises(FileNotFoundError) as err:
        RecistToMask(
            cache_dir=str(tmp_path), cache_missing='error')(results)
    assert str(err.value).endswith('[[4.0, 4.0, 12.0, 12.0]] of <image>')
    assert osp.join(str(tmp_path), '000009_01_01_001.npz') in str(err.value)


def test_a_cache_of_another_image_size_is_refused(tmp_path):
    results = _cache(tmp_path, np.array([[4., 4., 12., 12.]]),
                     [np.zeros((16, 24), np.uint8)], shape=(16, 24))
    path = osp.join(str(tmp_path), cache_file_name(results))
    with pytest.raises(ValueError) as err:
        RecistToMask(cache_dir=str(tmp_path))(results)
    assert str(err.value) == (
        f'{path}: masks of a (16, 24) image, but the image is (32, 32)')
    assert re.search(r'\(16, 24\) image', str(err.value))


# ---------------------------------------------------------- construction
def test_default_parameters():
    assert RecistToMask().params == dict(
        window=(-160.0, 240.0),
        iterations=5,
        unknown='ellipse',
        context_px=16,
        context_ratio=0.5,
        min_diameter=6.0,
        min_quad_area=2.0,
        keep_connected=True,
        fill_holes=True,
        seed=0)
    t = RecistToMask()
    assert t.cache_dir is None and t.cache_missing == 'compute'


def test_parameters_are_normalised():
    t = RecistToMask(window=[-100, 100], keep_connected=0, fill_holes=0,
                     cache_missing='error')
    assert t.window == (-100.0, 100.0)
    assert isinstance(t.window[0], float)
    assert t.keep_connected is False and t.fill_holes is False
    assert t.cache_missing == 'error'
    t = RecistToMask(window=None, keep_connected=1, fill_holes=1)
    assert t.window is None
    assert t.keep_connected is True and t.fill_holes is True


@pytest.mark.parametrize('kwargs', [
    dict(unknown='fg'),
    dict(unknown='bg'),
    dict(iterations=1),
    dict(cache_missing='error'),
])
def test_every_documented_choice_is_accepted(kwargs):
    t = RecistToMask(**kwargs)
    key, value = next(iter(kwargs.items()))
    assert getattr(t, key) == value


@pytest.mark.parametrize('kwargs,message', [
    (dict(window=(100, 100)), 'window must be (low, high) HU, got (100, 100)'),
    (dict(iterations=0), 'iterations must be >= 1, got 0'),
    (dict(cache_missing='skip'),
     "cache_missing must be 'compute' or 'error', got 'skip'"),
    (dict(unknown='FG'), "unknown must be 'ellipse', 'fg' or 'bg', got 'FG'"),
])
def test_invalid_parameters(kwargs, message):
    with pytest.raises(ValueError) as err:
        RecistToMask(**kwargs)
    assert str(err.value) == message


# ------------------------------------------------------------ the masks
def test_compute_masks_passes_every_parameter(monkeypatch):
    from mmlesion.datasets.transforms import recist_grabcut as module
    calls = []
    real = module.recist_grabcut_mask

    def spy(image, bbox, recist, settings):
        calls.append((image, bbox, recist, settings))
        return real(image, bbox, recist, settings)

    monkeypatch.setattr(module, 'recist_grabcut_mask', spy)
    params = dict(
        window=(-50.0, 50.0),
        iterations=2,
        unknown='bg',
        context_px=3,
        context_ratio=0.25,
        min_diameter=2.0,
        min_quad_area=1.0,
        keep_connected=False,
        fill_holes=False,
        seed=11)
    t = RecistToMask(**params)
    rng = np.random.default_rng(0)
    img = rng.uniform(-1, 1, SHAPE + (3, )).astype(np.float32)
    recist = [[6, 8], [14, 8], [10, 5], [10, 11]]
    results = _results([[4, 4, 16, 12], [20, 20, 28, 26]],
                       [recist, np.full((4, 2), np.nan)], img=img,
                       hu_window=(-1000., 1000.), hu_out_range=(-1., 1.))
    crops, offsets, methods = t.compute_masks(results)
    assert len(calls) == 2
    expected_image = module.key_slice_uint8(img, (-50.0, 50.0),
                                            (-1000., 1000.), (-1., 1.))
    for (image, bbox, rec, settings), box, r in zip(
            calls, results['gt_bboxes'], results['gt_recists']):
        np.testing.assert_array_equal(image, expected_image)
        np.testing.assert_array_equal(bbox, box)
        np.testing.assert_array_equal(rec, r)
        assert asdict(settings) == {
            k: v for k, v in params.items() if k != 'window'}
    assert methods == ['grabcut', 'degenerate']
    assert offsets == [(4, 4), (20, 20)]
    assert [c.shape for c in crops] == [(9, 13), (7, 9)]


def test_messages_name_the_image():
    results = _results([[4, 4, 12, 12]])
    del results['gt_recists']
    with pytest.raises(KeyError) as err:
        RecistToMask()(results)
    assert err.value.args[0] == (
        "/nowhere/000001_01_01/010.png: RecistToMask needs 'gt_recists': "
        'put LoadRecistPoints before it')
    del results['img_path']
    with pytest.raises(KeyError) as err:
        RecistToMask()(results)
    assert err.value.args[0].startswith('<image>: RecistToMask needs')

    results = _results([[4, 4, 12, 12]], np.zeros((2, 4, 2)))
    with pytest.raises(ValueError) as err:
        RecistToMask()(results)
    assert str(err.value) == ('/nowhere/000001_01_01/010.png: 1 boxes but 2 '
                              'RECIST annotations')
    del results['img_path']
    with pytest.raises(ValueError) as err:
        RecistToMask()(results)
    assert str(err.value) == '<image>: 1 boxes but 2 RECIST annotations'

    results = _results([[4, 4, 12, 12]], flip=True)
    with pytest.raises(ValueError) as err:
        RecistToMask()(results)
    assert str(err.value) == (
        "/nowhere/000001_01_01/010.png: RecistToMask must run before "
        "geometric transforms (found 'flip' = True); place it right after "
        'LoadRecistPoints')
    del results['img_path']
    with pytest.raises(ValueError, match=r'^<image>: RecistToMask must run'):
        RecistToMask()(results)


def test_masks_are_uint8_even_without_boxes():
    out = RecistToMask()(_results([[4, 4, 12, 12]]))
    assert out['gt_masks'].masks.dtype == np.uint8
    results = _results(np.zeros((0, 4)))
    del results['gt_bboxes'], results['gt_recists']
    out = RecistToMask()(results)
    assert out['gt_masks'].masks.shape == (0, ) + SHAPE
    assert out['gt_masks'].masks.dtype == np.uint8
    crops, offsets, methods = RecistToMask().compute_masks(
        dict(results, gt_recists=np.zeros((0, 4, 2))))
    assert crops == [] and offsets == [] and methods == []


def test_integer_boxes_are_read_as_floats(tmp_path):
    write_cache_meta(str(tmp_path), RecistToMask().params)
    results = _results([[4, 4, 12, 12]])
    results['gt_bboxes'] = [[4, 4, 12, 12]]
    with pytest.raises(FileNotFoundError, match=re.escape(
            '[[4.0, 4.0, 12.0, 12.0]] of')):
        RecistToMask(cache_dir=str(tmp_path),
                     cache_missing='error')(results)
