# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS 3D FPR (Sec. IV-D): kernel sizes, shapes, RoI pooling, loss, Eq. 2,
inflation of 2D weights."""
import pytest
import torch
from mmdet.registry import MODELS

import mmlesion  # noqa: F401
from mmlesion.methods.lens.models import ResNet18FPR3D
from mmlesion.methods.lens.models.lens_fpr import (combine_fpr_scores,
                                                   roi_pool_3d)

TINY = dict(type='ResNet18FPR3D', base_channels=4)


def test_kernel_sizes_and_shapes():
    net = MODELS.build(TINY)
    for i in range(1, 5):
        layer = getattr(net, f'layer{i}')
        want = (1, 3, 3) if i < 4 else (3, 3, 3)
        for block in layer:
            assert block.conv1.kernel_size == want
            assert block.conv2.kernel_size == want
    assert net.conv1.kernel_size == (1, 7, 7)
    outs = net(torch.randn(2, 1, 8, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 4, 8, 16, 16),
                                             (2, 8, 8, 8, 8),
                                             (2, 16, 8, 4, 4),
                                             (2, 32, 4, 2, 2)]
    assert [o.shape[2:] for o in outs] == [
        torch.Size([8 // s[0], 64 // s[1], 64 // s[2]]) for s in net.strides
    ]
    with pytest.raises(ValueError, match='patches'):
        net(torch.randn(2, 8, 64, 64))
    full = ResNet18FPR3D()
    assert full.out_channels == [64, 128, 256, 512]


def test_roi_pool_3d_takes_the_box():
    feat = torch.zeros(1, 1, 4, 8, 8)
    feat[0, 0, 1, 2, 3] = 5.  # inside the box below (stride 1, 2, 2)
    feat[0, 0, 3, 7, 7] = 9.  # outside
    box = torch.tensor([[4., 2., 0., 10., 8., 2.]])
    out = roi_pool_3d(feat, box, (1, 2, 2), (1, 1, 1))
    assert out.item() == 5.
    # a box smaller than a voxel still pools one voxel
    tiny = roi_pool_3d(feat, torch.tensor([[6.2, 4.1, 1.2, 6.4, 4.3, 1.3]]),
                       (1, 2, 2), (1, 1, 1))
    assert tiny.item() == 5.


def test_loss_predict_and_eq2():
    model = MODELS.build(dict(type='LENSFPR', backbone=TINY,
                              fc_channels=16))
    model.init_weights()
    x = torch.randn(3, 1, 8, 32, 32)
    samples = [dict(bbox_3d=[8, 8, 2, 24, 24, 6], label=1, lens_score=0.8),
               dict(bbox_3d=[0, 0, 0, 10, 10, 3], label=0, lens_score=0.6),
               dict(bbox_3d=[4, 4, 1, 28, 28, 7], label=0, lens_score=0.2)]
    losses = model(x, samples, mode='loss')
    losses['loss_fpr'].backward()
    assert model.backbone.layer4[0].conv1.weight.grad is not None
    model.eval()
    with torch.no_grad():
        preds = model(x, samples, mode='predict')
    for p in preds:
        assert p['score'] == pytest.approx((p['lens_score'] + p['fpr_score'])
                                           / 2, abs=1e-6)
    assert combine_fpr_scores(torch.tensor(0.2), torch.tensor(0.6)) == \
        pytest.approx(0.4)
    with pytest.raises(ValueError, match='bbox_3d'):
        model(x, [dict(label=1)] * 3, mode='loss')


def test_inflation_from_2d_resnet(tmp_path):
    src = {
        'conv1.weight': torch.randn(4, 3, 7, 7),
        'layer1.0.conv1.weight': torch.randn(4, 4, 3, 3),
        'layer4.0.conv1.weight': torch.randn(32, 16, 3, 3),
        'layer4.0.downsample.0.weight': torch.randn(32, 16, 1, 1),
        'fc.weight': torch.randn(1000, 512),
    }
    path = tmp_path / 'r18.pth'
    torch.save(src, str(path))
    net = MODELS.build(
        dict(TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    net.init_weights()
    torch.testing.assert_close(net.conv1.weight[:, :, 0],
                               src['conv1.weight'].sum(1, keepdim=True))
    torch.testing.assert_close(net.layer1[0].conv1.weight[:, :, 0],
                               src['layer1.0.conv1.weight'])
    w4 = net.layer4[0].conv1.weight
    assert w4.shape == (32, 16, 3, 3, 3)
    # inflated over z and divided by 3: same response to a z-constant input
    torch.testing.assert_close(w4.sum(2), src['layer4.0.conv1.weight'])
