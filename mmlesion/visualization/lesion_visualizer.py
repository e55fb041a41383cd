# Copyright (c) mmlesion contributors. All rights reserved.
"""Drawing lesion detections on windowed CT key slices.

DeepLesion slices are 16-bit PNGs storing ``HU + 32768`` (Yan et al.,
"DeepLesion", J. Med. Imaging 2018, Sec. 2). These helpers read them as HU,
apply a display window and draw ground truth and predictions on the canvas
of mmdet's :class:`~mmdet.visualization.DetLocalVisualizer`
(:func:`draw_lesion_overlay`).
"""
import functools
import os.path as osp
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmdet.visualization import DetLocalVisualizer

from mmlesion.datasets.transforms.windowing import window_hu
from mmlesion.datasets.deeplesion.png_slices import (png_values_to_hu,
                                                     read_hu_png)
from mmlesion.visualization.label_layout import (Rect, display_scale,
                                                 format_score, outline_bands,
                                                 place_labels, text_size)

#: Default display window of the pictures (soft tissue), HU (a tool's
#: ``--window``: ``mmlesion_cli.common_args.add_display_window_argument``).
SOFT_TISSUE_WINDOW = (-160., 240.)
#: Box colours (RGB): ground truth and predictions.
GT_COLOR = (255, 0, 0)
PRED_COLOR = (0, 255, 0)
#: Line styles (matplotlib): ground truth dashed, predictions solid.
GT_LINE = '--'
PRED_LINE = '-'
#: Padding of a score tag's background, points (as in ``text_size``).
_TAG_PAD = 1.5

ImageLike = Union[str, Path, np.ndarray]


def window_to_rgb(hu: np.ndarray,
                  window: Sequence[float] = SOFT_TISSUE_WINDOW) -> np.ndarray:
    """Map HU through a display window to a gray uint8 RGB image.

    Args:
        hu (np.ndarray): (H, W) HU image.
        window (Sequence[float]): ``(low, high)`` HU shown black and white.

    Returns:
        np.ndarray: (H, W, 3) uint8.
    """
    hu = np.asarray(hu)
    if hu.ndim != 2:
        raise ValueError(f'expected a 2D HU image, got shape {hu.shape}')
    gray = np.rint(window_hu(hu, window_of(window), (0., 255.)))
    gray = gray.astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _as_hu(image: ImageLike) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return read_hu_png(str(image))
    image = np.asarray(image)
    if image.dtype == np.uint16:  # raw PNG values, as cv2 reads them
        return png_values_to_hu(image, 'uint16 image')
    return image.astype(np.float32)


def _float_cpu(values) -> torch.Tensor:
    """Array-like or tensor -> float32 CPU tensor."""
    return torch.as_tensor(values, dtype=torch.float32).detach().cpu()


def _boxes(boxes, name: str) -> torch.Tensor:
    if boxes is None:
        return torch.zeros((0, 4))
    if hasattr(boxes, 'tensor'):  # mmdet BaseBoxes
        boxes = boxes.tensor
    boxes = _float_cpu(boxes).reshape(-1, 4)
    if boxes.numel() and not bool(
        ((boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])).all()):
        raise ValueError(f'{name}: boxes must be (x1, y1, x2, y2) with '
                         f'x1 <= x2 and y1 <= y2')
    return boxes


def score_legend(score_thr: float, scores: Sequence[float]) -> str:
    """The legend of a picture with predictions, e.g. ``'score >= 0.30:
    0 of 15 drawn, max 0.12'`` (an empty picture is not "nothing found").

    Args:
        score_thr (float): the drawing threshold.
        scores (Sequence[float]): the scores of every prediction.

    Returns:
        str: the legend text.
    """
    scores = [float(v) for v in scores]
    kept = sum(v >= score_thr for v in scores)
    text = f'score >= {format_score(score_thr)}: {kept} of {len(scores)} drawn'
    if kept < len(scores):
        text += f', max {format_score(max(scores))}'
    return text


