# Copyright (c) mmlesion contributors. All rights reserved.
"""GrabCut masks from RECIST (Zlocha et al. 2019, Sec. 2.2)."""
import copy
import json
import logging
import os

import cv2
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmlesion.datasets.transforms.recist_grabcut import RecistToMask
from mmlesion.datasets.transforms.recist_grabcut_ops import (
    GrabCutSettings, box_pixel_mask, key_slice_uint8, paste_crop,
    rasterize_polygon, recist_grabcut_mask, recist_polygon)
from mmlesion.datasets.transforms.recist_mask_cache import (cache_file_name,
                                                            load_mask_npz,
                                                            save_mask_npz,
                                                            write_cache_meta)
from mmlesion.testing import shared_data_root

init_default_scope('mmdet')

PRE = [
    dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
    dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadRecistPoints'),
]


# ------------------------------------------------------------- real slices
@pytest.fixture(scope='module')
def real_results():
    """Results dicts of every annotated key slice present in shared data."""
    root = shared_data_root()
    dl = None if root is None else root / 'deeplesion'
    if dl is None or not (dl / 'Images_png').is_dir():
        pytest.skip('shared DeepLesion data ($MMLESION_SHARED_DATA/deeplesion) is '
                    'not available')
    from mmlesion.datasets import DeepLesionDataset
    out = []
    for split in ('val', 'test'):
        csv = dl / 'annotations' / f'DL_info_{split}.csv'
        if not csv.is_file():
            continue
        ds = DeepLesionDataset(
            data_root=str(dl),
            ann_file=str(csv),
            data_prefix=dict(img='Images_png/'),
            skip_missing_key_slices=True,
            drop_noisy=False,
            test_mode=True,
            pipeline=PRE)
        out += [ds[i] for i in range(len(ds))]
    if not out:
        pytest.skip('no annotated key slice in the shared data')
    return out


def centres_inside(poly, shape, margin=0.5):
    """Pixels whose centre lies inside the polygon by >= margin px."""
    contour = np.asarray(poly, np.float32).reshape(-1, 1, 2)
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    x0, y0 = np.floor(np.asarray(poly).min(0)).astype(int) - 1
    x1, y1 = np.ceil(np.asarray(poly).max(0)).astype(int) + 1
    out = np.zeros(shape, bool)
    for y in range(max(y0, 0), min(y1, shape[0] - 1) + 1):
        for x in range(max(x0, 0), min(x1, shape[1] - 1) + 1):
            d = cv2.pointPolygonTest(contour, (float(x), float(y)), True)
            out[y, x] = d >= margin
    return out


def test_masks_on_real_key_slices(real_results):
    transform = RecistToMask()
    fractions, quad_fractions, methods = [], [], []
    for results in real_results:
        res = transform(dict(results))
        masks = res['gt_masks']
        boxes = res['gt_bboxes'].tensor.numpy()
        shape = res['img'].shape[:2]
        assert isinstance(masks, BitmapMasks)
        assert masks.masks.shape == (len(boxes), ) + shape
        assert masks.masks.dtype == np.uint8
        for mask, box, rec in zip(
                masks.masks.astype(bool), boxes, res['gt_recists']):
            in_box = box_pixel_mask(box, shape)
            # inside the box
            assert not (mask & ~in_box).any()
            # contains the RECIST quadrilateral (independent point test)
            inside = centres_inside(recist_polygon(rec), shape) & in_box
            assert inside.sum() > 0
            assert not (inside & ~mask).any()
            # a sensible fraction of the box
            frac = mask.sum() / in_box.sum()
            quad = rasterize_polygon(recist_polygon(rec), shape) & in_box
            assert quad.sum() / in_box.sum() <= frac <= 0.9
            # one solid object
            num, _ = cv2.connectedComponents(mask.astype(np.uint8), None, 8)
            assert num == 2
            fractions.append(frac)
            quad_fractions.append(quad.sum() / in_box.sum())
        _, _, meth = transform.compute_masks(results)
        methods += meth
    fractions = np.array(fractions)
    print(f'\n{len(fractions)} real lesions, mask/box area fraction '
          f'percentiles 0/25/50/75/100: '
          f'{np.round(np.percentile(fractions, [0, 25, 50, 75, 100]), 3)}'
          f'; quadrilateral/box median {np.median(quad_fractions):.3f}; '
          f'methods {sorted(set(methods))}')
    # GrabCut ran (not only fallbacks) and adds pixels beyond the quad
    assert methods.count('grabcut') >= 0.8 * len(methods)
    assert np.median(fractions) > np.median(quad_fractions) + 0.03
    assert 0.15 < np.median(fractions) < 0.6


