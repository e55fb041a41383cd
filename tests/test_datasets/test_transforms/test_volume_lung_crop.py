# Copyright (c) mmlesion contributors. All rights reserved.
"""``CropToLungs``: official or computed masks, boxes and world points."""
import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.datasets.transforms import CropToLungs, LoadCTVolume
from mmlesion.datasets.volumes import CTVolume
from mmlesion.evaluation.metrics.luna16_metric import \
    boxes_to_world_candidates
from mmlesion.testing.lung_phantom import chest_phantom

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
    monkeypatch.setattr(volume_lung_crop, 'compute_lung_mask',
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