def legend_entries(score_thr: float, scores: Sequence[float],
                   with_gt: bool = True,
                   class_name: str = 'lesion') -> List[Tuple[str, str]]:
    """The lines of a picture's legend and the style each stands for.

    Args:
        score_thr (float): the drawing threshold of the predictions.
        scores (Sequence[float]): the scores of every prediction.
        with_gt (bool): the picture shows ground truth.
        class_name (str): what the predictions are.

    Returns:
        list[tuple[str, str]]: ``(text, 'gt' | 'pred')``.
    """
    entries = [('ground truth', 'gt')] if with_gt else []
    entries.append(
        (f'predicted {class_name}, {score_legend(score_thr, scores)}', 'pred'))
    return entries


class _Style:
    """Line widths (points) and font sizes (points) for one picture size."""

    def __init__(self, shape: Sequence[int], dpi: float) -> None:
        short = min(int(shape[0]), int(shape[1]))
        self.dpi = float(dpi)
        self.label_pt = float(max(7, round(short / 64)))
        self.legend_pt = self.label_pt + 1
        grow = max(1., short / 512.)
        self.pred_width = 1.2 * grow
        self.gt_width = 2.2 * grow

    def px(self, points: float) -> float:
        """Points to pixels."""
        return points * self.dpi / 72.


def _draw_boxes(visualizer: DetLocalVisualizer, image: np.ndarray,
                boxes: np.ndarray, color: Tuple[int, int, int],
                line_style: str, width: float, labels: Sequence[str],
                rects: Sequence[Optional[Rect]], font_pt: float,
                pad_px: float) -> np.ndarray:
    """One drawing pass: boxes, then their labels (tags) in ``rects``."""
    visualizer.set_image(image)
    visualizer.draw_bboxes(boxes, edge_colors=[color],
                           line_styles=line_style, line_widths=width,
                           alpha=1.)
    shown = [(t, r) for t, r in zip(labels, rects) if r is not None]
    if shown:
        visualizer.draw_texts(
            [t for t, _ in shown],
            np.array([[r[0] + pad_px, r[1] + pad_px] for _, r in shown]),
            colors='black',
            font_sizes=font_pt,
            vertical_alignments='top',
            bboxes=dict(facecolor=tuple(c / 255. for c in color),
                        alpha=.85, pad=_TAG_PAD, edgecolor='none'))
    return visualizer.get_image()


def _legend_rect(entries: Sequence[Tuple[str, str]], style: _Style,
                 image_width: int) -> Tuple[Rect, float, float, float]:
    """Area of the legend, its line height, swatch length (pixels) and font
    size (points): the style's, smaller where the legend would not fit."""
    font = style.legend_pt
    while True:
        swatch = style.px(2.2 * font)
        sizes = [text_size(t, font, style.dpi, 0.) for t, _ in entries]
        width = 6. + swatch + 4. + max(w for w, _ in sizes) + 4.
        if 2. + width <= image_width - 2 or font <= 4.:
            break
        font -= .5
    line = max(h for _, h in sizes) + 2.
    width = min(width, image_width - 4.)
    return ((2., 2., 2. + width, 2. + 4. + line * len(entries)), line, swatch,
            font)


def _draw_legend(visualizer: DetLocalVisualizer, image: np.ndarray,
                 entries: Sequence[Tuple[str, str]],
                 style: _Style) -> np.ndarray:
    """A dark box at the top left: a line of each style and what it is."""
    rect, line, swatch, font = _legend_rect(entries, style, image.shape[1])
    visualizer.set_image(image)
    visualizer.draw_bboxes(np.array([rect]), edge_colors='black',
                           face_colors='black', alpha=.75, line_widths=1)
    x0, y0 = rect[0] + 6., rect[1] + 2.
    for i, (_, kind) in enumerate(entries):
        yc = y0 + (i + .5) * line
        color, ls, width = ((GT_COLOR, GT_LINE, style.gt_width)
                            if kind == 'gt' else
                            (PRED_COLOR, PRED_LINE, style.pred_width))
        visualizer.draw_lines(
            np.array([x0, x0 + swatch]), np.array([yc, yc]),
            colors=[color], line_styles=ls, line_widths=width)
    visualizer.draw_texts(
        [t for t, _ in entries],
        np.array([[x0 + swatch + 4., y0 + (i + .5) * line]
                  for i in range(len(entries))]),
        colors='white',
        font_sizes=font,
        vertical_alignments='center')
    return visualizer.get_image()


def _scores(pred_scores, count: int) -> torch.Tensor:
    if pred_scores is None:
        raise ValueError('pred_scores are required with pred_boxes')
    scores = _float_cpu(pred_scores).reshape(-1)
    if len(scores) != count:
        raise ValueError(f'{count} pred_boxes but {len(scores)} '
                         'pred_scores')
    return scores


