# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.methods.retinanet_lesion.models import LesionVGG

# conv layer indices of torchvision's vgg19().features (cfg 'E')
TORCHVISION_VGG19_CONVS = [
    0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34
]


def test_tiny_shapes_c1_to_c5():
    model = LesionVGG(depth=19, base_channels=4)
    model.init_weights()
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 4, 32, 32), (2, 8, 16, 16),
                                              (2, 16, 8, 8), (2, 32, 4, 4),
                                              (2, 32, 2, 2)]
    assert model.stage_channels == [4, 8, 16, 32, 32]


def test_vgg19_layout_matches_torchvision():
    model = LesionVGG(depth=19)
    convs = [
        int(name.split('.')[1]) for name, _ in model.named_parameters()
        if name.endswith('weight')
    ]
    assert convs == TORCHVISION_VGG19_CONVS
    # vgg19().features has 20,024,384 parameters
    assert sum(p.numel() for p in model.parameters()) == 20024384
    assert model.stage_channels == [64, 128, 256, 512, 512]


def test_in_channels_out_indices_and_frozen():
    model = LesionVGG(
        depth=11,
        in_channels=9,
        base_channels=4,
        out_indices=(2, 4),
        frozen_stages=2)
    model.train()
    outs = model(torch.randn(1, 9, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 4, 4), (1, 32, 1, 1)]
    start, end = model.range_sub_modules[1]
    for idx in range(0, end):
        for p in model.features[idx].parameters():
            assert not p.requires_grad
    for p in model.features[end:].parameters():
        assert p.requires_grad


def test_pretrained_torchvision_style_checkpoint(tmp_path):
    """init_cfg Pretrained loads a torchvision-style VGG state dict."""
    src = LesionVGG(depth=19, base_channels=4)
    src.init_weights()
    state = dict(src.state_dict())
    state['classifier.0.weight'] = torch.zeros(2, 2)  # ignored
    ckpt = tmp_path / 'vgg.pth'
    torch.save(state, ckpt)
    model = LesionVGG(
        depth=19,
        base_channels=4,
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    model.init_weights()
    for k, v in src.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_bad_arguments():
    with pytest.raises(ValueError, match='depth'):
        LesionVGG(depth=12)
    with pytest.raises(ValueError, match='out_indices'):
        LesionVGG(out_indices=(5, ))
