# Copyright (c) mmlesion contributors. All rights reserved.
"""Drawing lesion detections on windowed CT key slices.

DeepLesion slices are 16-bit PNGs storing ``HU + 32768`` (Yan et al.,
"DeepLesion", J. Med. Imaging 2018, Sec. 2); read as an ordinary 8-bit image
they are meaningless. These helpers read the raw values, apply a display
window and draw ground truth (red) and predictions (green, with scores) with
mmdet's :class:`~mmdet.visualization.DetLocalVisualizer`, so the boxes and
labels look like every other mmdet drawing.
"""
import os.path as osp
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmdet.visualization import DetLocalVisualizer
from mmengine.structures import InstanceData

from mmlesion.datasets.transforms.loading import png_values_to_hu, read_hu_png
from mmlesion_cli.common_args import (  # noqa: F401  (re-exported)
    SOFT_TISSUE_WINDOW, add_display_window_argument)

#: Box colours (RGB): ground truth and predictions.
GT_COLOR = (255, 0, 0)
PRED_COLOR = (0, 255, 0)

ImageLike = Union[str, Path, np.ndarray]


def load_hu_slice(path: Union[str, Path]) -> np.ndarray:
    """Read a DeepLesion 16-bit PNG as HU.

    Same as :func:`mmlesion.datasets.transforms.loading.read_hu_png` (which
    also refuses PNGs written without the +32768 offset).

    Args:
        path (str | Path): the PNG.

    Returns:
        np.ndarray: float32 (H, W) HU image.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the PNG is unreadable, not single-channel 16-bit or
            written without the offset.
    """
    return read_hu_png(str(path))


def window_to_rgb(hu: np.ndarray,
                  window: Sequence[float] = SOFT_TISSUE_WINDOW) -> np.ndarray:
    """Map HU through a display window to a gray uint8 RGB image.

    Args:
        hu (np.ndarray): (H, W) HU image.
        window (Sequence[float]): ``(low, high)`` HU shown black and white.

    Returns:
        np.ndarray: (H, W, 3) uint8.
    """
    low, high = float(window[0]), float(window[1])
    if not high > low:
        raise ValueError(f'display window must be (low, high) with '
                         f'low < high, got {tuple(window)}')
    hu = np.asarray(hu, dtype=np.float32)
    if hu.ndim != 2:
        raise ValueError(f'expected a 2D HU image, got shape {hu.shape}')
    gray = np.clip((hu - low) * (255. / (high - low)), 0, 255)
    gray = np.rint(gray).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _as_hu(image: ImageLike) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return load_hu_slice(image)
    image = np.asarray(image)
    if image.dtype == np.uint16:  # raw PNG values, as cv2 reads them
        return png_values_to_hu(image, 'uint16 image')
    return image.astype(np.float32)


def _boxes(boxes, name: str) -> torch.Tensor:
    if boxes is None:
        return torch.zeros((0, 4))
    if hasattr(boxes, 'tensor'):  # mmdet BaseBoxes
        boxes = boxes.tensor
    boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32)
                            if not isinstance(boxes, torch.Tensor) else boxes)
    boxes = boxes.detach().cpu().float().reshape(-1, 4)
    if boxes.numel() and not bool(
        ((boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])).all()):
        raise ValueError(f'{name}: boxes must be (x1, y1, x2, y2) with '
                         f'x1 <= x2 and y1 <= y2')
    return boxes


def score_legend(score_thr: float, scores: Sequence[float]) -> str:
    """The legend of a picture with predictions: threshold and counts.

    A picture without a box can mean "nothing found" or "everything scored
    under the drawing threshold" (a weak demo model); the legend says
    which: ``'score >= 0.3: 0 of 15 drawn, max 0.12'``.

    Args:
        score_thr (float): the drawing threshold.
        scores (Sequence[float]): the scores of every prediction.

    Returns:
        str: the legend text.
    """
    scores = [float(v) for v in scores]
    kept = sum(v >= score_thr for v in scores)
    text = f'score >= {score_thr:g}: {kept} of {len(scores)} drawn'
    if kept < len(scores):
        text += f', max {max(scores):.2f}'
    return text