@dataclass(frozen=True)
class OverlayStyle:
    """What :func:`draw_lesion_overlay` draws besides the boxes.

    Args:
        score_thr (float): predictions scoring below it are not drawn.
        class_name (str): what the predictions are (in the legend).
        gt_label (str): tag of the ground-truth boxes of a picture without
            predictions.
        legend (bool): draw the legend (with predictions).
        display_size (int): least short side of the picture, pixels; 0
            keeps the image's size.
        max_labels (int): score tags on at most this many predictions.
    """
    score_thr: float = 0.
    class_name: str = 'lesion'
    gt_label: str = 'GT'
    legend: bool = True
    display_size: int = 0
    max_labels: int = 10


@dataclass(frozen=True)
class PictureStyle(OverlayStyle):
    """:class:`OverlayStyle` of a CT slice drawn by
    :func:`draw_lesion_detections`.

    Args:
        window (Sequence[float]): display window ``(low, high)`` in HU.
            Defaults to a soft-tissue window (-160, 240).
        visualizer (DetLocalVisualizer, optional): drawer (its canvas); by
            default a private one.
    """
    window: Sequence[float] = SOFT_TISSUE_WINDOW
    visualizer: Optional[DetLocalVisualizer] = None


def draw_lesion_overlay(visualizer: DetLocalVisualizer,
                        image: np.ndarray,
                        gt_boxes=None,
                        pred_boxes=None,
                        pred_scores=None,
                        style: OverlayStyle = OverlayStyle()) -> np.ndarray:
    """Draw ground truth and predictions on one RGB image.

    Predictions (thin, solid) are drawn first, the ``max_labels`` best
    with a score tag hiding no other; ground truth (thick, dashed) last, so
    a lesion found exactly stays visible. With ``pred_boxes`` (even empty)
    a legend says the threshold and how many it let through; without,
    each ground-truth box is tagged ``gt_label``.

    Args:
        visualizer (DetLocalVisualizer): drawer to use (its canvas only;
            its colours and line width are not used).
        image (np.ndarray): (H, W, 3) uint8 RGB.
        gt_boxes (array-like, optional): (N, 4) ground-truth boxes in the
            pixels of ``image``.
        pred_boxes (array-like, optional): (M, 4) predicted boxes.
        pred_scores (array-like, optional): (M, ) scores; required with
            ``pred_boxes``.
        style (OverlayStyle): threshold, legend, tags, size.

    Returns:
        np.ndarray: the drawn (kH, kW, 3) uint8 RGB image (``k`` the
        :func:`~mmlesion.visualization.label_layout.display_scale`).
    """
    score_thr, class_name, gt_label = (style.score_thr, style.class_name,
                                       style.gt_label)
    max_labels = style.max_labels
    gt = _boxes(gt_boxes, 'gt_boxes')
    pred = _boxes(pred_boxes, 'pred_boxes')
    all_scores: Sequence[float] = []
    scores = torch.zeros(0)
    if len(pred):
        scores = _scores(pred_scores, len(pred))
        all_scores = scores.tolist()
        keep = scores >= score_thr
        pred, scores = pred[keep], scores[keep]
        order = torch.argsort(scores, descending=True)
        pred, scores = pred[order], scores[order]
    drawn = np.ascontiguousarray(image, dtype=np.uint8)
    scale = display_scale(drawn.shape, style.display_size)
    if scale > 1:
        drawn = np.ascontiguousarray(
            np.repeat(np.repeat(drawn, scale, axis=0), scale, axis=1))
        gt, pred = gt * scale, pred * scale
    # drawn inside the picture (a box over the edge would move the canvas)
    limit = torch.tensor([drawn.shape[1], drawn.shape[0]] * 2,
                         dtype=torch.float32) - .01
    gt = torch.minimum(gt.clamp(min=0), limit)
    pred = torch.minimum(pred.clamp(min=0), limit)
    with_legend = style.legend and pred_boxes is not None
    if not (len(gt) or len(pred) or with_legend):
        return drawn
    drawing = _Style(drawn.shape, getattr(visualizer, 'dpi', 100.))
    entries = legend_entries(score_thr, all_scores, gt_boxes is not None,
                             class_name)
    keep_out = ([_legend_rect(entries, drawing, drawn.shape[1])[0]]
                if with_legend else [])
    gt_bands = [b for box in gt.tolist()
                for b in outline_bands(box, drawing.px(drawing.gt_width))]
    size = (drawn.shape[1], drawn.shape[0])
    if len(pred):
        texts = [format_score(v) for v in scores[:max_labels].tolist()]
        rects = place_labels(
            pred[:max_labels].tolist(),
            [text_size(t, drawing.label_pt, drawing.dpi, _TAG_PAD)
             for t in texts],
            size, keep_out, gt_bands)
        drawn = _draw_boxes(visualizer, drawn, pred.numpy(), PRED_COLOR,
                            PRED_LINE, drawing.pred_width, texts, rects,
                            drawing.label_pt, drawing.px(_TAG_PAD))
    if len(gt):
        tagged = pred_boxes is None and bool(gt_label)
        texts = [gt_label] * len(gt) if tagged else []
        rects = place_labels(
            gt.tolist(),
            [text_size(t, drawing.label_pt, drawing.dpi, _TAG_PAD)
             for t in texts], size, keep_out)
        drawn = _draw_boxes(visualizer, drawn, gt.numpy(), GT_COLOR,
                            GT_LINE, drawing.gt_width, texts, rects,
                            drawing.label_pt, drawing.px(_TAG_PAD))
    if with_legend:
        drawn = _draw_legend(visualizer, drawn, entries, drawing)
    return drawn


