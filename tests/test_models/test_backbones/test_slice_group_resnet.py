# Copyright (c) mmlesion contributors. All rights reserved.
"""SliceGroupResNet: 9 slices as three 3-slice images through the pretrained
stem (3DCE / MULAN), fused."""
import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS

import mmlesion  # noqa: F401
from mmlesion.models.backbones import SliceGroupResNet

TINY = dict(depth=18, base_channels=8, out_indices=(0, 1, 2, 3))


def _pretrained_3ch():
    """A 3-channel ResNet standing in for the ImageNet weights."""
    torch.manual_seed(0)
    plain = ResNet(**TINY, norm_eval=False)
    plain.eval()  # mmdet's ResNet.train() returns None: no chaining
    for m in plain.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return plain


def _grouped_from(plain):
    model = MODELS.build(dict(type='SliceGroupResNet', **TINY))
    missing, unexpected = model.load_state_dict(plain.state_dict(),
                                                strict=False)
    # The 3-channel checkpoint fits every layer; only the fusion is new.
    assert sorted(missing) == ['slice_fusion.bias', 'slice_fusion.weight']
    assert not unexpected
    model.eval()
    return model


def test_shapes():
    model = MODELS.build(dict(type='SliceGroupResNet', **TINY))
    model.eval()
    assert isinstance(model, SliceGroupResNet)
    assert model.conv1.weight.shape == (8, 3, 7, 7)
    outs = model(torch.randn(2, 9, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 8, 16, 16), (2, 16, 8, 8),
                                             (2, 32, 4, 4), (2, 64, 2, 2)]
    with pytest.raises(ValueError, match='9 input channels'):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='in_channels'):
        SliceGroupResNet(in_channels=9, **TINY)


def test_starts_as_the_pretrained_3_slice_network():
    """Identity fusion on the centre group: the 9-slice network equals the
    pretrained network on slices 3-5 at initialisation."""
    plain = _pretrained_3ch()
    model = _grouped_from(plain)
    x = torch.randn(2, 9, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), plain(x[:, 3:6])):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize('group', [0, 1, 2])
def test_pretrained_first_layer_is_applied_to_every_group(group):
    """The same pretrained conv1/bn1 process each group: selecting group g
    in the fusion gives exactly the pretrained stem on slices 3g..3g+2."""
    plain = _pretrained_3ch()
    model = _grouped_from(plain)
    torch.testing.assert_close(model.conv1.weight, plain.conv1.weight)
    c = model.stem_channels
    with torch.no_grad():
        model.slice_fusion.weight.zero_()
        model.slice_fusion.weight[:, group * c:(group + 1) * c, 0, 0] = \
            torch.eye(c)
        x = torch.randn(2, 9, 32, 32)
        stem = model.stem_forward(x)
        ref = plain.relu(plain.norm1(plain.conv1(x[:, 3 * group:3 * group +
                                                    3])))
    torch.testing.assert_close(stem, ref)


def test_fusion_learns_from_context_groups_and_is_not_frozen():
    model = MODELS.build(
        dict(type='SliceGroupResNet', frozen_stages=1, **TINY))
    model.init_weights()
    model.train()
    assert not model.conv1.weight.requires_grad  # frozen like 3-slice R50
    assert model.slice_fusion.weight.requires_grad
    sum(o.sum() for o in model(torch.randn(1, 9, 32, 32))).backward()
    grad = model.slice_fusion.weight.grad
    c = model.stem_channels
    assert grad[:, :c].abs().sum() > 0 and grad[:, 2 * c:].abs().sum() > 0
    # init_weights keeps the centre-identity fusion.
    torch.testing.assert_close(model.slice_fusion.weight[:, c:2 * c, 0, 0],
                               torch.eye(c))