def test_real_masks_are_deterministic(real_results):
    a = RecistToMask()(dict(real_results[0]))['gt_masks'].masks
    b = RecistToMask()(dict(real_results[0]))['gt_masks'].masks
    np.testing.assert_array_equal(a, b)


def test_an_absent_cache_computes_the_masks_and_says_so_once(
        real_results, tmp_path, monkeypatch):
    """The full-size configs name the cache folder the tool writes; before
    it exists, the masks are computed (the same) with one warning."""
    import mmlesion.datasets.transforms.recist_grabcut as module
    said = []
    monkeypatch.setattr(module, 'print_log',
                        lambda msg, **kwargs: said.append((msg, kwargs)))
    absent = str(tmp_path / 'not_written_yet')
    for _ in range(2):  # two workers' transforms in one process
        transform = RecistToMask(cache_dir=absent)
        for results in real_results[:2]:
            np.testing.assert_array_equal(
                transform(dict(results))['gt_masks'].masks,
                RecistToMask()(dict(results))['gt_masks'].masks)
    assert len(said) == 1  # once per process and folder
    assert absent in said[0][0] and 'recist_to_masks.py' in said[0][0]
    assert said[0][1]['level'] == logging.WARNING
    assert not os.path.exists(absent)  # nothing written


def test_cache_round_trip_on_real_slices(real_results, tmp_path):
    transform = RecistToMask()
    subset = real_results[:5]
    write_cache_meta(str(tmp_path), transform.params)
    expected = []
    for results in subset:
        crops, offsets, _ = transform.compute_masks(results)
        boxes = results['gt_bboxes'].tensor.numpy().astype(np.float64)
        save_mask_npz(
            str(tmp_path / cache_file_name(results)), boxes, crops, offsets,
            results['img'].shape[:2])
        expected.append(transform(dict(results))['gt_masks'].masks)
    files = sorted(os.listdir(tmp_path))
    assert 'meta.json' in files and len(files) == 6
    assert files[0].endswith('.npz') and files[0].count('_') == 3
    cached = RecistToMask(cache_dir=str(tmp_path), cache_missing='error')
    for results, exp in zip(subset, expected):
        np.testing.assert_array_equal(
            cached(dict(results))['gt_masks'].masks, exp)

    # the transform really reads the file: replace a mask by the full box
    results = subset[0]
    path = str(tmp_path / cache_file_name(results))
    data = load_mask_npz(path)
    box = data.bboxes[0]
    shape = data.image_shape
    full = box_pixel_mask(box, shape)
    rows, cols = np.nonzero(full)
    # (the other lesions, if any, stored as full-size crops at (0, 0))
    save_mask_npz(path, data.bboxes,
                  [full[rows.min():rows.max() + 1,
                        cols.min():cols.max() + 1]] + data.masks[1:],
                  [(cols.min(), rows.min())] + [(0, 0)] *
                  (len(data.masks) - 1), shape)
    np.testing.assert_array_equal(
        cached(dict(results))['gt_masks'].masks[0], full.astype(np.uint8))

    # a lesion missing from the cache: error, or computed
    missing = real_results[5]
    with pytest.raises(FileNotFoundError, match='no cached mask'):
        cached(dict(missing))
    computed = RecistToMask(cache_dir=str(tmp_path))(dict(missing))
    np.testing.assert_array_equal(computed['gt_masks'].masks,
                                  transform(dict(missing))['gt_masks'].masks)

    # other parameters than the cache's are refused
    with pytest.raises(ValueError, match='other parameters'):
        RecistToMask(
            window=(-1000., 1000.), cache_dir=str(tmp_path))(
                dict(subset[1]))
    meta = json.loads((tmp_path / 'meta.json').read_text())
    assert meta['format'] == 'mmlesion-recist-masks-v1'
    assert meta['params']['window'] == [-160.0, 240.0]


