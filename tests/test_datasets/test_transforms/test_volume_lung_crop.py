# Copyright (c) mmlesion contributors. All rights reserved.
"""``CropToLungs``: official or computed masks, boxes and world points."""
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from mmlesion.datasets.transforms import CropToLungs, LoadCTVolume
from mmlesion.datasets.volumes import (CTVolume, compute_lung_mask,
                                       load_ct_volume, mask_region,
                                       resample_volume)
from mmlesion.datasets.volumes.lung_mask import (LungMaskSettings, _closing,
                                                 box_corner_mask,
                                                 compute_lung_box)
from mmlesion.evaluation.metrics.luna16_metric import \
    boxes_to_world_candidates
from mmlesion.testing import shared_data_root
from tests.helpers.lung_phantom import chest_phantom

_SHARED = shared_data_root()
TOTALSEG = None if _SHARED is None else \
    _SHARED / 'ct_volumes' / 'totalsegmentator'
UID = '1.2.3.4'


@pytest.fixture(scope='module')
def scan(tmp_path_factory):
    root = tmp_path_factory.mktemp('lungcrop')
    vol, lungs, stomach = chest_phantom()
    sitk.WriteImage(vol.to_sitk(), str(root / f'{UID}.mhd'))
    labels = np.zeros(vol.shape_zyx, np.uint8)
    labels[lungs] = 3
    labels[:, :, 36:][lungs[:, :, 36:]] = 4
    mask = CTVolume(labels, vol.spacing_zyx, vol.origin_xyz, vol.direction)
    (root / 'masks').mkdir()
    sitk.WriteImage(mask.to_sitk(), str(root / 'masks' / f'{UID}.mhd'))
    # a nodule in the left lung, an excluded finding in the right one and
    # a box in the stomach (outside the lungs' box + margin)
    centres_zyx = np.array([[24., 28., 22.], [24., 30., 50.], [3., 32., 36.]])
    world = vol.voxel_to_world(centres_zyx)
    half = np.array([2., 2., 2.])
    instances = [
        dict(bbox=np.concatenate([c[::-1] - half, c[::-1] + half]).tolist(),
             bbox_label=0, ignore_flag=int(i == 1),
             center_world=w.tolist(), diameter_mm=6.)
        for i, (c, w) in enumerate(zip(centres_zyx, world))
    ]
    info = dict(img_path=str(root / f'{UID}.mhd'), series_uid=UID,
                instances=instances)
    return root, vol, info


def _load(info):
    return LoadCTVolume(spacing_zyx=(1., 1., 1.))(
        dict(info, instances=[dict(i) for i in info['instances']]))


def test_official_mask_crop_keeps_world_points(scan, log_messages):
    root, vol, info = scan
    loaded = _load(info)
    full_shape = loaded['img'].shape
    out = CropToLungs(mask_dir=str(root / 'masks'), margin_mm=4.)(loaded)
    start, stop = out['lung_region_zyx']
    assert out['img'].shape == tuple(b - a for a, b in zip(start, stop))
    assert out['img'].size < 0.7 * np.prod(full_shape)
    assert out['img_shape'] == out['img'].shape
    # the stomach box is dropped (warned), nodule and excluded finding kept
    assert len(out['gt_bboxes']) == 2
    assert out['gt_ignore_flags'].tolist() == [False, True]
    assert any('dropped' in m for m in log_messages)
    # a box centre in crop voxels -> the annotation's world centre, through
    # the cropped geometry (what LUNA16Metric does with predictions)
    world, _ = boxes_to_world_candidates(out['gt_bboxes'],
                                         out['spacing_zyx'],
                                         out['origin_xyz'], out['direction'])
    expected = [info['instances'][i]['center_world'] for i in (0, 1)]
    np.testing.assert_allclose(world, expected, atol=1e-3)
    # the lungs (world) lie inside the crop
    lungs_world = vol.voxel_to_world(np.argwhere(vol.array == -850.))
    crop = CTVolume(out['img'], out['spacing_zyx'], out['origin_xyz'],
                    out['direction'])
    idx = crop.world_to_voxel(lungs_world)
    assert np.all(idx >= -0.5) and np.all(idx < np.array(crop.shape_zyx))


def test_computed_mask_agrees_and_is_cached(scan, monkeypatch):
    root, _, info = scan
    official = CropToLungs(mask_dir=str(root / 'masks'))(_load(info))
    crop = CropToLungs()
    computed = crop(_load(info))
    for a, b in zip(official['lung_region_zyx'],
                    computed['lung_region_zyx']):
        assert np.abs(np.subtract(a, b)).max() <= 2
    from mmlesion.datasets.transforms import volume_lung_crop
    monkeypatch.setattr(volume_lung_crop, 'compute_lung_box',
                        lambda *a, **k: pytest.fail('not cached'))
    again = crop(_load(info))
    assert again['lung_region_zyx'] == computed['lung_region_zyx']


