# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.methods.retinanet_lesion.models import DenseFPN

IN_CHANNELS = [8, 16, 32, 64]  # C2..C5


def _inputs(size: int = 64, batch: int = 2, stem: int = 4, img_ch: int = 3):
    torch.manual_seed(0)
    img = torch.randn(batch, img_ch, size, size)
    c1 = torch.randn(batch, stem, size // 2, size // 2)
    feats = [
        torch.randn(batch, c, size // 2**(i + 2), size // 2**(i + 2))
        for i, c in enumerate(IN_CHANNELS)
    ]
    return (img, c1, *feats)


@pytest.mark.parametrize(
    'attention_gates',
    [False, (), 'laterals', 'skips', ('skips', 'laterals')])
def test_shapes_p0_to_p6(attention_gates):
    neck = DenseFPN(
        IN_CHANNELS,
        out_channels=16,
        num_outs=5,
        input_channels=3,
        stem_channels=4,
        dense_channels=8,
        attention_gates=attention_gates)
    neck.init_weights()
    outs = neck(_inputs())
    assert len(outs) == 7
    sizes = [64, 32, 16, 8, 4, 2, 1]  # P0 .. P6
    channels = [8, 8, 16, 16, 16, 16, 16]
    for out, size, ch in zip(outs, sizes, channels):
        assert out.shape == (2, ch, size, size)
    placements = DenseFPN.parse_gate_placements(attention_gates)
    assert (neck.dense_gates is not None) == ('skips' in placements)
    assert (neck.fpn_gates is not None) == ('laterals' in placements)
    if neck.fpn_gates is not None:
        assert len(neck.fpn_gates) == 3  # C2..C4; C5 has no coarser level


def test_fpn_levels_match_mmdet_fpn_without_gates():
    """P2..P6 are exactly mmdet's FPN (same weights) when not gated."""
    from mmdet.models.necks import FPN
    neck = DenseFPN(IN_CHANNELS, 16, stem_channels=4, dense_channels=8)
    neck.init_weights()
    fpn = FPN(IN_CHANNELS, 16, 5, add_extra_convs='on_input')
    fpn.load_state_dict({
        k: v
        for k, v in neck.state_dict().items()
        if k.startswith(('lateral_convs', 'fpn_convs'))
    })
    inputs = _inputs()
    ours = neck(inputs)[2:]
    ref = fpn(inputs[2:])
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_closed_gates_remove_skip_connections():
    """A gate whose map is 0 gives the same P1/P0 as zeroed skip convs."""
    kwargs = dict(stem_channels=4, dense_channels=8)
    gated = DenseFPN(IN_CHANNELS, 16, attention_gates='skips', **kwargs)
    gated.init_weights()
    for gate in gated.dense_gates:
        with torch.no_grad():
            gate.psi.conv.weight.zero_()
            gate.psi.conv.bias.fill_(-1e4)  # alpha = sigmoid(-1e4) = 0
    plain = DenseFPN(IN_CHANNELS, 16, attention_gates=(), **kwargs)
    plain.load_state_dict(gated.state_dict(), strict=False)
    with torch.no_grad():
        for p in plain.dense_skips.parameters():
            p.zero_()
    inputs = _inputs()
    out_gated = gated(inputs)
    out_plain = plain(inputs)
    for a, b in zip(out_gated, out_plain):
        torch.testing.assert_close(a, b)
    # with open gates (default init) the skip connections do matter
    fresh = DenseFPN(IN_CHANNELS, 16, attention_gates='skips', **kwargs)
    fresh.load_state_dict(gated.state_dict())
    for gate in fresh.dense_gates:
        with torch.no_grad():
            gate.psi.conv.bias.fill_(10.)
    assert not torch.allclose(fresh(inputs)[0], out_gated[0])


def test_lateral_gates_act_on_the_detection_levels():
    """'laterals' gates reach P2..P4 (what RetinaHead sees); 'skips' gates
    only reach P1 / P0 (Improved RetinaNet Sec. 2.3)."""
    kwargs = dict(stem_channels=4, dense_channels=8)
    inputs = _inputs()
    for placement, changed, same in (('laterals', [2, 3, 4], [5, 6]),
                                     ('skips', [0, 1], [2, 3, 4, 5, 6])):
        torch.manual_seed(0)
        neck = DenseFPN(IN_CHANNELS, 16, attention_gates=placement, **kwargs)
        neck.init_weights()
        gates = neck.fpn_gates if placement == 'laterals' else \
            neck.dense_gates
        with torch.no_grad():
            open_outs = neck(inputs)
            for gate in gates:  # close every gate: alpha = 0
                gate.psi.conv.weight.zero_()
                gate.psi.conv.bias.fill_(-1e4)
            closed_outs = neck(inputs)
        for i in changed:
            assert not torch.allclose(open_outs[i], closed_outs[i]), i
        for i in same:
            torch.testing.assert_close(open_outs[i], closed_outs[i])


def test_gate_placement_errors():
    with pytest.raises(ValueError, match='does not say where'):
        DenseFPN(IN_CHANNELS, 16, stem_channels=4, attention_gates=True)
    with pytest.raises(ValueError, match='unknown attention gate'):
        DenseFPN(IN_CHANNELS, 16, stem_channels=4, attention_gates='pyramid')


def test_dense_channels_default_and_odd_sizes():
    neck = DenseFPN(IN_CHANNELS, 16, stem_channels=4)
    assert neck.dense_reduce is None and neck.dense_channels == 16
    # non-divisible input: upsampling follows the skip sizes
    img = torch.randn(1, 3, 50, 38)
    c1 = torch.randn(1, 4, 25, 19)
    feats = [
        torch.randn(1, c, s[0], s[1])
        for c, s in zip(IN_CHANNELS, [(13, 10), (7, 5), (4, 3), (2, 2)])
    ]
    outs = neck((img, c1, *feats))
    assert outs[0].shape == (1, 16, 50, 38)
    assert outs[1].shape == (1, 16, 25, 19)


def test_bad_inputs():
    neck = DenseFPN(IN_CHANNELS, 16, stem_channels=4)
    inputs = _inputs()
    with pytest.raises(ValueError, match='expects 6 inputs'):
        neck(inputs[2:])
    with pytest.raises(ValueError, match='C1 has'):
        neck((inputs[0], torch.randn(2, 5, 32, 32), *inputs[2:]))
    with pytest.raises(ValueError, match='scale_factor'):
        DenseFPN(IN_CHANNELS, 16, upsample_cfg=dict(scale_factor=2))