def test_masks_follow_mmdet_geometric_transforms(real_results):
    """Masks are made first, then Resize / flips move them with the boxes."""
    # a deep copy: Resize / RandomFlip change the boxes in place, and the
    # module-scoped results are shared with the other tests
    results = copy.deepcopy(real_results[0])
    pipe = Compose([
        RecistToMask(),
        dict(type='Resize', scale=(256, 256), keep_ratio=True),
        dict(type='RandomFlip', prob=1.0, direction='horizontal'),
    ])
    out = pipe(dict(results))
    masks = out['gt_masks']
    assert masks.masks.shape[1:] == out['img'].shape[:2] == (256, 256)
    boxes = out['gt_bboxes'].tensor.numpy()
    got = masks.get_bboxes(dst_type='hbox').tensor.numpy()
    # the box of the moved mask stays inside the moved box (1 px slack)
    assert np.all(got[:, :2] >= boxes[:, :2] - 1)
    assert np.all(got[:, 2:] <= boxes[:, 2:] + 1)
    with pytest.raises(ValueError, match='before geometric transforms'):
        RecistToMask()(dict(out))


# -------------------------------------------------------------- synthetic
def ellipse_scene(seed=0, size=128):
    """A bright elliptic lesion (120 HU) in 40 HU tissue, with noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:size, :size]
    lesion = (xs - 60)**2 / 18**2 + (ys - 70)**2 / 12**2 <= 1
    hu = 40.0 + rng.normal(0, 10, (size, size))
    hu[lesion] = 120 + rng.normal(0, 10, lesion.sum())
    recist = np.array([[42, 70], [78, 70], [60, 58], [60, 82]], float)
    box = np.array([37, 53, 83, 87], float)
    return hu, lesion, recist, box


def results_of(hu, boxes, recists):
    """A results dict like the loading pipeline's (WindowHU applied)."""
    img = np.clip(hu, -1024, 1050)
    img = ((img + 1024) / 2074 * 2 - 1).astype(np.float32)
    img = np.repeat(img[..., None], 3, axis=2)
    return dict(
        img=img,
        img_path='/nonexistent/000001_01_01/010.png',
        hu_window=(-1024., 1050.),
        hu_out_range=(-1., 1.),
        gt_bboxes=HorizontalBoxes(np.asarray(boxes, np.float32)),
        gt_recists=np.asarray(recists, np.float32).reshape(-1, 4, 2))


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize('unknown', ['ellipse', 'fg', 'bg'])
def test_grabcut_recovers_a_synthetic_lesion(unknown):
    hu, lesion, recist, box = ellipse_scene()
    image = key_slice_uint8(hu, (-160., 240.))
    crop, offset, method = recist_grabcut_mask(
        image, box, recist, GrabCutSettings(unknown=unknown))
    mask = paste_crop(crop, offset, hu.shape).astype(bool)
    quad = rasterize_polygon(recist_polygon(recist), hu.shape)
    assert method == 'grabcut'
    assert iou(quad, lesion) < 0.75  # the quadrilateral alone is poor
    assert iou(mask, lesion) > 0.9


def test_transform_aligns_masks_with_boxes_and_windows_in_hu():
    hu, lesion, recist, box = ellipse_scene()
    second = np.array([[10, 20], [24, 20], [17, 14], [17, 26]], float)
    results = results_of(hu, [box, [5, 9, 29, 31]], [recist, second])
    out = RecistToMask()(results)
    masks = out['gt_masks']
    assert len(masks) == 2 and masks.height == 128 and masks.width == 128
    assert iou(masks.masks[0].astype(bool), lesion) > 0.9
    assert not (masks.masks[1].astype(bool)
                & ~box_pixel_mask([5, 9, 29, 31], (128, 128))).any()
    # the window is applied in HU: 40 and 120 HU are far apart in uint8
    u8 = key_slice_uint8(results['img'], (-160., 240.), results['hu_window'],
                         results['hu_out_range'])
    assert u8.shape == (128, 128, 3)
    assert u8[lesion, 0].mean() - u8[~lesion, 0].mean() > 40
    np.testing.assert_allclose(
        u8[..., 0].astype(float),
        key_slice_uint8(np.clip(hu, -1024, 1050), (-160., 240.))[..., 0],
        atol=1)