@functools.lru_cache(maxsize=1)
def _default_visualizer() -> DetLocalVisualizer:
    # Built directly (not through get_instance) so it never becomes the
    # "current" visualizer of a running mmengine Runner.
    return DetLocalVisualizer(name='mmlesion_draw_lesion_detections',
                              line_width=1, alpha=1.)


def draw_lesion_detections(image: ImageLike,
                           pred_boxes=None,
                           pred_scores=None,
                           gt_boxes=None,
                           out_file: Optional[Union[str, Path]] = None,
                           style: PictureStyle = PictureStyle()
                           ) -> np.ndarray:
    """Window a CT slice and draw detections and ground truth on it.

    Args:
        image (str | Path | np.ndarray): a DeepLesion 16-bit PNG path, or a
            2D array of HU (uint16: raw PNG values, ``HU + 32768``).
        pred_boxes (array-like, optional): (M, 4) predicted boxes in pixels.
        pred_scores (array-like, optional): (M, ) their scores.
        gt_boxes (array-like, optional): (N, 4) ground-truth boxes.
        out_file (str | Path, optional): where to write the drawing (any
            extension mmcv.imwrite understands; folders are created).
        style (PictureStyle): the window, the drawer and the overlay's
            style.

    Returns:
        np.ndarray: the drawn (kH, kW, 3) uint8 RGB image.
    """
    rgb = window_to_rgb(_as_hu(image), style.window)
    vis = (style.visualizer if style.visualizer is not None else
           _default_visualizer())
    drawn = draw_lesion_overlay(vis, rgb, gt_boxes, pred_boxes, pred_scores,
                                style)
    if out_file is not None:
        mmcv.imwrite(drawn[..., ::-1], str(out_file))
    return drawn


def key_slice_name(img_path: str, file_name: Optional[str] = None) -> str:
    """Unique drawing name of a key slice (``000002_01_01_162.png``: the
    series folder kept, as the CSV's ``File_name``).

    Args:
        img_path (str): path of the key-slice PNG.
        file_name (str, optional): the dataset's ``file_name`` if known.

    Returns:
        str: a file name ending in ``.png``.
    """
    if file_name:
        name = osp.basename(str(file_name))
    else:
        parent = osp.basename(osp.dirname(str(img_path)))
        base = osp.basename(str(img_path))
        name = f'{parent}_{base}' if parent else base
    root, ext = osp.splitext(name)
    return name if ext.lower() == '.png' else f'{root or name}.png'


def window_of(value: Union[Sequence[float], None]) -> Tuple[float, float]:
    """Validate a ``(low, high)`` display window."""
    if value is None or len(value) != 2 or not float(value[1]) > float(
            value[0]):
        raise ValueError(f'window must be (low, high) HU with low < high, '
                         f'got {value}')
    return float(value[0]), float(value[1])
