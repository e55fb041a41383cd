# Copyright (c) mmlesion contributors. All rights reserved.
"""Tests of the relation-graph drawing (ElixirNet Figure 5)."""
import numpy as np
import pytest
import torch

from mmlesion.visualization import (RelationGraphStyle, draw_relation_graph,
                                    select_edges, slice_to_gray)


def _fake_graph():
    boxes = np.array([[10, 10, 30, 30], [80, 20, 100, 40], [40, 90, 60, 110],
                      [100, 100, 120, 120]], dtype=np.float32)
    e = np.full((4, 4), 0.02)
    e[0, 1] = e[1, 0] = 0.9  # strong 0-1 edge
    e[2, 3] = e[3, 2] = 0.3  # weaker 2-3 edge
    np.fill_diagonal(e, 0.5)  # self-loops: never drawn
    e = e / e.sum(axis=1, keepdims=True)  # rows sum to 1 like softmax
    return boxes, e


def test_select_edges_order_symmetry_and_self_loops():
    _, e = _fake_graph()
    edges = select_edges(e, top_k=None)
    assert edges.shape == (6, 3)  # 4 choose 2 undirected pairs
    assert tuple(edges[0, :2].astype(int)) == (0, 1)
    assert tuple(edges[1, :2].astype(int)) == (2, 3)
    assert (np.diff(edges[:, 2]) <= 0).all()
    assert np.isclose(edges[0, 2], (e[0, 1] + e[1, 0]) / 2)
    assert not (edges[:, 0] == edges[:, 1]).any()
    assert len(select_edges(e, top_k=2)) == 2
    assert len(select_edges(e, min_weight=0.2)) == 2
    directed = select_edges(torch.tensor(e), top_k=None, symmetric=False)
    assert directed.shape == (12, 3)


@pytest.mark.parametrize('bad', [np.zeros((3, 4)), np.full((2, 2), np.nan)])
def test_select_edges_rejects_bad_adjacency(bad):
    with pytest.raises(ValueError, match='adjacency'):
        select_edges(bad)


def test_slice_to_gray_layouts():
    hwc = np.stack([np.zeros((8, 10)), np.ones((8, 10)),
                    np.full((8, 10), 2.0)], axis=-1)
    hwc[0, 0, 1] = 3.0
    gray = slice_to_gray(hwc)  # key slice = middle channel
    assert gray.shape == (8, 10)
    assert gray[0, 0] == 1.0 and gray[1, 1] == 0.0
    chw = torch.from_numpy(np.moveaxis(hwc, -1, 0))
    np.testing.assert_allclose(slice_to_gray(chw), gray)
    assert slice_to_gray(np.ones((4, 4))).max() == 0.0  # constant image
    ranged = slice_to_gray(np.array([[-1.0, 1.0]]), value_range=(-1, 1))
    np.testing.assert_allclose(ranged, [[0.0, 1.0]])
    with pytest.raises(ValueError, match='image'):
        slice_to_gray(np.zeros((2, 2, 2, 2)))


def _pixel(rgb, x, y):
    return rgb[int(round(y)), int(round(x))].astype(int)


def test_draw_relation_graph_png(tmp_path):
    boxes, e = _fake_graph()
    image = np.zeros((128, 128, 3), dtype=np.float32)
    image[..., 1] = np.linspace(-1, 1, 128)[None, :]  # key slice gradient
    gt = np.array([[5, 60, 35, 80]])
    out = tmp_path / 'sub' / 'graph.png'
    rgb = draw_relation_graph(
        image, torch.from_numpy(boxes), torch.from_numpy(e), gt_boxes=gt,
        out_file=str(out),
        style=RelationGraphStyle(top_k=2, value_range=(-1, 1)))
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8
    assert out.is_file() and out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    import matplotlib.image as mpimg
    png = mpimg.imread(str(out))
    assert png.shape[:2] == (128, 128)

    # ground truth in red: the top edge of the gt box
    r, g, b = _pixel(rgb, 20, 60)
    assert r > 180 and g < 80 and b < 80
    # the strong edge 0-1 is thicker than the weak edge 2-3
    c0, c1 = (20, 20), (90, 30)
    c2, c3 = (50, 100), (110, 110)

    def thickness(p, q):
        # count edge-coloured (cyan) pixels across the segment midpoint
        mx, my = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
        column = rgb[int(my) - 10:int(my) + 11, int(mx)].astype(int)
        cyan = (column[:, 2] > 150) & (column[:, 1] > 120) & (
            column[:, 0] < 120)
        return int(cyan.sum())

    strong, weak = thickness(c0, c1), thickness(c2, c3)
    assert weak >= 1
    assert strong > weak
    # no edge drawn between 0 and 3 (not in the top 2)
    mx, my = (c0[0] + c3[0]) / 2, (c0[1] + c3[1]) / 2
    column = rgb[int(my) - 3:int(my) + 4, int(mx)].astype(int)
    assert not ((column[:, 2] > 150) & (column[:, 0] < 120)).any()


def test_draw_relation_graph_edge_cases(tmp_path):
    img = np.zeros((32, 32))
    rgb = draw_relation_graph(img, np.zeros((0, 4)), np.zeros((0, 0)))
    assert rgb.shape == (32, 32, 3)
    rgb = draw_relation_graph(img, [[1, 1, 5, 5]], [[1.0]], gt_boxes=[])
    assert rgb.shape == (32, 32, 3)
    with pytest.raises(ValueError, match='adjacency'):
        draw_relation_graph(img, np.zeros((3, 4)), np.eye(2))
    with pytest.raises(ValueError, match='boxes'):
        draw_relation_graph(img, np.zeros((3, 5)), np.eye(3))