def test_missing_mask_and_no_lungs(scan, tmp_path, log_messages):
    root, vol, info = scan
    with pytest.raises(FileNotFoundError, match='lung mask .*missing'):
        CropToLungs(mask_dir=str(tmp_path))(_load(info))
    # soft tissue in air (a scan needs air to pass the HU check), no lung
    body = np.full((10, 12, 12), 30., np.float32)
    body[:, [0, -1], :] = body[:, :, [0, -1]] = -1000.
    flat = CTVolume(body, (1, 1, 1), (0, 0, 0))
    path = tmp_path / 'flat.mhd'
    sitk.WriteImage(flat.to_sitk(), str(path))
    res = LoadCTVolume()(dict(img_path=str(path), instances=[]))
    out = CropToLungs()(res)
    assert out['lung_region_zyx'] is None and out['img'].shape == (10, 12, 12)
    assert any('kept whole' in m for m in log_messages)


# --- the lung box without the mask: the same crop as the full mask -------


def _reference_lung_mask(volume, threshold_hu=-320., gas_hu=-950.,
                         max_gas_fraction=0.25, num_components=2,
                         min_component_ratio=0.1, closing_radius_mm=2.):
    """``compute_lung_mask`` as it was before ``compute_lung_box`` (the
    gas counts by a weighted bincount; the mask filled and closed)."""
    img = np.asarray(volume.array)
    air = img < threshold_hu
    labels, num = ndi.label(air)
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=num + 1).astype(np.float64)
    gas = np.bincount(flat, weights=(img < gas_hu).ravel(), minlength=num + 1)
    sizes[0] = 0
    border = np.unique(np.concatenate([
        labels[:, 0].ravel(), labels[:, -1].ravel(), labels[:, :, 0].ravel(),
        labels[:, :, -1].ravel()
    ]))
    sizes[border] = 0
    sizes[gas > max_gas_fraction * np.maximum(sizes, 1)] = 0
    kept = [int(c) for c in np.argsort(-sizes)[:num_components]
            if sizes[c] > 0]
    if not kept:
        return np.zeros_like(air)
    kept = [c for c in kept
            if sizes[c] >= min_component_ratio * sizes[kept[0]]]
    mask = np.isin(labels, kept)
    for z in range(mask.shape[0]):
        if mask[z].any():
            mask[z] = ndi.binary_fill_holes(mask[z])
    if closing_radius_mm > 0:
        mask = _closing(mask, volume.spacing_zyx, closing_radius_mm)
    return mask


def _box(mask):
    if not mask.any():
        return None
    idx = [np.flatnonzero(mask.any(axis=tuple(b for b in range(3) if b != a)))
           for a in range(3)]
    return (tuple(int(i[0]) for i in idx), tuple(int(i[-1]) + 1 for i in idx))


def _check_same_crop(vol, margins=(0., 10.), **cfg):
    """``compute_lung_box`` is the box of the reference mask, the current
    ``compute_lung_mask`` is the reference mask, and ``CropToLungs`` crops
    to the region of the reference mask."""
    ref = _reference_lung_mask(vol, **cfg)
    np.testing.assert_array_equal(
        compute_lung_mask(vol, LungMaskSettings(**cfg)), ref)
    box = compute_lung_box(vol, LungMaskSettings(**cfg))
    assert box == _box(ref)
    for margin in margins:
        expected = mask_region(
            CTVolume(ref, vol.spacing_zyx, vol.origin_xyz, vol.direction),
            vol, margin)
        out = CropToLungs(margin_mm=margin, compute_cfg=cfg)(dict(
            img=np.asarray(vol.array, np.float32), img_shape=vol.shape_zyx,
            spacing_zyx=vol.spacing_zyx, origin_xyz=vol.origin_xyz,
            direction=vol.direction, img_path='<test>'))
        assert out['lung_region_zyx'] == expected
    return box


