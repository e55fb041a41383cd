# Copyright (c) mmlesion contributors. All rights reserved.
"""One FROC picture with every row of a study (mean ± std over seeds)."""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

Curve = Tuple[Sequence[Optional[float]], Sequence[Optional[float]]]


def plot_study_froc(curves: Dict[str, Curve],
                    fp_rates: Sequence[float],
                    path: str,
                    title: str = '',
                    fp_unit: str = 'image') -> None:
    """Save the rows' sensitivities at the FP rates as one PNG.

    Each row is a line through its mean sensitivity at the operating points
    with a ±std band (none with one seed) on a log2 FP axis; a missing value
    (None / NaN) leaves a gap.

    Args:
        curves (dict): row label -> ``(means, stds)``, one value per rate
            (fractions; std None where there is one seed).
        fp_rates (Sequence[float]): the FP rates.
        path (str): output PNG.
        title (str): the axes title.
        fp_unit (str): what one FP-denominator unit is (x label).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.asarray(fp_rates, dtype=np.float64)
    for label, (means, stds) in curves.items():
        y = np.array([np.nan if v is None else v for v in means], float)
        s = np.array([np.nan if v is None else v for v in stds], float)
        line, = ax.plot(x, y, 'o-', lw=1.5, label=label)
        if np.isfinite(s).any():
            ax.fill_between(
                x, y - s, y + s, color=line.get_color(), alpha=0.15, lw=0)
    ax.set_xscale('log', base=2)
    ax.set_xticks(x)
    ax.set_xticklabels([f'{r:g}' for r in fp_rates])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f'average false positives per {fp_unit}')
    ax.set_ylabel('sensitivity')
    ax.set_title(title, fontsize=9)
    ax.grid(True, which='both', alpha=0.3)
    if curves:
        ax.legend(loc='lower right', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format='png')
