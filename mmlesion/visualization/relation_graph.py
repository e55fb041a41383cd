# Copyright (c) mmlesion contributors. All rights reserved.
"""Draw the region-to-region relation graph learned by ElixirNet's ALB
(Jiang et al., AAAI 2020, Figure 5: region centres connected by the
learned edges E, thickness by weight, ground truth in red).
"""
from dataclasses import astuple, dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmlesion.utils.writing.atomic import atomic_save_with

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]


def _to_numpy(value: ArrayLike, name: str, dtype=np.float64) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{name}: cannot convert to an array: {err}') from err


def _box_array(value: ArrayLike, name: str, rows: str) -> np.ndarray:
    """``value`` as a (rows, 4) float array (empty: (0, 4))."""
    boxes = _to_numpy(value, name)
    boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f'{name}: expected ({rows}, 4), got {boxes.shape}')
    return boxes


def slice_to_gray(image: ArrayLike,
                  channel: Optional[int] = None,
                  value_range: Optional[Tuple[float, float]] = None
                  ) -> np.ndarray:
    """Turn a CT input into a displayable gray image in [0, 1].

    Args:
        image (array): (H, W), (H, W, C) (key slice in the middle channel)
            or (C, H, W) (a network input; recognised when the first axis is
            the smallest and has at most 16 entries).
        channel (int, optional): channel to show; default the middle one
            (the key slice).
        value_range (tuple, optional): (low, high) mapped to (0, 1); default
            the image's own min and max.

    Returns:
        np.ndarray: (H, W) float array in [0, 1].
    """
    img = _to_numpy(image, 'image', np.float64)
    if img.ndim == 3:
        if img.shape[0] <= 16 and img.shape[0] < min(img.shape[1:]):
            img = np.moveaxis(img, 0, -1)
        idx = img.shape[-1] // 2 if channel is None else channel
        if not -img.shape[-1] <= idx < img.shape[-1]:
            raise ValueError(f'image: channel {idx} out of range for '
                             f'{img.shape[-1]} channels')
        img = img[..., idx]
    elif img.ndim != 2:
        raise ValueError(
            f'image: expected (H, W), (H, W, C) or (C, H, W), got shape '
            f'{img.shape}')
    low, high = value_range if value_range is not None else (img.min(),
                                                              img.max())
    if high <= low:
        return np.zeros_like(img)
    return np.clip((img - low) / (high - low), 0.0, 1.0)


def select_edges(adjacency: ArrayLike,
                 top_k: Optional[int] = 30,
                 min_weight: float = 0.0,
                 symmetric: bool = True) -> np.ndarray:
    """Pick the edges to draw from an adjacency matrix.

    Args:
        adjacency (array): (N, N) graph ``E`` (rows of a row softmax sum to
            1; self-loops on the diagonal are never drawn).
        top_k (int, optional): keep only the ``top_k`` strongest edges
            (None: all).
        min_weight (float): drop edges weaker than this.
        symmetric (bool): draw each pair once with weight ``(E_ij + E_ji) /
            2`` (the paper's undirected graph); False: each directed edge
            ``i -> j`` with weight ``E_ij``.

    Returns:
        np.ndarray: (K, 3) rows ``(i, j, weight)`` sorted by decreasing
        weight.
    """
    adj = _to_numpy(adjacency, 'adjacency')
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(
            f'adjacency: expected a square (N, N) matrix, got {adj.shape}')
    if not np.isfinite(adj).all():
        raise ValueError('adjacency: contains NaN or inf')
    n = adj.shape[0]
    if symmetric:
        weights = (adj + adj.T) / 2.0
        rows, cols = np.triu_indices(n, k=1)
    else:
        weights = adj
        rows, cols = np.nonzero(~np.eye(n, dtype=bool))
    vals = weights[rows, cols]
    keep = vals >= min_weight
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.argsort(-vals, kind='stable')
    if top_k is not None:
        order = order[:top_k]
    return np.stack([rows[order], cols[order], vals[order]],
                    axis=1).reshape(-1, 3)


