# Copyright (c) mmlesion contributors. All rights reserved.
"""Mask components -> 3D boxes, on toy masks and the real KiTS19 masks."""
import numpy as np
import pytest

from mmlesion.apps.own_data import mask_to_boxes_3d
from mmlesion.datasets.volumes import VolumeOptions, load_ct_volume
from mmlesion.testing import shared_data_root


def test_components_boxes_and_slices():
    mask = np.zeros((10, 12, 14), bool)
    mask[2:5, 3:6, 4:9] = True  # block A: z 2..4, y 3..5, x 4..8
    mask[7, 9, 11] = True  # B touches C only by a corner
    mask[8, 10, 12] = True  # C
    boxes = mask_to_boxes_3d(mask, (2.0, 0.5, 0.5))
    assert len(boxes) == 2
    a = boxes[0]
    assert a['bbox'] == [3.5, 2.5, 1.5, 8.5, 5.5, 4.5]
    assert a['num_voxels'] == 45
    assert a['diameter_mm'] == pytest.approx(
        (6 * 45 * 0.5 / np.pi)**(1 / 3))
    assert sorted(a['slice_boxes']) == [2, 3, 4]
    assert a['slice_boxes'][3] == [3.5, 2.5, 8.5, 5.5]
    assert boxes[1]['bbox'] == [10.5, 8.5, 6.5, 12.5, 10.5, 8.5]
    # face connectivity splits B and C; min_voxels drops the single voxels
    assert len(mask_to_boxes_3d(mask, (1, 1, 1), connectivity=1)) == 3
    assert len(mask_to_boxes_3d(mask, (1, 1, 1), min_voxels=3)) == 1
    assert mask_to_boxes_3d(np.zeros((3, 3, 3)), (1, 1, 1)) == []
    with pytest.raises(ValueError, match='connectivity'):
        mask_to_boxes_3d(mask, (1, 1, 1), connectivity=4)


def test_real_kits19_masks():
    root = shared_data_root()
    if root is None or not (root / 'kits19').is_dir():
        pytest.skip('KiTS19 masks not available ($MMLESION_SHARED_DATA/kits19; '
                    'set MMLESION_SHARED_DATA)')
    expected = {'case_00002': 1, 'case_00003': 1, 'case_00005': 1}
    for case, num_tumours in expected.items():
        seg = load_ct_volume(
            root / 'kits19' / case / 'segmentation.nii.gz',
            scan_checks=dict(force_ct=True),
            options=VolumeOptions(dtype=None))
        assert seg.array.dtype == np.uint8
        np.testing.assert_allclose(seg.direction, np.eye(3), atol=1e-6)
        tumour = seg.array == 2
        boxes = mask_to_boxes_3d(tumour, seg.spacing_zyx)
        assert len(boxes) == num_tumours, case
        assert sum(b['num_voxels'] for b in boxes) == tumour.sum()
        covered = np.zeros_like(tumour)
        for b in boxes:
            x1, y1, z1, x2, y2, z2 = (int(v + 0.5) for v in b['bbox'])
            inside = tumour[z1:z2, y1:y2, x1:x2]
            covered[z1:z2, y1:y2, x1:x2] = True
            # tight: every face of the box touches the tumour
            assert inside[0].any() and inside[-1].any(), case
            assert inside[:, 0].any() and inside[:, -1].any(), case
            assert inside[:, :, 0].any() and inside[:, :, -1].any(), case
            assert inside.sum() == b['num_voxels']
            # the slice boxes are the per-slice extents
            for z, (sx1, sy1, sx2, sy2) in b['slice_boxes'].items():
                ys, xs = np.nonzero(tumour[z])
                assert (sx1, sy1) == (xs.min() - 0.5, ys.min() - 0.5)
                assert (sx2, sy2) == (xs.max() + 0.5, ys.max() + 0.5)
        assert not (tumour & ~covered).any(), case
