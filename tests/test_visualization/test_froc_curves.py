# Copyright (c) mmlesion contributors. All rights reserved.
"""The FROC picture: readable text, no overlapping labels, its data named."""
import types

import numpy as np
import pytest

from mmlesion.visualization.froc_curves import froc_figure, plot_froc_curves
from tests.helpers.figure_text import text_problems

RATES = (0.5, 1, 2, 4, 8, 16)
TITLE = ('test split: data/demo_deeplesion/DL_info.csv\n'
         'FROC, DeepLesion 2D official, IOU >= 0.5; mean@0.5-4 = 0.0062')


def _curve(sens, num_gts=81):
    fps = np.array([0.1, 0.5, 1, 2, 4, 8, 16, 20], float)
    return types.SimpleNamespace(fps_per_image=fps,
                                 sensitivity=np.asarray(sens, float),
                                 num_gts=num_gts)


@pytest.mark.parametrize('level', ['weak', 'strong'])
def test_text_is_10_pt_or_more_and_no_two_texts_overlap(level):
    """A weak run (every sensitivity near 0: the operating points' values
    sit on the tick labels and the legend) and a strong one."""
    if level == 'weak':
        sens = [0, 0, 0, .0123, .0123, .0247, .0494, .05]
    else:
        sens = [.5, .7, .8, .85, .9, .93, .95, .96]
    curves = {'all': ('all lesions', _curve(sens)),
              'size_small': ('< 10 mm', _curve(np.array(sens) * .9, 30)),
              'size_large': ('> 30 mm', _curve(np.array(sens) * .5, 9))}
    points = [float(np.interp(r, _curve(sens).fps_per_image, sens))
              for r in RATES]
    fig = froc_figure(curves, RATES, operating_points=points, title=TITLE)
    assert text_problems(fig) == []
    assert TITLE in [t.get_text() for t in fig.axes[0].texts +
                     [fig.axes[0].title]]


def test_the_check_sees_small_and_overlapping_text():
    """The check itself can fail: 8-pt labels on the tick labels."""
    fig = froc_figure({'all': ('all', _curve([0] * 8))}, RATES)
    ax = fig.axes[0]
    ax.annotate('0.000', (1, 0), textcoords='offset points',
                xytext=(0, -14), ha='center', fontsize=8)
    problems = text_problems(fig)
    assert any('8 pt' in p for p in problems)
    assert any('overlaps' in p for p in problems)


def test_plot_writes_the_png(tmp_path):
    path = tmp_path / 'froc_curve.png'
    plot_froc_curves({'all': ('all', _curve([.1] * 8))}, RATES, str(path),
                     title=TITLE)
    assert path.read_bytes()[:4] == b'\x89PNG'
