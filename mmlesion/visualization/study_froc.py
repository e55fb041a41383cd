# Copyright (c) mmlesion contributors. All rights reserved.
"""One FROC picture with every row of a study (mean ± std over seeds)."""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from mmlesion.utils.writing.atomic import atomic_save_with
from .froc_curves import froc_axes, label_froc_axes

Curve = Tuple[Sequence[Optional[float]], Sequence[Optional[float]]]

#: line styles and markers cycled together with the 10 colours of
#: matplotlib's default cycle: up to 30 rows without two lines alike.
_STYLES: Tuple[Tuple[str, str], ...] = (('-', 'o'), ('--', 's'), (':', '^'))


def row_style(index: int) -> Dict[str, str]:
    """``color``, ``linestyle`` and ``marker`` (for ``ax.plot``) of the
    study's ``index``-th row: no two of up to 30 rows alike."""
    ls, marker = _STYLES[(index // 10) % len(_STYLES)]
    return dict(color=f'C{index % 10}', linestyle=ls, marker=marker)


def study_froc_figure(curves: Dict[str, Curve],
                      fp_rates: Sequence[float],
                      title: str = '',
                      fp_unit: str = 'image'):
    """The figure :func:`plot_study_froc` saves (legend right of the axes;
    the sensitivity axis ends 0.1 above the highest band, at most 1.02).

    Args:
        curves (dict): row label -> ``(means, stds)``, as
            :func:`plot_study_froc`.
        fp_rates (Sequence[float]): the FP rates.
        title (str): the axes title.
        fp_unit (str): what one FP-denominator unit is (x label).

    Returns:
        matplotlib.figure.Figure: the drawn figure (Agg canvas).
    """
    fig, ax = froc_axes((10, 5))
    x = np.asarray(fp_rates, dtype=np.float64)
    top = 0.
    for index, (label, (means, stds)) in enumerate(curves.items()):
        y = np.array([np.nan if v is None else v for v in means], float)
        s = np.array([np.nan if v is None else v for v in stds], float)
        line, = ax.plot(x, y, lw=1.5, label=label, **row_style(index))
        if np.isfinite(y).any():
            top = max(top, float(np.nanmax(y + np.nan_to_num(s))))
        if np.isfinite(s).any():
            ax.fill_between(
                x, y - s, y + s, color=line.get_color(), alpha=0.12, lw=0)
    ax.set_xscale('log', base=2)
    ax.set_xticks(x)
    ax.set_xticklabels([f'{r:g}' for r in fp_rates])
    ax.set_ylim(0, min(1.02, np.ceil((top + 0.1) * 10) / 10))
    ax.grid(True, which='both', alpha=0.3)
    label_froc_axes(ax, (f'average false positives per {fp_unit}',
                         'sensitivity', title))
    fig.tight_layout()
    return fig


def plot_study_froc(curves: Dict[str, Curve],
                    fp_rates: Sequence[float],
                    path: str,
                    title: str = '',
                    fp_unit: str = 'image') -> None:
    """Save the rows' mean sensitivities at the FP rates, ±std bands, as
    one PNG (a missing value leaves a gap).

    Args:
        curves (dict): row label -> ``(means, stds)``, one value per rate
            (fractions; std None where there is one seed).
        fp_rates (Sequence[float]): the FP rates.
        path (str): output PNG.
        title (str): the axes title.
        fp_unit (str): what one FP-denominator unit is (x label).
    """
    fig = study_froc_figure(curves, fp_rates, title=title, fp_unit=fp_unit)
    atomic_save_with(path, lambda p: fig.savefig(p, format='png'))
