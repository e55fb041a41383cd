# Copyright (c) mmlesion contributors. All rights reserved.
import os.path as osp
from unittest.mock import MagicMock

import cv2
import numpy as np
import pytest
import torch
from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401  (registers the hook)
from mmlesion.engine.hooks import LesionVisualizationHook
from mmlesion.visualization import draw_lesion_detections
from mmlesion.visualization.lesion_visualizer import (PictureStyle,
                                                      window_to_rgb)

GT_BOX = [40., 50., 90., 100.]
PRED_BOX = [120., 30., 160., 70.]
#: The hook enlarges the 192 px slices to at least 512 px: 3 x 192 = 576.
SCALE = 3


def _scaled(box, k: int = SCALE):
    return [v * k for v in box]


def _ct_png(path, size=192) -> str:
    """A 16-bit slice: soft tissue disc (40 HU) in air, HU + 32768."""
    yy, xx = np.mgrid[:size, :size]
    hu = np.full((size, size), -1000, np.int32)
    hu[(xx - size / 2)**2 + (yy - size / 2)**2 < (size * .45)**2] = 40
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), (hu + 32768).astype(np.uint16))
    return str(path)


def _sample(img_path: str, with_raw_instances: bool = True) -> DetDataSample:
    meta = dict(img_path=img_path, ori_shape=(192, 192),
                img_shape=(384, 384), scale_factor=(2., 2.))
    if with_raw_instances:
        meta['instances'] = [
            dict(bbox=GT_BOX, bbox_label=0, ignore_flag=0),
            dict(bbox=[5., 5., 20., 20.], bbox_label=0, ignore_flag=1),
        ]
    sample = DetDataSample(metainfo=meta)
    # gt_instances are in the resized network input (x2)
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[v * 2 for v in GT_BOX]]),
        labels=torch.zeros(1, dtype=torch.long))
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([PRED_BOX, [10., 10., 30., 30.]]),
        scores=torch.tensor([.9, .1]),
        labels=torch.zeros(2, dtype=torch.long))
    return sample


def _red(img_rgb: np.ndarray, box) -> np.ndarray:
    """Pixels of the box's left edge (3 px band) that are clearly red."""
    x1, y1, _, y2 = (int(round(v)) for v in box)
    band = img_rgb[y1 + 8:y2 - 2, max(x1 - 2, 0):x1 + 3].reshape(-1, 3)
    return band[(band[:, 0] > 150) & (band[:, 1] < 100) & (band[:, 2] < 100)]


def _green(img_rgb: np.ndarray, box) -> np.ndarray:
    x1, y1, _, y2 = (int(round(v)) for v in box)
    band = img_rgb[y1 + 8:y2 - 2, max(x1 - 2, 0):x1 + 3].reshape(-1, 3)
    return band[(band[:, 1] > 150) & (band[:, 0] < 100) & (band[:, 2] < 100)]


@pytest.fixture
def visualizer():
    return DetLocalVisualizer.get_instance('test_lesion_visualization_hook')


def _runner(tmp_path):
    runner = MagicMock()
    runner.work_dir = str(tmp_path / 'work_dir')
    runner.timestamp = '20240101_000000'
    runner.iter = 0
    return runner


def test_registered(visualizer):
    hook = HOOKS.build(dict(type='LesionVisualizationHook', draw=True))
    assert isinstance(hook, LesionVisualizationHook)
    assert hook.window == (-160., 240.)


