# Copyright (c) mmlesion contributors. All rights reserved.
"""``draw_lesion_overlay``: pictures of lesion detections read at a glance.

Enlarged to >= 512 px, ground truth drawn above the predictions, one score
format (``0.93``) on the boxes and in the legend, a legend of both styles.
"""
import re
from unittest.mock import MagicMock

import numpy as np
import pytest
from mmdet.visualization import DetLocalVisualizer

from mmlesion.visualization.lesion_visualizer import (GT_COLOR, PRED_COLOR,
                                                      OverlayStyle,
                                                      draw_lesion_overlay,
                                                      legend_entries,
                                                      window_to_rgb)

GT_BOX = [60., 70., 120., 130.]


@pytest.fixture
def visualizer():
    # mmdet's defaults (alpha 0.8, line width 3): the colours and widths
    # must not come from the visualizer
    return DetLocalVisualizer.get_instance('test_lesion_visualizer')


def _slice(size: int = 256) -> np.ndarray:
    hu = np.full((size, size), -1000., np.float32)
    hu[20:size - 20, 20:size - 20] = 40.
    return window_to_rgb(hu)


def _is(pixels: np.ndarray, color) -> np.ndarray:
    """Pixels within 60 of ``color`` in every channel."""
    return (np.abs(pixels.astype(int) - np.array(color)) < 60).all(axis=-1)


def _left_edge(img: np.ndarray, box, scale: int = 1) -> np.ndarray:
    """A 5 px wide band along the box's left side (corners left out)."""
    x1, y1, _, y2 = (int(round(v * scale)) for v in box)
    return img[y1 + 8:y2 - 8, x1 - 2:x1 + 3]


def test_enlarged_for_display(visualizer):
    rgb = _slice(256)
    drawn = draw_lesion_overlay(visualizer, rgb, [GT_BOX], [GT_BOX], [.9],
                                OverlayStyle(.3, display_size=512))
    assert drawn.shape == (512, 512, 3) and drawn.dtype == np.uint8
    # nearest neighbour: far from the drawing the pixels are repeated
    np.testing.assert_array_equal(drawn[400:500:2, 300:500:2],
                                  rgb[200:250, 150:250])
    # the boxes follow the image: the ground truth's left side at x = 120
    assert _is(_left_edge(drawn, GT_BOX, 2), GT_COLOR).sum() >= 20
    assert not _is(_left_edge(drawn, GT_BOX, 1), GT_COLOR).any()
    # 192 px: the next integer factor, 3
    assert draw_lesion_overlay(visualizer, _slice(192), [GT_BOX],
                               style=OverlayStyle(display_size=512)
                               ).shape == (576, 576, 3)
    # default: the image's own size
    assert draw_lesion_overlay(visualizer, rgb, [GT_BOX]).shape == rgb.shape


def test_ground_truth_stays_visible_under_a_prediction(visualizer):
    """A lesion found exactly: its prediction box lies on the ground
    truth's outline; the red outline must still show (drawn last, dashed:
    the green box shows in the gaps)."""
    rgb = _slice(256)
    drawn = draw_lesion_overlay(visualizer, rgb, [GT_BOX], [GT_BOX], [.95],
                                OverlayStyle(.3))
    edge = _left_edge(drawn, GT_BOX)
    assert _is(edge, GT_COLOR).sum() >= 20
    assert _is(edge, PRED_COLOR).sum() >= 3  # the prediction in the gaps
    # a prediction alone on that spot is green, not red
    alone = draw_lesion_overlay(visualizer, rgb, None, [GT_BOX], [.95],
                                OverlayStyle(.3))
    assert not _is(_left_edge(alone, GT_BOX), GT_COLOR).any()
    assert _is(_left_edge(alone, GT_BOX), PRED_COLOR).sum() >= 20


def test_legend_names_both_styles_and_the_threshold(visualizer):
    assert legend_entries(.3, [.9, .1]) == [
        ('ground truth', 'gt'),
        ('predicted lesion, score >= 0.30: 1 of 2 drawn, max 0.90', 'pred')
    ]
    assert legend_entries(.3, [], with_gt=False) == [
        ('predicted lesion, score >= 0.30: 0 of 0 drawn', 'pred')]
    black = np.zeros((256, 256, 3), np.uint8)
    drawn = draw_lesion_overlay(visualizer, black, np.zeros((0, 4)),
                                np.zeros((0, 4)), [],
                                OverlayStyle(.3, display_size=512))
    corner = drawn[:60, :]
    rest = drawn[60:, :]
    assert (rest == 0).all()  # nothing else drawn
    # white text, a red (ground truth) and a green (prediction) swatch
    assert (corner > 230).all(axis=-1).sum() > 100
    assert _is(corner, GT_COLOR).sum() >= 10
    assert _is(corner, PRED_COLOR).sum() >= 10
    # no predictions given: no legend
    assert (draw_lesion_overlay(visualizer, black, np.zeros((0, 4)),
                                style=OverlayStyle(display_size=512)) == 0
            ).all()


def test_one_score_format_on_boxes_and_legend(visualizer):
    spy = MagicMock(wraps=visualizer)
    spy.dpi = visualizer.dpi
    boxes = [[20, 20, 60, 60], [150, 150, 200, 210], [152, 150, 202, 212]]
    draw_lesion_overlay(spy, _slice(256), [GT_BOX], boxes, [.991, .5, .3],
                        OverlayStyle(.3, display_size=512))
    texts = [t for call in spy.draw_texts.call_args_list
             for t in ([call.args[0]] if isinstance(call.args[0], str) else
                       call.args[0])]
    scores = [t for t in texts if not t.startswith(('ground', 'predicted'))]
    assert sorted(scores) == ['0.30', '0.50', '0.99']
    legend = [t for t in texts if t.startswith('predicted')]
    assert legend == ['predicted lesion, score >= 0.30: 3 of 3 drawn']
    for t in texts:  # no percentage anywhere
        assert not re.search(r'\d{2}\.\d', t), t


def test_only_the_best_scores_are_labelled(visualizer):
    spy = MagicMock(wraps=visualizer)
    spy.dpi = visualizer.dpi
    boxes = [[10 + 20 * i, 100, 25 + 20 * i, 115] for i in range(12)]
    scores = [.4 + .05 * i for i in range(12)]
    draw_lesion_overlay(spy, _slice(256), None, boxes, scores,
                        OverlayStyle(.3, display_size=512, max_labels=3))
    texts = [t for call in spy.draw_texts.call_args_list
             for t in call.args[0] if not t.startswith('predicted')]
    assert sorted(texts) == ['0.85', '0.90', '0.95']
