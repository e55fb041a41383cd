# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmlesion.methods.elixirnet.models import NonLocalGraph


def _features(num_rois=(3, 5), channels=8, size=7, seed=0):
    torch.manual_seed(seed)
    return torch.randn(sum(num_rois), channels, size, size)


@pytest.mark.parametrize('stride', [1, 2])
def test_adjacency_rows_sum_to_one_one_row_per_proposal(stride):
    op = NonLocalGraph(8, stride=stride)
    x = _features()
    out = op(x, [3, 5])
    expected = 7 if stride == 1 else 4
    assert out.shape == (8, 8, expected, expected)
    assert [tuple(e.shape) for e in op.last_adjacency] == [(3, 3), (5, 5)]
    for graph in op.last_adjacency:
        assert (graph >= 0).all()
        assert torch.allclose(graph.sum(dim=1), torch.ones(len(graph)))
        assert not graph.requires_grad


def test_adjacency_is_softmax_of_phi_products():
    op = NonLocalGraph(8)
    x = _features((4, ))
    op(x, [4])
    nodes = F.relu(op.phi(x.mean(dim=(2, 3))))
    expected = (nodes @ nodes.t()).softmax(dim=1)
    assert torch.allclose(op.last_adjacency[0], expected, atol=1e-6)
    # self-loops are part of the graph
    assert (torch.diagonal(op.last_adjacency[0]) > 0).all()


def test_images_never_mix():
    """RoIs of image A never exchange messages with RoIs of image B."""
    op = NonLocalGraph(8).eval()  # eval: BN uses running statistics
    x = _features((3, 5))
    out = op(x, [3, 5])
    graphs = [g.clone() for g in op.last_adjacency]
    x2 = x.clone()
    x2[3:] = torch.randn(5, 8, 7, 7) * 3  # change image B only
    out2 = op(x2, [3, 5])
    assert torch.allclose(out[:3], out2[:3], atol=1e-6)
    assert torch.allclose(op.last_adjacency[0], graphs[0])
    assert not torch.allclose(out[3:], out2[3:])
    # the same RoIs seen as one image do mix
    out_joint = op(x2, [8])
    assert not torch.allclose(out_joint[:3], out2[:3])


def test_messages_flow_between_rois_of_one_image():
    op = NonLocalGraph(8).eval()
    x = _features((4, ))
    out = op(x, [4])
    x2 = x.clone()
    x2[3] = x2[3] + 2.
    out2 = op(x2, [4])
    assert not torch.allclose(out[0], out2[0])


def test_gradient_reaches_graph_parameters():
    op = NonLocalGraph(8)
    x = _features().requires_grad_(True)
    out = op(x, [3, 5])
    (out * torch.randn_like(out)).sum().backward()
    for name in ('phi', 'psi', 'gcn_weight'):
        grads = [p.grad for p in getattr(op, name).parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name


def test_live_adjacency_only_on_request():
    op = NonLocalGraph(8)
    op(_features(), [3, 5])
    assert op.live_adjacency is None
    with pytest.raises(RuntimeError, match='keep_live_graph'):
        op.pop_live_adjacency()
    op.keep_live_graph = True
    op(_features(), [3, 5])
    graphs = op.pop_live_adjacency()
    assert graphs[0].requires_grad and op.live_adjacency is None


def test_empty_image_and_bad_counts():
    op = NonLocalGraph(8)
    out = op(_features((3, )), [0, 3, 0])
    assert out.shape == (3, 8, 7, 7)
    assert [tuple(g.shape) for g in op.last_adjacency] == [(0, 0), (3, 3),
                                                           (0, 0)]
    with pytest.raises(ValueError, match='sum to the number'):
        op(_features((3, )), [2])
    with pytest.raises(ValueError, match='needs num_rois'):
        op(_features((3, )), None)


def test_scaled_option():
    op = NonLocalGraph(8, scaled=True)
    x = _features((4, ))
    op(x, [4])
    nodes = F.relu(op.phi(x.mean(dim=(2, 3))))
    expected = (nodes @ nodes.t() / 2.).softmax(dim=1)  # sqrt(4) = 2
    assert torch.allclose(op.last_adjacency[0], expected, atol=1e-6)