def _draw_legend(visualizer: DetLocalVisualizer, image: np.ndarray,
                 text: str) -> np.ndarray:
    """``text`` in white on a dark band at the top left of ``image``."""
    height, width = image.shape[:2]
    visualizer.set_image(image)
    visualizer.draw_texts(
        text,
        np.array([[2, 2]]),
        colors='white',
        font_sizes=max(7, min(height, width) // 40),
        vertical_alignments='top',
        bboxes=[dict(facecolor='black', alpha=0.7, pad=1, edgecolor='none')])
    return visualizer.get_image()


def draw_lesion_overlay(visualizer: DetLocalVisualizer,
                        image: np.ndarray,
                        gt_boxes=None,
                        pred_boxes=None,
                        pred_scores=None,
                        score_thr: float = 0.,
                        class_name: str = 'lesion',
                        gt_label: str = 'GT',
                        legend: bool = True) -> np.ndarray:
    """Draw ground truth and predictions on one RGB image.

    Uses the visualizer's own instance drawing (``_draw_instances``, the
    routine behind :meth:`DetLocalVisualizer.add_datasample`), with ground
    truth in :data:`GT_COLOR` and predictions in :data:`PRED_COLOR`,
    whatever ``bbox_color`` the visualizer was configured with. Where
    predictions are given (``pred_boxes`` not None, even none at all), the
    top left corner says the score threshold and how many of them it let
    through (:func:`score_legend`), so that an empty picture is not taken
    for "nothing found" when every score is under the threshold.

    Args:
        visualizer (DetLocalVisualizer): drawer to use.
        image (np.ndarray): (H, W, 3) uint8 RGB.
        gt_boxes (array-like, optional): (N, 4) ground-truth boxes.
        pred_boxes (array-like, optional): (M, 4) predicted boxes.
        pred_scores (array-like, optional): (M, ) scores; required with
            ``pred_boxes``.
        score_thr (float): predictions scoring below it are not drawn.
        class_name (str): label written before each prediction's score.
        gt_label (str): label written on ground-truth boxes.
        legend (bool): write the threshold legend (with predictions).

    Returns:
        np.ndarray: the drawn (H, W, 3) uint8 RGB image.
    """
    gt = _boxes(gt_boxes, 'gt_boxes')
    pred = _boxes(pred_boxes, 'pred_boxes')
    all_scores: Sequence[float] = []
    if len(pred):
        if pred_scores is None:
            raise ValueError('pred_scores are required with pred_boxes')
        scores = torch.as_tensor(np.asarray(pred_scores, dtype=np.float32)
                                 if not isinstance(pred_scores, torch.Tensor)
                                 else pred_scores).detach().cpu().float()
        scores = scores.reshape(-1)
        if len(scores) != len(pred):
            raise ValueError(f'{len(pred)} pred_boxes but {len(scores)} '
                             'pred_scores')
        all_scores = scores.tolist()
        keep = scores >= score_thr
        pred, scores = pred[keep], scores[keep]
    drawn = np.ascontiguousarray(image, dtype=np.uint8)
    saved_color = visualizer.bbox_color
    visualizer.bbox_color = None  # use the palettes below
    try:
        if len(gt):
            inst = InstanceData(
                bboxes=gt.numpy(), labels=np.zeros(len(gt), dtype=np.int64))
            inst.label_names = [gt_label] * len(gt)
            drawn = visualizer._draw_instances(drawn, inst, None, [GT_COLOR])
        if len(pred):
            inst = InstanceData(
                bboxes=pred.numpy(),
                labels=np.zeros(len(pred), dtype=np.int64),
                scores=scores.numpy())
            inst.label_names = [class_name] * len(pred)
            drawn = visualizer._draw_instances(drawn, inst, None,
                                               [PRED_COLOR])
        if legend and pred_boxes is not None:
            drawn = _draw_legend(visualizer, drawn,
                                 score_legend(score_thr, all_scores))
    finally:
        visualizer.bbox_color = saved_color
    return drawn


_DEFAULT_VISUALIZER: Optional[DetLocalVisualizer] = None


def _default_visualizer() -> DetLocalVisualizer:
    # Built directly (not through get_instance) so it never becomes the
    # "current" visualizer of a running mmengine Runner.
    global _DEFAULT_VISUALIZER
    if _DEFAULT_VISUALIZER is None:
        _DEFAULT_VISUALIZER = DetLocalVisualizer(
            name='mmlesion_draw_lesion_detections', line_width=1, alpha=1.)
    return _DEFAULT_VISUALIZER


def draw_lesion_detections(image: ImageLike,
                           pred_boxes=None,
                           pred_scores=None,
                           gt_boxes=None,
                           out_file: Optional[Union[str, Path]] = None,
                           window: Sequence[float] = SOFT_TISSUE_WINDOW,
                           score_thr: float = 0.,
                           visualizer: Optional[DetLocalVisualizer] = None,
                           class_name: str = 'lesion') -> np.ndarray:
    """Window a CT slice and draw detections and ground truth on it.

    Args:
        image (str | Path | np.ndarray): a DeepLesion 16-bit PNG path, or a
            2D array of HU (a uint16 array is taken as raw PNG values,
            ``HU + 32768``).
        pred_boxes (array-like, optional): (M, 4) predicted boxes in pixels.
        pred_scores (array-like, optional): (M, ) their scores.
        gt_boxes (array-like, optional): (N, 4) ground-truth boxes.
        out_file (str | Path, optional): where to write the drawing (any
            extension mmcv.imwrite understands; folders are created).
        window (Sequence[float]): display window ``(low, high)`` in HU.
            Defaults to a soft-tissue window (-160, 240).
        score_thr (float): predictions below it are not drawn.
        visualizer (DetLocalVisualizer, optional): drawer; by default a
            private one with thin lines.
        class_name (str): label written before each prediction's score.

    Returns:
        np.ndarray: the drawn (H, W, 3) uint8 RGB image.
    """
    rgb = window_to_rgb(_as_hu(image), window)
    vis = visualizer if visualizer is not None else _default_visualizer()
    drawn = draw_lesion_overlay(vis, rgb, gt_boxes, pred_boxes, pred_scores,
                                score_thr, class_name)
    if out_file is not None:
        mmcv.imwrite(drawn[..., ::-1], str(out_file))
    return drawn


def key_slice_name(img_path: str, file_name: Optional[str] = None) -> str:
    """Unique drawing name of a key slice.

    DeepLesion PNG base names (``162.png``) repeat across series, so the
    series folder is kept: ``000002_01_01_162.png`` (the CSV ``File_name``).

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
