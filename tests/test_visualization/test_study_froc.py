# Copyright (c) mmlesion contributors. All rights reserved.
"""The study's FROC picture: every row told apart, nothing hidden."""
import os

from mmlesion.visualization.study_froc import (plot_study_froc, row_style,
                                               study_froc_figure)

RATES = (0.5, 1, 2, 4, 8)


def _curves(n):
    return {
        f'row {i}': ([0.1 + 0.02 * i + 0.05 * k for k in range(5)],
                     [0.02] * 5 if i % 2 else [None] * 5)
        for i in range(n)
    }


def test_every_row_drawn_differently():
    styles = [tuple(sorted(row_style(i).items())) for i in range(30)]
    assert len(set(styles)) == 30
    assert row_style(0)['color'] == row_style(10)['color']  # colour cycle
    assert row_style(0)['linestyle'] != row_style(10)['linestyle']


def test_figure_with_more_rows_than_colours():
    fig = study_froc_figure(_curves(12), RATES, title='t')
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 12
    drawn = {(line.get_color(), line.get_linestyle(), line.get_marker())
             for line in lines}
    assert len(drawn) == 12
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == list(_curves(12))
    # the legend is right of the axes: it covers no curve
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= \
        ax.get_window_extent(renderer).x1
    # highest mean + std is 0.32 + 0.2 + 0.02: the axis ends at 0.7
    low, high = ax.get_ylim()
    assert low == 0 and abs(high - 0.7) < 1e-9


def test_axis_capped_and_gaps(tmp_path):
    curves = {'high': ([0.9, 0.95, None, 1.0, 1.0], [0.05] * 5)}
    fig = study_froc_figure(curves, RATES)
    assert fig.axes[0].get_ylim()[1] == 1.02
    path = tmp_path / 'froc.png'
    plot_study_froc(curves, RATES, str(path))
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert os.listdir(tmp_path) == ['froc.png']  # no temporary left
