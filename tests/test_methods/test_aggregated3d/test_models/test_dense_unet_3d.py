# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.methods.aggregated3d.models import DenseUNet3D


def _record_shapes(model, x):
    shapes = {}
    hooks = []
    named = {
        'preblock': model.preblock,
        'encode1': model.encodes[0], 'transition1': model.enc_transitions[0],
        'encode2': model.encodes[1], 'transition2': model.enc_transitions[1],
        'encode3': model.encodes[2], 'transition3': model.enc_transitions[2],
        'upsample3': model.up_fuses[0], 'decode2': model.decodes[0],
        'dec_transition2': model.dec_transitions[0],
        'upsample2': model.up_fuses[1], 'decode1': model.decodes[1],
        'dec_transition1': model.dec_transitions[1],
    }
    for name, mod in named.items():
        hooks.append(mod.register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, o.shape)))
    outs = model(x)
    for h in hooks:
        h.remove()
    return shapes, outs


def test_table1_spatial_sizes_on_128_cube():
    """Table I output sizes for a 128^3 crop (tiny widths, same layout)."""
    model = DenseUNet3D(base_channels=4, growth_rate=4, out_channels=8)
    model.eval()
    with torch.no_grad():
        shapes, outs = _record_shapes(model, torch.randn(1, 1, 128, 128, 128))
    expected = {
        'preblock': 64, 'encode1': 64, 'transition1': 32, 'encode2': 32,
        'transition2': 16, 'encode3': 16, 'transition3': 8, 'upsample3': 16,
        'decode2': 16, 'dec_transition2': 16, 'upsample2': 32,
        'decode1': 32, 'dec_transition1': 32
    }
    for name, size in expected.items():
        assert tuple(shapes[name][2:]) == (size, ) * 3, name
    assert [tuple(o.shape) for o in outs] == [(1, 8, 32, 32, 32),
                                              (1, 8, 16, 16, 16),
                                              (1, 8, 8, 8, 8)]


def test_paper_channels():
    """Growth 16, two dense layers: Encode (k) adds 32 channels; every
    pyramid output has 32 channels (Sec. III-A)."""
    model = DenseUNet3D()
    shapes, outs = _record_shapes(model, torch.randn(2, 1, 16, 32, 16))
    assert shapes['preblock'][1] == 32
    assert shapes['encode1'][1] == 64
    assert shapes['encode2'][1] == 64 and shapes['encode3'][1] == 64
    assert shapes['decode2'][1] == 64 and shapes['decode1'][1] == 64
    assert [o.shape[1] for o in outs] == [32, 32, 32]
    assert outs[0].shape[2:] == (4, 8, 4)
    # gradients reach the first conv
    sum(o.sum() for o in outs).backward()
    assert model.preblock[0].conv.weight.grad.abs().sum() > 0


def test_out_indices_and_bad_input():
    model = DenseUNet3D(base_channels=4, growth_rate=4, out_channels=8,
                        out_indices=(2, ))
    outs = model(torch.randn(1, 1, 16, 16, 16))
    assert len(outs) == 1 and outs[0].shape == (1, 8, 1, 1, 1)
    with pytest.raises(ValueError, match='divisible by 16'):
        model(torch.randn(1, 1, 16, 16, 24))
    with pytest.raises(ValueError, match='B, C, D, H, W'):
        model(torch.randn(1, 16, 16, 16))
    with pytest.raises(ValueError, match='out_indices'):
        DenseUNet3D(out_indices=(3, ))
