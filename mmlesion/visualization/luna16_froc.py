# Copyright (c) mmlesion contributors. All rights reserved.
"""FROC picture in the style of the official LUNA16 evaluation script."""
from typing import Optional

import numpy as np
from mmengine.registry import FUNCTIONS

from ..evaluation.functional.luna16 import (BOOTSTRAP_FP_RANGE,
                                            LUNA16_FP_RATES, LUNA16Result,
                                            rate_key)
from mmlesion.utils.writing.atomic import atomic_save_with

from .froc_curves import froc_axes, label_froc_axes


def luna16_froc_figure(result: LUNA16Result, name: str = 'CAD',
                       title: Optional[str] = None):
    """The picture of :func:`plot_luna16_froc`, as a matplotlib ``Figure``
    (Agg canvas); the arguments are that function's."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    lo, hi = BOOTSTRAP_FP_RANGE
    fps_itp = np.linspace(lo, hi, num=10001)
    sens_itp = np.interp(fps_itp, result.fps, result.sens)
    fig, ax = froc_axes((10, 6), dpi=150)
    color = 'b'
    ax.plot(fps_itp, sens_itp, color=color, lw=2,
            label=f'{name} (CPM {result.cpm:.3f})')
    boot = result.bootstrap
    if boot is not None:
        ax.plot(boot.fps, boot.mean, color=color, ls='--',
                label=f'bootstrap mean ({boot.num_resamples} resamples)')
        ax.plot(boot.fps, boot.lower, color=color, ls=':',
                label=f'{boot.confidence:.0%} band')
        ax.plot(boot.fps, boot.upper, color=color, ls=':')
        ax.fill_between(boot.fps, boot.lower, boot.upper, facecolor=color,
                        alpha=0.05)
    ax.set_xscale('log', base=2)
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(FixedLocator(LUNA16_FP_RATES))
    ax.xaxis.set_major_formatter(
        FixedFormatter([rate_key(r) for r in LUNA16_FP_RATES]))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.set_yticks(np.arange(0, 1.1, 0.1))
    ax.grid(True, which='both')
    label_froc_axes(ax, ('Average number of false positives per scan',
                         'Sensitivity', title or f'FROC performance - {name}'),
                    LUNA16_FP_RATES, result.sens_at, ms=4)
    fig.tight_layout()
    return fig


@FUNCTIONS.register_module()
def plot_luna16_froc(result: LUNA16Result,
                     path: str,
                     name: str = 'CAD',
                     title: Optional[str] = None) -> None:
    """Save the FROC with its bootstrap band as a PNG, as
    ``noduleCADEvaluationLUNA16.py`` draws it, with the seven operating
    points and the CPM marked.

    Args:
        result (LUNA16Result): from
            :func:`mmlesion.evaluation.functional.luna16.evaluate_luna16`.
        path (str): output PNG.
        name (str): system name in the legend. Defaults to ``'CAD'``.
        title (str, optional): title; defaults to ``'FROC performance -
            {name}'`` with the CPM.
    """
    atomic_save_with(path, luna16_froc_figure(result, name, title).savefig)
