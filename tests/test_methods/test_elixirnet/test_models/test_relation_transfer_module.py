# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.methods.elixirnet.models import RelationTransferModule


def _inputs(num_rois=(3, 4), channels=16, seed=0):
    torch.manual_seed(seed)
    feats = torch.randn(sum(num_rois), channels)
    graphs = [torch.rand(n, n).softmax(dim=1) for n in num_rois]
    return feats, graphs


def test_output_shape_and_formula():
    rtm = RelationTransferModule(16, out_channels=8)
    rtm.init_weights()
    feats, graphs = _inputs()
    out = rtm(feats, graphs, [3, 4])
    assert out.shape == (7, 8)
    # f_E = E Gamma_s M W_E, block-diagonal over images
    embeddings = torch.cat(
        [rtm.binary_cls.weight, rtm.binary_cls.bias[:, None]], dim=1)
    assert embeddings.shape == (2, 17)  # M in R^{2 x (P + 1)}
    gamma = (feats @ rtm.binary_cls.weight.t() +
             rtm.binary_cls.bias).softmax(dim=1)
    e = torch.block_diag(*graphs)
    expected = e @ gamma @ embeddings @ rtm.transform.weight.t()
    assert torch.allclose(out, expected, atol=1e-5)


def test_output_depends_on_graph():
    rtm = RelationTransferModule(16, out_channels=8)
    feats, graphs = _inputs()
    out = rtm(feats, graphs, [3, 4])
    changed = [graphs[0], torch.eye(4)]
    out2 = rtm(feats, changed, [3, 4])
    assert torch.allclose(out[:3], out2[:3])  # image 1 untouched
    assert not torch.allclose(out[3:], out2[3:])


def test_binary_classifier_frozen_by_default():
    rtm = RelationTransferModule(16, out_channels=8)
    assert not rtm.binary_cls.weight.requires_grad
    feats, graphs = _inputs()
    feats.requires_grad_(True)
    graphs = [g.requires_grad_(True) for g in graphs]
    rtm(feats, graphs, [3, 4]).sum().backward()
    assert rtm.transform.weight.grad.abs().sum() > 0
    assert feats.grad.abs().sum() > 0  # through Gamma_s
    assert graphs[0].grad.abs().sum() > 0  # through E
    trainable = RelationTransferModule(16, 8, freeze_classifier=False)
    trainable(feats.detach(), [g.detach() for g in graphs],
              [3, 4]).sum().backward()
    assert trainable.binary_cls.weight.grad is not None


def test_bad_inputs():
    rtm = RelationTransferModule(16, out_channels=8)
    feats, graphs = _inputs()
    with pytest.raises(ValueError, match='one graph per image'):
        rtm(feats, graphs[:1], [3, 4])
    with pytest.raises(ValueError, match=r'graph 1 has shape'):
        rtm(feats, [graphs[0], torch.eye(3)], [3, 4])
