# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.methods.retinanet_lesion.models import AttentionGate


def _set_gate(gate: AttentionGate, w_x: float, w_g: float, b_g: float,
              w_psi: float, b_psi: float) -> None:
    """1-channel gate with hand-set weights."""
    with torch.no_grad():
        gate.theta_x.conv.weight.fill_(w_x)
        gate.phi_g.conv.weight.fill_(w_g)
        gate.phi_g.conv.bias.fill_(b_g)
        gate.psi.conv.weight.fill_(w_psi)
        gate.psi.conv.bias.fill_(b_psi)


def test_shapes_and_range():
    torch.manual_seed(0)
    gate = AttentionGate(8, 4, inter_channels=6)
    x = torch.randn(2, 8, 16, 12)
    g = torch.randn(2, 4, 16, 12)
    out, alpha = gate(x, g)
    assert out.shape == x.shape
    assert alpha.shape == (2, 1, 16, 12)
    assert float(alpha.detach().min()) >= 0.
    assert float(alpha.detach().max()) <= 1.
    # output = skip connection x the single attention map (broadcast)
    torch.testing.assert_close(out, x * alpha)
    # the map depends on both inputs
    _, alpha2 = gate(x, torch.randn(2, 4, 16, 12))
    assert not torch.allclose(alpha, alpha2)
    assert gate.theta_x.conv.bias is None  # W_x has no bias (Eq. 1)


def test_hand_values():
    gate = AttentionGate(1, 1, inter_channels=1)
    # alpha = sigmoid(2 * relu(x + g - 1) - 1)
    _set_gate(gate, w_x=1., w_g=1., b_g=-1., w_psi=2., b_psi=-1.)
    x = torch.tensor([[[[0.5, 2.0]]]])
    g = torch.tensor([[[[0.25, 1.0]]]])
    out, alpha = gate(x, g)
    expected_alpha = torch.sigmoid(torch.tensor([[[[-1.0, 3.0]]]]))
    torch.testing.assert_close(alpha, expected_alpha)
    torch.testing.assert_close(out, x * expected_alpha)


def test_gating_resampled_to_skip_size():
    torch.manual_seed(0)
    gate = AttentionGate(4, 6)
    x = torch.randn(1, 4, 16, 16)
    g = torch.randn(1, 6, 8, 8)
    out, alpha = gate(x, g)
    assert out.shape == x.shape and alpha.shape == (1, 1, 16, 16)
    assert gate.inter_channels == 2  # default: half the skip channels


def test_gradients_reach_all_parameters():
    torch.manual_seed(0)
    gate = AttentionGate(3, 3)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    g = torch.randn(2, 3, 8, 8, requires_grad=True)
    out, _ = gate(x, g)
    out.sum().backward()
    for name, p in gate.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert g.grad.abs().sum() > 0


def test_bad_inputs():
    gate = AttentionGate(2, 2)
    with pytest.raises(ValueError, match='4D'):
        gate(torch.zeros(2, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match='batch'):
        gate(torch.zeros(2, 2, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match='in_channels'):
        AttentionGate(0, 2)
