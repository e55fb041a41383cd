# Copyright (c) mmlesion contributors. All rights reserved.
"""The LUNA16 FROC picture: text of 10 pt or more, no overlapping labels,
for a weak run (the values sit on the tick labels) and a strong one."""
import types

import numpy as np
import pytest

from mmlesion.evaluation.functional.luna16 import LUNA16_FP_RATES
from mmlesion.visualization.luna16_froc import (luna16_froc_figure,
                                                plot_luna16_froc)
from tests.helpers.figure_text import text_problems


def _result(top: float):
    """A FROC rising to ``top`` with a bootstrap band around it."""
    fps = np.array([.05, .125, .25, .5, 1, 2, 4, 8, 10])
    sens = top * np.array([0, .1, .2, .35, .5, .7, .85, .95, 1.])
    grid = np.linspace(.125, 8, 50)
    mean = np.interp(grid, fps, sens)
    boot = types.SimpleNamespace(fps=grid, mean=mean, lower=mean * .8,
                                 upper=np.minimum(mean * 1.2, 1.),
                                 num_resamples=1000, confidence=.95)
    sens_at = np.interp(LUNA16_FP_RATES, fps, sens)
    return types.SimpleNamespace(fps=fps, sens=sens, sens_at=sens_at,
                                 cpm=float(sens_at.mean()), bootstrap=boot)


@pytest.mark.parametrize('top', [.03, .97])
def test_text_is_10_pt_or_more_and_no_two_texts_overlap(top):
    fig = luna16_froc_figure(_result(top), name='weak' if top < .5 else 'ok')
    assert text_problems(fig) == []
    values = [t.get_text() for t in fig.axes[0].texts]
    assert len(values) == len(LUNA16_FP_RATES)


def test_plot_writes_the_png(tmp_path):
    path = tmp_path / 'froc.png'
    plot_luna16_froc(_result(.5), str(path))
    assert path.read_bytes()[:4] == b'\x89PNG'
