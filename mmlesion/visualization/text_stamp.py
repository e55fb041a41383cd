# Copyright (c) mmlesion contributors. All rights reserved.
"""A line of text drawn once and pasted onto many pictures.

matplotlib draws text glyph by glyph (about 0.1 ms a glyph on the 2-core
test machine): the demo-weights warning (85 characters) on each of a scan's
20 key slices cost a sixth of their time. :func:`paste_text` draws a line
once per process (cached by its text, size, colour and weight) and pastes
it as an image, in the pixels of the figure (saved at its own dpi:
:mod:`~mmlesion.visualization.pixel_figure`). :func:`pasted_texts` names
what a figure had pasted (for the tests, which read a picture's texts).
"""
import functools
from typing import List, Tuple

import numpy as np

from .pixel_figure import font_pt, pixel_figure, pixel_transform

#: ``gid`` prefix of a pasted text's image (followed by its size in px).
STAMP_GID = 'text-stamp:'


@functools.lru_cache(maxsize=16)
def _rendered(text: str, px: float, color: str, weight: str) -> np.ndarray:
    """The line drawn on a transparent figure, cropped to its ink (RGBA,
    uint8, read-only)."""
    width, height = int(len(text) * px + 4 * px), int(3 * px)
    fig = pixel_figure(width, height)
    fig.patch.set_alpha(0.)
    fig.text(px, px, text, transform=pixel_transform(fig),
             fontsize=font_pt(px), color=color, weight=weight, ha='left',
             va='top')
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    ink_rows = np.flatnonzero(rgba[..., 3].any(axis=1))
    ink_cols = np.flatnonzero(rgba[..., 3].any(axis=0))
    if not len(ink_rows):
        out = np.zeros((1, 1, 4), np.uint8)
    else:
        out = rgba[ink_rows[0]:ink_rows[-1] + 1,
                   ink_cols[0]:ink_cols[-1] + 1].copy()
    out.setflags(write=False)
    return out


def paste_text(fig, text: str, x: float, y: float, px: float,
               color: str = 'black', weight: str = 'normal',
               ha: str = 'center'):
    """Paste one line of text, drawn once per process, onto a figure.

    Args:
        fig (Figure): from :func:`~mmlesion.visualization.pixel_figure.
            pixel_figure`, saved at its own dpi.
        text (str): one line.
        x (float): its left edge, centre or right edge (``ha``), pixels.
        y (float): the top of its ink, pixels from the top.
        px (float): font size, pixels.
        color (str): text colour.
        weight (str): ``'normal'`` or ``'bold'``.
        ha (str): ``'left'``, ``'center'`` or ``'right'``.

    Returns:
        matplotlib.image.FigureImage: the pasted image (``gid``
        :data:`STAMP_GID` + size, ``label`` the text).
    """
    stamp = _rendered(text, float(px), color, weight)
    h, w = stamp.shape[:2]
    left = x - {'left': 0., 'center': w / 2., 'right': float(w)}[ha]
    image = fig.figimage(stamp, xo=int(round(left)),
                         yo=int(round(fig.bbox.height - y - h)),
                         origin='upper')
    image.set_label(text)
    image.set_gid(f'{STAMP_GID}{float(px):g}')
    image.set_zorder(3)  # above a background drawn behind it
    return image


def pasted_texts(fig) -> List[Tuple[str, float]]:
    """The texts :func:`paste_text` pasted onto a figure.

    Args:
        fig (Figure): the figure.

    Returns:
        list[tuple[str, float]]: each text and its font size in pixels.
    """
    return [(im.get_label(), float(im.get_gid()[len(STAMP_GID):]))
            for im in fig.images
            if (im.get_gid() or '').startswith(STAMP_GID)]
