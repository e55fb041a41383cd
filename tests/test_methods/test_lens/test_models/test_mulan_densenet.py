# Copyright (c) mmlesion contributors. All rights reserved.
"""Tests of MULANDenseNet (2.5D truncated DenseNet with 3D fusion)."""
import re

import pytest
import torch
from mmdet.registry import MODELS

import mmlesion  # noqa: F401
from mmlesion.methods.lens.models import MULANDenseNet

TINY = dict(type='MULANDenseNet', growth_rate=4, block_config=(2, 2, 2),
            num_init_features=8, bn_size=2, init_cfg=None)


def test_densenet121_layout():
    model = MULANDenseNet()  # DenseNet-121 truncated after block 3
    assert model.out_channels == [256, 512, 1024]
    names = [n for n, _ in model.features.named_children()]
    assert names[-1] == 'denseblock3' and 'transition3' not in names
    assert len(model.features.denseblock3) == 24
    # MULAN's release: a 1x1 conv over the 3 groups' features before
    # dense block 3 only; before blocks 1-3 on request
    assert list(model.fusions) == ['2']
    conv = model.fusions['2'].conv
    assert (conv.in_channels, conv.out_channels,
            conv.kernel_size) == (768, 256, (1, 1))
    every = MULANDenseNet(fusion_before=(0, 1, 2))
    assert [(f.conv.in_channels, f.conv.out_channels)
            for f in every.fusions.values()] == [(192, 64), (384, 128),
                                                 (768, 256)]


def test_tiny_shapes_and_groups():
    model = MODELS.build(TINY)
    model.init_weights()
    x = torch.randn(2, 9, 64, 64)
    outs = model(x)
    assert [o.shape for o in outs] == [
        (2, 16, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4)]
    assert model.out_channels == [16, 16, 16]
    with pytest.raises(ValueError, match='9 slices'):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='multiple'):
        MULANDenseNet(num_slices=8)


def test_fusion_mixes_slice_groups():
    model = MODELS.build(TINY)
    model.init_weights()
    model.eval()
    x = torch.randn(1, 9, 32, 32)
    y = x.clone()
    y[:, :3] += 1.  # change only the first (non-central) group
    # identity initialisation: the central group ignores its neighbours
    with torch.no_grad():
        torch.testing.assert_close(model(x)[2], model(y)[2])
        for f in model.fusions.values():
            f.conv.weight.add_(0.01)
        assert not torch.allclose(model(x)[2], model(y)[2])


def _plain_2d(model: MULANDenseNet, x: torch.Tensor) -> list:
    """The DenseNet layers alone (the pretrained 2D network, no fusion) on
    one 3-slice image: dense block outputs."""
    outs = []
    for name, layer in model.features.named_children():
        x = layer(x)
        if name.startswith('denseblock'):
            outs.append(x)
    return outs


@pytest.mark.parametrize('num_slices,spg', [(9, 3), (15, 3), (6, 2)])
def test_fusion_starts_as_the_2d_network(num_slices, spg):
    """At initialisation (and after loading ImageNet weights) the backbone
    computes exactly the 2D network on the central group."""
    model = MODELS.build(
        dict(TINY, num_slices=num_slices, slices_per_group=spg,
             fusion_before=(0, 1, 2)))
    model.init_weights()
    # perturb every 2D weight as a checkpoint would (BN statistics too),
    # so that the test does not rely on a lucky identity-like init
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not name.startswith('fusions') and t.is_floating_point():
                t.add_(0.1 * torch.rand_like(t))
    model.eval()
    x = torch.randn(2, num_slices, 32, 32)
    centre = (num_slices // spg) // 2
    with torch.no_grad():
        outs = model(x)
        ref = _plain_2d(model, x[:, centre * spg:(centre + 1) * spg])
    assert len(outs) == len(ref) == 3
    for o, r in zip(outs, ref):
        torch.testing.assert_close(o, r, rtol=0, atol=1e-6)
    # but the fusion is not a no-op: its weights are trained
    assert all(f.conv.weight.requires_grad for f in model.fusions.values())
    out = sum(o.sum() for o in model(x))
    out.backward()
    assert all(f.conv.weight.grad.abs().sum() > 0
               for f in model.fusions.values())


def test_loads_torchvision_style_checkpoint(tmp_path):
    src = MODELS.build(TINY)
    src.init_weights()
    state = {}
    for k, v in src.state_dict().items():
        if k.startswith('fusions'):
            continue
        # torchvision's released files use 'norm.1' for 'norm1'
        state[re.sub(r'(denselayer\d+\.(norm|conv))([12])\.', r'\1.\3.',
                     k)] = v + 1 if v.is_floating_point() else v
    assert any('.norm.1.' in k for k in state)
    path = tmp_path / 'densenet_tiny.pth'
    torch.save(state, str(path))
    dst = MODELS.build(
        dict(TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    dst.init_weights()
    torch.testing.assert_close(
        dst.features.denseblock2.denselayer1.norm1.weight,
        src.features.denseblock2.denselayer1.norm1.weight + 1)
    torch.testing.assert_close(dst.features.conv0.weight,
                               src.features.conv0.weight + 1)
