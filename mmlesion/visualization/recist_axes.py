# Copyright (c) mmlesion contributors. All rights reserved.
"""Draw a finding's RECIST long and short axis (matplotlib)."""
from typing import List, Optional, Tuple


def recist_labels(recist: dict) -> List[Tuple[str, str]]:
    """``(key, label)`` of a finding's ``recist`` long, then short
    axis."""
    return [('long_axis_resampled', f"long {recist['long_axis_mm']:.1f} mm"),
            ('short_axis_resampled',
             f"short {recist['short_axis_mm']:.1f} mm")]


def draw_recist_axes(ax, recist: Optional[dict], long_color: str = 'red',
                     short_color: str = 'deepskyblue',
                     fontsize: float = 10.) -> None:
    """Draw the two axes of
    :func:`~mmlesion.apis.whole_scan.measure.measure_findings` on a picture
    of the slice they were measured on (``recist['key_slice']`` of the
    resampled volume).

    Args:
        ax (matplotlib.axes.Axes): axes showing that slice in its pixels.
        recist (dict, optional): the finding's ``recist`` (None: nothing).
        long_color (str): colour of the long axis.
        short_color (str): colour of the short axis.
        fontsize (float): the legend's font size, points (the key-slice
            pictures set it to their text height:
            :data:`~mmlesion.visualization.key_slice_raster.KEY_SLICE_TEXT_PX`).
    """
    if not recist:
        return
    for (key, label), color in zip(recist_labels(recist),
                                   (long_color, short_color)):
        (x1, y1), (x2, y2) = recist[key]
        ax.plot([x1, x2], [y1, y2], color=color, linewidth=1.2,
                marker='+', markersize=5, label=label)
    ax.legend(loc='lower right', fontsize=fontsize, framealpha=.6)