def _random_chest(seed, shape=(30, 60, 64), spacing=(2.5, .7, .8)):
    """Soft tissue in air, with rough, concave air blobs (smoothed noise)
    inside: holes, bays and thin bridges near every face of their box."""
    rng = np.random.default_rng(seed)
    img = np.full(shape, 40., np.float32)
    img[:, :2] = img[:, -2:] = img[:, :, :2] = img[:, :, -2:] = -1000.
    noise = ndi.gaussian_filter(rng.normal(size=shape), (1., 2.5, 2.5))
    # two rough lungs: noise blobs inside two random ellipsoids (odd seeds:
    # reaching the first and last slices)
    zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in shape)]
    inside = np.zeros(shape, bool)
    for side in (0, 1):
        cz, cy = rng.uniform(.4, .6) * shape[0], rng.uniform(.35, .65) * \
            shape[1]
        cx = rng.uniform(.2, .35) * shape[2]
        cx = shape[2] - cx if side else cx
        rz = rng.uniform(.55, .8) * shape[0] if seed % 2 else \
            rng.uniform(.2, .4) * shape[0]
        ry, rx = rng.uniform(.15, .3, 2) * shape[1]
        inside |= ((zz - cz) / rz)**2 + ((yy - cy) / ry)**2 + \
            ((xx - cx) / rx)**2 <= 1
    inside[:, :4] = inside[:, -4:] = False
    inside[:, :, :4] = inside[:, :, -4:] = False
    blobs = (noise > np.quantile(noise, .5)) & inside
    img[blobs] = -850. + rng.normal(0., 60., size=int(blobs.sum()))
    img[blobs & (noise > np.quantile(noise, .97))] = -1000.  # gas pockets
    return CTVolume(img, spacing, (1., 2., 3.))


def test_lung_box_is_the_masks_box_phantom():
    vol, lungs, _ = chest_phantom()
    assert _check_same_crop(vol) is not None
    _check_same_crop(vol, max_gas_fraction=1.)  # the stomach kept
    _check_same_crop(vol, closing_radius_mm=6., num_components=1)
    empty = CTVolume(np.full((8, 16, 16), 40., np.float32), (1, 1, 1),
                     (0, 0, 0))
    assert compute_lung_box(empty) is None


@pytest.mark.parametrize('seed', range(6))
def test_lung_box_is_the_masks_box_random(seed):
    vol = _random_chest(seed)
    # closings of 1 to 7 voxels per axis, up to several lungs kept
    for cfg in (dict(), dict(closing_radius_mm=5., num_components=4,
                             min_component_ratio=0.), dict(gas_hu=-900.)):
        _check_same_crop(vol, **cfg)


def test_closing_never_grows_the_box():
    """The claim ``compute_lung_box`` rests on, on its own: rough masks
    touching the image's faces (SimpleITK's safe border), many radii."""
    rng = np.random.default_rng(0)
    for trial in range(12):
        shape = tuple(int(n) for n in rng.integers(12, 40, 3))
        noise = ndi.gaussian_filter(rng.normal(size=shape), 1.5)
        mask = noise > np.quantile(noise, rng.uniform(.6, .95))
        spacing = tuple(float(v) for v in rng.uniform(.5, 3., 3))
        closed = _closing(mask, spacing, float(rng.uniform(1., 6.)))
        assert (closed >= mask).all()
        assert _box(closed) == _box(mask), trial


def test_box_corner_mask():
    mask = box_corner_mask((5, 6, 7), (1, 2, 3), (4, 6, 5))
    assert mask.sum() == 2 and _box(mask) == ((1, 2, 3), (4, 6, 5))


@pytest.mark.skipif(TOTALSEG is None
                    or not (TOTALSEG / 'example_ct.nii.gz').exists(),
                    reason='shared TotalSegmentator CT not available')
@pytest.mark.parametrize('name', ['example_ct_sm.nii.gz', 'example_ct.nii.gz'])
def test_lung_box_is_the_masks_box_real_scans(name):
    vol = load_ct_volume(TOTALSEG / name)
    assert _check_same_crop(vol) is not None
    assert _check_same_crop(resample_volume(vol, (1., 1., 1.))) is not None


def test_lung_box_ties_and_gas_skip():
    """Equal sizes rank by the raster order of their box corner; a gas
    component larger than the lungs is skipped without taking a slot."""
    img = np.full((10, 20, 30), 40., np.float32)
    img[:, [0, -1], :] = img[:, :, [0, -1]] = -1000.
    img[2:6, 12:16, 3:7] = -850.  # later in raster order (y 12)
    img[2:6, 3:7, 20:24] = -850.  # first in raster order (y 3), same size
    vol = CTVolume(img, (1., 1., 1.), (0., 0., 0.))
    assert compute_lung_box(vol, LungMaskSettings(num_components=1)) == (
        (2, 3, 20), (6, 7, 24))
    assert compute_lung_box(vol) == ((2, 3, 3), (6, 16, 24))
    img[1:9, 8:11, 10:19] = -1000.  # gas, larger than either lung
    vol = CTVolume(img, (1., 1., 1.), (0., 0., 0.))
    assert compute_lung_box(vol) == ((2, 3, 3), (6, 16, 24))
    assert compute_lung_box(vol, LungMaskSettings(
        max_gas_fraction=1., num_components=1)) == ((1, 8, 10), (9, 11, 19))
    with pytest.raises(ValueError, match='num_components'):
        compute_lung_box(vol, LungMaskSettings(num_components=0))