def test_after_test_iter_writes_windowed_rgb(tmp_path, visualizer):
    img_path = _ct_png(tmp_path / 'Images_png' / '000001_01_01' / '010.png')
    hook = LesionVisualizationHook(draw=True, test_out_dir='show')
    runner = _runner(tmp_path)
    hook.after_test_iter(runner, 0, {}, [_sample(img_path)])
    out = osp.join(runner.work_dir, runner.timestamp, 'show',
                   '000001_01_01_010.png')
    assert osp.isfile(out)
    drawn = cv2.imread(out, cv2.IMREAD_UNCHANGED)
    # enlarged for display: short side >= 512 (an integer factor)
    assert drawn.dtype == np.uint8 and drawn.shape == (576, 576, 3)
    rgb = drawn[..., ::-1]
    # ground truth in red, the confident prediction in green
    assert len(_red(rgb, _scaled(GT_BOX))) >= 5
    assert len(_green(rgb, _scaled(PRED_BOX))) >= 5
    # the low-score prediction (0.1 < score_thr 0.3) and the ignored
    # ground truth are not drawn; the inside of the body is windowed gray
    assert len(_green(rgb, _scaled([10., 10., 30., 30.]))) == 0
    assert len(_red(rgb, _scaled([5., 5., 20., 20.]))) == 0
    gray = rgb[96 * SCALE, 100 * SCALE]
    assert gray[0] == gray[1] == gray[2]
    assert abs(int(gray[0]) - round((40 + 160) / 400 * 255)) <= 1
    # a second batch goes to the same folder (no nested run folders)
    hook.after_test_iter(runner, 1, {}, [_sample(img_path)])
    assert sorted(
        p for p in (tmp_path / 'work_dir').rglob('*') if p.is_file()) == [
            tmp_path / 'work_dir' / runner.timestamp / 'show' /
            '000001_01_01_010.png'
        ]


def test_gt_from_gt_instances_is_mapped_back(tmp_path, visualizer):
    img_path = _ct_png(tmp_path / 'Images_png' / '000002_01_01' / '020.png')
    sample = _sample(img_path, with_raw_instances=False)
    boxes = LesionVisualizationHook.gt_boxes(sample)
    np.testing.assert_allclose(boxes, [GT_BOX])
    sample.set_metainfo(dict(flip=True, flip_direction='horizontal'))
    flipped = LesionVisualizationHook.gt_boxes(sample)
    # flipped in the 384 px input, then rescaled: x -> 192 - x
    np.testing.assert_allclose(flipped,
                               [[192 - 90., 50., 192 - 40., 100.]])


def test_after_val_iter_uses_backends(tmp_path, visualizer):
    img_path = _ct_png(tmp_path / 'Images_png' / '000003_01_01' / '030.png')
    hook = LesionVisualizationHook(draw=True, interval=2)
    hook._visualizer = MagicMock(wraps=visualizer)
    runner = _runner(tmp_path)
    hook.after_val_iter(runner, 1, {}, [_sample(img_path)])  # not interval
    hook._visualizer.add_image.assert_not_called()
    hook.after_val_iter(runner, 2, {}, [_sample(img_path)])
    name, image, step = hook._visualizer.add_image.call_args[0]
    assert name == 'val_img' and step == 2
    assert image.shape == (576, 576, 3) and image.dtype == np.uint8
    # display_size=0 keeps the slice's size
    hook = LesionVisualizationHook(draw=True, display_size=0)
    assert hook.draw_sample(_sample(img_path)).shape == (192, 192, 3)


def test_not_drawn_when_disabled(tmp_path, visualizer):
    img_path = _ct_png(tmp_path / 'Images_png' / '000004_01_01' / '040.png')
    hook = LesionVisualizationHook(draw=False, test_out_dir='show')
    hook.after_test_iter(_runner(tmp_path), 0, {}, [_sample(img_path)])
    assert not (tmp_path / 'work_dir').exists()