def test_degenerate_and_tiny_recist():
    hu, _, recist, box = ellipse_scene()
    image = key_slice_uint8(hu, (-160., 240.))
    shape = hu.shape

    def run(b, r, **kw):
        crop, off, method = recist_grabcut_mask(image, b, r,
                                                GrabCutSettings(**kw))
        mask = paste_crop(crop, off, shape).astype(bool)
        assert not (mask & ~box_pixel_mask(b, shape)).any()
        return mask, method

    # collinear points: the RECIST ellipse, not GrabCut
    collinear = np.array([[42, 70], [78, 70], [50, 70], [70, 70]], float)
    mask, method = run(box, collinear)
    assert method == 'degenerate' and mask.sum() > 100
    # no RECIST at all: the ellipse inscribed in the box
    mask, method = run(box, np.full((4, 2), np.nan))
    assert method == 'degenerate'
    area = np.pi * (box[2] - box[0]) * (box[3] - box[1]) / 4
    assert abs(mask.sum() - area) / area < 0.1
    mask, method = run(box, None)
    assert method == 'degenerate'
    # a tiny lesion: quadrilateral united with the RECIST ellipse
    tiny = np.array([[60, 70], [64, 70], [62, 69], [62, 71]], float)
    tiny_box = [55, 64, 69, 76]
    mask, method = run(tiny_box, tiny)
    assert method == 'tiny'
    assert rasterize_polygon(recist_polygon(tiny), shape)[mask].all()
    assert 3 <= mask.sum() <= 20
    # nothing outside the box to model the background: fallback
    mask, method = run([-5, -5, 200, 200], recist, unknown='fg')
    assert method == 'failed'
    # a box past the image border is clipped
    mask, method = run([100, 100, 140, 140],
                       np.array([[110, 120], [127, 120], [118, 112],
                                 [118, 127]], float))
    assert mask[:, 127].any() and method == 'grabcut'
    # a box entirely outside: empty
    crop, _, method = recist_grabcut_mask(image, [300, 300, 310, 310], recist)
    assert method == 'empty' and crop.size == 0


def test_polygon_order_and_non_crossing_diameters():
    rec = np.array([[0, 5], [10, 5], [5, 0], [5, 10]], float)
    np.testing.assert_array_equal(recist_polygon(rec), rec[[0, 2, 1, 3]])
    # a short axis beyond the long axis: the convex hull, not a bow tie
    off = np.array([[0, 5], [10, 5], [14, 0], [14, 10]], float)
    hull = recist_polygon(off)
    assert len(hull) == 3
    assert cv2.contourArea(hull.astype(np.float32)) == pytest.approx(70.0)


def test_transform_errors():
    hu, _, recist, box = ellipse_scene()
    results = results_of(hu, [box], [recist])
    no_recist = dict(results)
    no_recist.pop('gt_recists')
    with pytest.raises(KeyError, match='LoadRecistPoints'):
        RecistToMask()(no_recist)
    flipped = dict(results, flip=True, flip_direction='horizontal')
    with pytest.raises(ValueError, match='before geometric'):
        RecistToMask()(flipped)
    resized = dict(results, scale_factor=(2.0, 2.0))
    with pytest.raises(ValueError, match='scale_factor'):
        RecistToMask()(resized)
    # identity geometry is accepted
    ok = RecistToMask()(dict(results, scale_factor=(1.0, 1.0), flip=False))
    assert len(ok['gt_masks']) == 1
    with pytest.raises(ValueError, match='unknown'):
        RecistToMask(unknown='maybe')
    with pytest.raises(ValueError, match='window'):
        RecistToMask(window=(100, -100))
    with pytest.raises(FileNotFoundError, match='meta.json'):
        RecistToMask(cache_dir='/nonexistent_cache_dir',
                     cache_missing='error')(dict(results))
    # no instance: an empty (0, H, W) BitmapMasks
    empty = RecistToMask()(
        results_of(hu, np.zeros((0, 4)), np.zeros((0, 4, 2))))
    assert empty['gt_masks'].masks.shape == (0, 128, 128)
