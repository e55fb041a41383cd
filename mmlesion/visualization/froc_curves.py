# Copyright (c) mmlesion contributors. All rights reserved.
"""FROC pictures: one or more FROC curves with the operating points,
registered in mmengine's ``FUNCTIONS`` so that a metric names it
(``FROCMetric(froc_plot='plot_froc_curves')``) without importing this layer.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmengine.registry import FUNCTIONS

from mmlesion.evaluation.functional.luna16.froc import rate_key
from mmlesion.utils.writing.atomic import atomic_save_with


#: the smallest text of the pictures, points at their natural size
MIN_FONT_PT = 10


def froc_axes(figsize: Tuple[float, float], dpi: int = 100):
    """A matplotlib ``Figure`` on an Agg canvas (no pyplot state) and its
    one axes: the frame of every FROC picture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def froc_figure(curves: Dict[str, Tuple[str, object]],
                fp_rates: Sequence[float],
                operating_points: Optional[Sequence[float]] = None,
                primary: Optional[str] = 'all',
                title: str = '',
                fp_unit: str = 'image'):
    """The FROC picture of :func:`plot_froc_curves`, as a matplotlib
    ``Figure`` (Agg canvas); the arguments are that function's."""
    fig, ax = froc_axes((9, 5))
    lo, hi = min(fp_rates), max(fp_rates)
    for key, (label, curve) in curves.items():
        x, y = curve.fps_per_image, curve.sensitivity
        if len(x) == 0 or curve.num_gts == 0:
            continue
        # end of each run of equal FP values: what sens@r reads
        ends = np.append(np.flatnonzero(np.diff(x) > 0), len(x) - 1)
        x, y = x[ends], y[ends]
        if x[-1] < hi:  # hold-last
            x, y = np.append(x, hi), np.append(y, y[-1])
        bold = primary is None or key == primary
        ax.plot(
            np.maximum(x, lo / 4),
            y,
            drawstyle='steps-post',
            lw=2.0 if bold else 1.0,
            ls='-' if bold else '--',
            label=f'{label} ({curve.num_gts})')
    ax.set_xscale('log', base=2)
    ax.set_xlim(lo / 4, hi * 1.5)
    ax.set_ylim(0, 1.02)
    ax.set_xticks(fp_rates)
    ax.set_xticklabels([rate_key(r) for r in fp_rates])
    ax.grid(True, which='both', alpha=0.3)
    label_froc_axes(ax, (f'average false positives per {fp_unit}',
                         'sensitivity', title), fp_rates, operating_points)
    fig.tight_layout()
    return fig


def label_froc_axes(ax, labels: Tuple[str, str, str],
                    rates: Sequence[float] = (),
                    values: Optional[Sequence[float]] = None,
                    **marker) -> None:
    """Every text of a FROC picture at :data:`MIN_FONT_PT` points or more,
    none overlapping another: the operating points (``values`` at
    ``rates``, if any) as dots (``marker``: ``plot``'s options) with their
    values above a low point and below a high one (clear of the tick labels
    and the title), the tick and axis labels (``labels``: the x label, the
    y label and the title), the title and the legend, beside the axes
    (clear of the curves and the points)."""
    xlabel, ylabel, title = labels
    for rate, value in zip(rates, [] if values is None else values):
        low = value < 0.5
        ax.plot(rate, value, 'o', color='k', **marker)
        ax.annotate(f'{value:.3f}', (rate, value), textcoords='offset points',
                    xytext=(0, 6 if low else -8), ha='center',
                    va='bottom' if low else 'top', fontsize=MIN_FONT_PT)
    ax.tick_params(labelsize=MIN_FONT_PT)
    ax.set_xlabel(xlabel, fontsize=MIN_FONT_PT + 1)
    ax.set_ylabel(ylabel, fontsize=MIN_FONT_PT + 1)
    ax.set_title(title, fontsize=MIN_FONT_PT + 1)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1),
                  borderaxespad=0, fontsize=MIN_FONT_PT)


@FUNCTIONS.register_module()
def plot_froc_curves(curves: Dict[str, Tuple[str, object]],
                     fp_rates: Sequence[float],
                     path: str,
                     operating_points: Optional[Sequence[float]] = None,
                     primary: Optional[str] = 'all',
                     title: str = '',
                     fp_unit: str = 'image') -> None:
    """Save FROC curves as a PNG: steps through what
    :func:`mmlesion.evaluation.functional.sens_at_fp` reads, held beyond
    the last point, on a log2 FP axis.

    Args:
        curves (dict): key -> ``(label, curve)``, a
            :class:`~mmlesion.evaluation.functional.FROCCurve` (skipped
            without lesions or points).
        fp_rates (Sequence[float]): the operating FP rates (x ticks).
        path (str): output PNG.
        operating_points (Sequence[float], optional): sensitivity at each of
            ``fp_rates``, marked and annotated (of the primary curve).
        primary (str, optional): key drawn bold and solid; the others are
            thin and dashed. None: every curve solid.
        title (str): the axes title (a newline splits a long one).
        fp_unit (str): what one FP-denominator unit is (x label).
    """
    fig = froc_figure(curves, fp_rates, operating_points, primary, title,
                      fp_unit)
    atomic_save_with(path, fig.savefig)