def test_draw_lesion_detections_function(tmp_path):
    hu = np.full((128, 128), -1000., np.float32)
    hu[20:110, 20:110] = 50.
    out = tmp_path / 'sub' / 'drawn.png'
    drawn = draw_lesion_detections(
        hu, pred_boxes=[[60, 30, 100, 70]], pred_scores=[.8],
        gt_boxes=[[25, 30, 55, 70]], out_file=out,
        style=PictureStyle(window=(-160, 240)))
    assert drawn.shape == (128, 128, 3) and drawn.dtype == np.uint8
    assert out.is_file()
    saved = cv2.imread(str(out))[..., ::-1]
    np.testing.assert_array_equal(saved, drawn)
    assert len(_red(drawn, [25, 30, 55, 70])) >= 5
    assert len(_green(drawn, [60, 30, 100, 70])) >= 5
    # a uint16 array is read as raw PNG values (HU + 32768)
    raw = (hu + 32768).astype(np.uint16)
    np.testing.assert_array_equal(
        draw_lesion_detections(raw), window_to_rgb(hu))
    with pytest.raises(ValueError, match='pred_scores'):
        draw_lesion_detections(hu, pred_boxes=[[1, 2, 3, 4]])
    with pytest.raises(ValueError, match='window'):
        draw_lesion_detections(hu, style=PictureStyle(window=(100, -100)))


def test_rejects_8bit_png(tmp_path):
    path = tmp_path / '8bit.png'
    cv2.imwrite(str(path), np.zeros((16, 16), np.uint8))
    with pytest.raises(ValueError, match='16-bit'):
        draw_lesion_detections(path)
    with pytest.raises(FileNotFoundError, match='missing'):
        draw_lesion_detections(tmp_path / 'missing.png')


def test_score_legend_text():
    """Scores and the threshold written as on the boxes: two decimals."""
    from mmlesion.visualization.lesion_visualizer import score_legend
    assert score_legend(.3, [.9, .1]) == \
        'score >= 0.30: 1 of 2 drawn, max 0.90'
    assert score_legend(.3, [.12, .05]) == \
        'score >= 0.30: 0 of 2 drawn, max 0.12'
    assert score_legend(.05, [.9]) == 'score >= 0.05: 1 of 1 drawn'
    assert score_legend(.3, []) == 'score >= 0.30: 0 of 0 drawn'


def _legend_pixels(rgb: np.ndarray) -> int:
    """White text pixels in the top left corner."""
    corner = rgb[:40, :200].reshape(-1, 3)
    return int(((corner > 230).all(axis=1)).sum())


def test_threshold_is_written_on_the_picture(tmp_path, visualizer):
    """Every prediction under the threshold: no box, but the legend says
    the threshold (the demo's vis_val pictures); no predictions given: no
    legend."""
    from mmlesion.visualization.lesion_visualizer import (OverlayStyle,
                                                          draw_lesion_overlay)
    hu = np.full((192, 192), -1000., np.float32)
    rgb = window_to_rgb(hu)  # black: the white legend text stands out
    boxes, scores = [PRED_BOX, [10., 10., 30., 30.]], [.2, .1]
    drawn = draw_lesion_overlay(visualizer, rgb, None, boxes, scores,
                                OverlayStyle(.3))
    plain = draw_lesion_overlay(visualizer, rgb, None, boxes, scores,
                                OverlayStyle(.3, legend=False))
    np.testing.assert_array_equal(plain, rgb)  # nothing over the threshold
    assert _legend_pixels(drawn) > 20 and _legend_pixels(plain) == 0
    changed = np.argwhere((drawn != plain).any(axis=-1))
    assert changed[:, 0].max() < 30  # only the band at the top
    np.testing.assert_array_equal(
        draw_lesion_overlay(visualizer, rgb, None, None, None,
                            OverlayStyle(.3)), rgb)
    # the validation picture of the hook carries it too
    img_path = _ct_png(tmp_path / 'Images_png' / '000005_01_01' / '050.png')
    sample = _sample(img_path, with_raw_instances=True)
    sample.pred_instances.scores = torch.tensor([.2, .1])
    hook = LesionVisualizationHook(draw=True, interval=1, score_thr=.3)
    hook._visualizer = MagicMock(wraps=visualizer)
    hook.after_val_iter(_runner(tmp_path), 0, {}, [sample])
    _, image, _ = hook._visualizer.add_image.call_args[0]
    assert len(_green(image, _scaled(PRED_BOX))) == 0
    assert _legend_pixels(image) > 20
