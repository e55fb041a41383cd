# Copyright (c) mmlesion contributors. All rights reserved.
import torch
from mmdet.models.backbones import ResNet

from mmlesion.models.backbones import ResNetWithStem


def test_stem_output_and_stages_match_resnet():
    torch.manual_seed(0)
    model = ResNetWithStem(depth=18, base_channels=8, norm_eval=False)
    model.init_weights()
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    outs = model(x)
    assert [tuple(o.shape) for o in outs] == [(2, 8, 32, 32), (2, 8, 16, 16),
                                              (2, 16, 8, 8), (2, 32, 4, 4),
                                              (2, 64, 2, 2)]
    ref = ResNet(depth=18, base_channels=8, norm_eval=False)
    ref.load_state_dict(model.state_dict())
    ref.eval()
    for a, b in zip(outs[1:], ref(x)):
        torch.testing.assert_close(a, b)
    # C1 is the stem output before max pooling
    stem = model.relu(model.norm1(model.conv1(x)))
    torch.testing.assert_close(outs[0], stem)


def test_out_stem_false_and_deep_stem():
    model = ResNetWithStem(out_stem=False, depth=18, base_channels=8)
    assert len(model(torch.randn(2, 3, 64, 64))) == 4
    deep = ResNetWithStem(
        depth=18,
        base_channels=8,
        stem_channels=6,
        deep_stem=True,
        in_channels=9)
    outs = deep(torch.randn(2, 9, 64, 64))
    assert outs[0].shape == (2, 6, 32, 32)
