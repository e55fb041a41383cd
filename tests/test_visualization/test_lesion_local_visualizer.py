# Copyright (c) mmlesion contributors. All rights reserved.
import mmcv
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmlesion.visualization import LesionLocalVisualizer


def test_float_input_is_shown_through_its_window(tmp_path):
    vis = LesionLocalVisualizer(name='test_lesion_local_vis')
    image = np.zeros((32, 40, 3), dtype=np.float32)
    image[..., 1] = np.linspace(-1.5, 1.5, 40)  # the key slice (middle)
    image[..., 0] = image[..., 2] = 1.  # neighbours: not shown
    shown = vis.to_display(image)
    assert shown.dtype == np.uint8 and shown.shape == (32, 40, 3)
    row = shown[0, :, 0].astype(int)
    expected = np.rint(np.clip((np.linspace(-1.5, 1.5, 40) + 1) / 2, 0, 1)
                       * 255)
    np.testing.assert_allclose(row, expected, atol=1)
    assert (shown[..., 0] == shown[..., 2]).all()  # gray
    photo = np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)
    assert vis.to_display(photo) is photo  # uint8 drawn unchanged

    # a slice-named out_file becomes <series>_<slice>.png, boxes drawn
    sample = DetDataSample(metainfo=dict(
        img_path='/data/Images_png/000001_02_01/041.png'))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[5., 5., 25., 20.]]), labels=torch.tensor([0]))
    vis.dataset_meta = dict(classes=('lesion', ), palette=[(255, 0, 0)])
    vis.add_datasample('041.png', image, sample, draw_pred=False,
                       out_file=str(tmp_path / '041.png'))
    assert not (tmp_path / '041.png').exists()
    drawn = mmcv.imread(str(tmp_path / '000001_02_01_041.png'),
                        channel_order='rgb').astype(int)
    red = (drawn[..., 0] > 200) & (drawn[..., 1] < 80) & (drawn[..., 2] < 80)
    assert red.sum() > 20
    sample.set_metainfo(dict(num_slices=9))  # 3 of 9 channels: refused
    with pytest.raises(ValueError, match='9-slice input .*channel 4'):
        vis.add_datasample('041.png', image, sample, draw_pred=False)
    with pytest.raises(ValueError, match='input_range'):
        LesionLocalVisualizer(name='bad_range_vis', input_range=(1., -1.))