@dataclass(frozen=True)
class RelationGraphStyle:
    """What :func:`draw_relation_graph` draws and how.

    Args:
        top_k (int, optional): draw the ``top_k`` strongest edges.
        min_weight (float): do not draw weaker edges.
        max_linewidth (float): width of the strongest drawn edge.
        symmetric (bool): see :func:`select_edges`.
        draw_boxes (bool): also outline the proposals.
        channel (int, optional): channel of a multi-slice input to show.
        value_range (tuple, optional): gray-level range of the slice.
        title (str, optional): figure title.
        dpi (int): resolution; the output has the image's pixel size.
    """
    top_k: Optional[int] = 30
    min_weight: float = 0.0
    max_linewidth: float = 4.0
    symmetric: bool = True
    draw_boxes: bool = False
    channel: Optional[int] = None
    value_range: Optional[Tuple[float, float]] = None
    title: Optional[str] = None
    dpi: int = 100


def draw_relation_graph(image: ArrayLike,
                        boxes: ArrayLike,
                        adjacency: ArrayLike,
                        gt_boxes: Optional[ArrayLike] = None,
                        out_file: Optional[str] = None,
                        style: RelationGraphStyle = RelationGraphStyle()
                        ) -> np.ndarray:
    """Draw proposal centres (yellow dots) linked by the relation graph
    ``E`` on a slice, edge width and opacity proportional to the weight,
    ground-truth boxes in red.

    Args:
        image (array): the slice (see :func:`slice_to_gray`), in the same
            pixel frame as ``boxes`` and ``gt_boxes``.
        boxes (array): (N, 4) proposals ``x1, y1, x2, y2``, row ``i`` is
            node ``i`` of ``adjacency``.
        adjacency (array): (N, N) graph ``E``.
        gt_boxes (array, optional): (M, 4) ground-truth boxes.
        out_file (str, optional): PNG to write (folders are created).
        style (RelationGraphStyle): edges, boxes, slice, title, dpi.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB rendering.

    Raises:
        ValueError: on inconsistent shapes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    (top_k, min_weight, max_linewidth, symmetric, draw_boxes, channel,
     value_range, title, dpi) = astuple(style)
    gray = slice_to_gray(image, channel=channel, value_range=value_range)
    boxes = _box_array(boxes, 'boxes', 'N')
    adj = _to_numpy(adjacency, 'adjacency')
    if adj.shape != (len(boxes), len(boxes)):
        raise ValueError(f'adjacency: shape {adj.shape} does not match the '
                         f'{len(boxes)} boxes (expected '
                         f'({len(boxes)}, {len(boxes)}))')
    gts = _box_array([] if gt_boxes is None else gt_boxes, 'gt_boxes', 'M')

    h, w = gray.shape
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(gray, cmap='gray', vmin=0.0, vmax=1.0, interpolation='nearest')
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis('off')

    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2,
                        (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    edges = select_edges(adj, top_k=top_k, min_weight=min_weight,
                         symmetric=symmetric) if len(boxes) > 1 else \
        np.zeros((0, 3))
    if len(edges):
        w_max = edges[:, 2].max()
        for i, j, weight in edges:
            rel = weight / w_max if w_max > 0 else 0.0
            if rel <= 0:
                continue
            p, q = centres[int(i)], centres[int(j)]
            ax.plot([p[0], q[0]], [p[1], q[1]],
                    color=(0.0, 0.9, 1.0),
                    linewidth=max_linewidth * rel,
                    alpha=0.3 + 0.5 * rel,
                    solid_capstyle='round')
    if draw_boxes:
        for x1, y1, x2, y2 in boxes:
            ax.add_patch(
                Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                          edgecolor='yellow', linewidth=0.5, alpha=0.6))
    if len(centres):
        ax.scatter(centres[:, 0], centres[:, 1], s=12, c='yellow',
                   edgecolors='black', linewidths=0.3, zorder=3)
    for x1, y1, x2, y2 in gts:
        ax.add_patch(
            Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                      edgecolor='red', linewidth=1.5, zorder=4))
    if title:
        ax.text(4, 4, title, color='white', fontsize=8, va='top',
                bbox=dict(facecolor='black', alpha=0.5, pad=2))

    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    rgb = rgba[..., :3].copy()
    if out_file:
        atomic_save_with(
            out_file, lambda p: fig.savefig(p, dpi=dpi, format='png'))
    return rgb
