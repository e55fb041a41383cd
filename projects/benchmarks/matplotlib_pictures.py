# Copyright (c) mmlesion contributors. All rights reserved.
"""The whole-scan pictures as matplotlib drew them, for the benchmarks.

Before :class:`~mmlesion.visualization.overview_raster.OverviewRaster` and
:class:`~mmlesion.visualization.key_slice_raster.KeySliceRaster` drew the
overview and the key slices straight into pixels, matplotlib drew them:
:func:`overview_figure` is that overview (0.17-0.26 CPU seconds per scan in
a batch of scans), :func:`paste_text` the line of text drawn once and
pasted onto many figures, :func:`pixel_figure` a figure sized in pixels.
``infer_scans_changes.old_code`` puts them back to time each change; the
tests compare the pixel drawings with them.
"""
import functools
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mmlesion.visualization.label_layout import Rect, leader_line
from mmlesion.visualization.overview_raster import (
    BOX_LINE_PT, NUMBER_PX, OVERVIEW_SIZE_PX, SCORE_CMAP, SCORE_RANGE,
    TEXT_PX, TITLE_PX, TITLE_TOP_PX, WARNING_COLOR, WARNING_TOP_PX,
    overview_title, panel_slots, place_tags, projections, score_strip,
    score_ticks)
from mmlesion.visualization.pixel_drawing import PICTURE_DPI, font_pt

#: zlib level of :func:`save_png` (``old_code(png_level=True)`` sets 6,
#: matplotlib's default).
PNG_COMPRESS_LEVEL = 1


def pixel_figure(width_px: int, height_px: int, dpi: float = PICTURE_DPI):
    """A matplotlib figure of its own (no pyplot: no global state, so the
    pictures may be drawn in a thread while another scan is detected).

    Save it with ``fig.savefig(path, dpi=fig.dpi)`` to get a PNG of exactly
    ``width_px x height_px``.

    Args:
        width_px (int): width in pixels.
        height_px (int): height in pixels.
        dpi (float): dots per inch.

    Returns:
        matplotlib.figure.Figure: with an Agg canvas.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path) -> None:
    """Save a picture as a PNG of its size in pixels, at zlib's fastest
    level (``compress_level=1``: the same pixels as the default level,
    saved in 2-3x less time in a file about 12% larger).

    Args:
        fig (Figure): from :func:`pixel_figure`.
        path (str | Path): PNG to write.
    """
    fig.savefig(str(path), dpi=fig.dpi,
                pil_kwargs={'compress_level': PNG_COMPRESS_LEVEL})


def pixel_transform(fig):
    """A transform from pixels of the figure counted from its top-left
    corner (``x`` right, ``y`` down, at the figure's own dpi) to display
    coordinates: ``transform=pixel_transform(fig)`` puts an artist at
    those pixels of the saved PNG.

    Args:
        fig (Figure): from :func:`pixel_figure`.

    Returns:
        matplotlib.transforms.Transform: the transform.
    """
    from matplotlib.transforms import Affine2D
    dpi = fig.dpi
    return Affine2D().scale(1. / dpi, -1. / dpi).translate(
        0., fig.get_figheight()) + fig.dpi_scale_trans


def figure_rect(fig, x: float, y: float, w: float,
                h: float) -> Tuple[float, float, float, float]:
    """A rectangle in pixels from the top-left corner (``x``, ``y`` down)
    as matplotlib's figure fractions ``(left, bottom, width, height)``.

    Args:
        fig (Figure): the figure.
        x (float): left edge, px.
        y (float): top edge, px from the top.
        w (float): width, px.
        h (float): height, px.

    Returns:
        tuple: for ``fig.add_axes``.
    """
    width, height = fig.bbox.width, fig.bbox.height
    return (x / width, 1. - (y + h) / height, w / width, h / height)


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
        fig (Figure): from :func:`pixel_figure`, saved at its own dpi.
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


def _draw_color_scale(fig, cmap, norm, top: float) -> None:
    """The colour scale of the scores, right of the panels, named ``score``
    (a strip of the colour map with ticks: no colour-bar axes, which cost a
    sixth of the picture's time)."""
    import numpy as np
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle
    height = OVERVIEW_SIZE_PX[1]
    pixels = pixel_transform(fig)
    pt = font_pt(TEXT_PX)
    x, y1, w, y2 = score_strip(top)
    w = int(w)
    fig.text(x, top, 'score', transform=pixels, fontsize=pt, ha='left',
             va='top')
    strip = np.repeat(np.linspace(norm.vmin, norm.vmax, int(y2 - y1))[:, None],
                      w, axis=1)
    # figimage: in the pixels of the figure at its dpi (saved at it), from
    # the bottom left
    fig.figimage(strip, xo=int(x), yo=int(height - y2), cmap=cmap,
                 norm=norm, origin='lower')
    fig.add_artist(Rectangle((int(x), y1), w, y2 - y1, fill=False,
                             edgecolor='black', linewidth=.8,
                             transform=pixels))
    ticks = []
    for value, ty in score_ticks(y1, y2):
        ticks.append([(int(x) + w, ty), (int(x) + w + 4., ty)])
        fig.text(int(x) + w + 6., ty, f'{value:.2f}', transform=pixels,
                 fontsize=pt, ha='left', va='center')
    fig.add_artist(LineCollection(ticks, colors='black', linewidths=.8,
                                  transform=pixels))


def _box_pixels(ax, box: Sequence[float]) -> Rect:
    """A box in data coordinates as ``(x1, y1, x2, y2)`` in figure pixels
    from the top left."""
    a1, b1, a2, b2 = box
    to_pixels = pixel_transform(ax.figure).inverted()
    (p1, q1), (p2, q2) = to_pixels.transform(
        ax.transData.transform([(a1, b1), (a2, b2)]))
    return (min(p1, p2), min(q1, q2), max(p1, p2), max(q1, q2))


def _draw_numbers(fig, slot: Tuple[float, float, float, float],
                  boxes: List[Rect], ids: List[int], colors: list) -> None:
    """Number the boxes of one panel on tags of their colour, placed apart
    (:func:`~mmlesion.visualization.overview_raster.place_tags`), tied to
    their box by a line where placed away from it. The tags and the lines
    are one collection each (a text's own background box costs a
    millisecond a number)."""
    from matplotlib.collections import LineCollection, PolyCollection
    pixels = pixel_transform(fig)
    pt = font_pt(NUMBER_PX)
    tags, tag_colors, lines, line_colors = [], [], [], []
    for box, rect, i, color in zip(boxes, place_tags(slot, boxes, ids), ids,
                                   colors):
        if rect is None:  # no room anywhere in the panel: box unnumbered
            continue
        line = leader_line(box, rect)
        if line is not None:
            lines.append(list(line))
            line_colors.append(color)
        x1, y1, x2, y2 = rect
        tags.append([(x1, y1), (x2, y1), (x2, y2), (x1, y2)])
        tag_colors.append(color)
        fig.text((x1 + x2) / 2., (y1 + y2) / 2., str(i), transform=pixels,
                 fontsize=pt, color='black', ha='center',
                 va='center_baseline', zorder=3)
    fig.add_artist(LineCollection(lines, colors=line_colors, linewidths=1.,
                                  transform=pixels, zorder=1))
    fig.add_artist(PolyCollection(tags, facecolors=tag_colors,
                                  edgecolors='none', transform=pixels,
                                  zorder=2))


def overview_figure(volume, findings: Sequence[dict],
                    window: Tuple[float, float], max_findings: int = 20,
                    warning: Optional[str] = None):
    """The overview as a matplotlib figure (see the module doc): the code
    before :class:`~mmlesion.visualization.overview_raster.OverviewRaster`.

    Args:
        volume (CTVolume): the volume the findings were detected in.
        findings (Sequence[dict]): by decreasing score (``id``, ``score``,
            ``bbox_voxel_resampled``).
        window (tuple): HU display window.
        max_findings (int): the best ones drawn, numbered by rank.
        warning (str, optional): the model's warning (``model_warning``:
            weights trained on the synthetic demo data), drawn under the
            title.

    Returns:
        matplotlib.figure.Figure: of :data:`OVERVIEW_SIZE_PX` at its dpi.
    """
    import matplotlib
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle
    width, height = OVERVIEW_SIZE_PX
    fig = pixel_figure(width, height)
    shown = list(findings[:max_findings])
    pixels = pixel_transform(fig)
    fig.text(width / 2., TITLE_TOP_PX, overview_title(findings, len(shown)),
             transform=pixels, fontsize=font_pt(TITLE_PX), ha='center',
             va='top')
    if warning:  # the same on every scan of a run: drawn once, pasted
        stamp = paste_text(fig, f'WARNING: model {warning}', width / 2.,
                           WARNING_TOP_PX, TITLE_PX, color='white',
                           weight='bold')
        x1, x2, y1, y2 = stamp.get_extent()
        fig.add_artist(Rectangle((x1 - 5., height - y2 - 5.),
                                 x2 - x1 + 10., y2 - y1 + 10.,
                                 facecolor=WARNING_COLOR, edgecolor='none',
                                 transform=pixels))
    titles_y, slots = panel_slots(height, bool(warning))
    cmap = matplotlib.colormaps[SCORE_CMAP]
    norm = Normalize(*SCORE_RANGE)
    colors = [cmap(norm(f['score'])) for f in shown]
    ids = [int(f['id']) for f in shown]
    for slot, projection in zip(slots, projections(volume, window)):
        x, y, w, h = slot
        fig.text(x + w / 2., titles_y, projection.name, transform=pixels,
                 fontsize=font_pt(TEXT_PX), ha='center', va='top')
        ax = fig.add_axes(figure_rect(fig, x, y, w, h))
        ax.imshow(projection.image, cmap='gray', vmin=0., vmax=1.,
                  origin=projection.origin, aspect=projection.aspect)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.apply_aspect()  # the image's final place, for the numbers
        boxes = []
        for f, color in zip(shown, colors):
            a1, b1, a2, b2 = projection.box(f)
            ax.add_patch(Rectangle((a1, b1), a2 - a1, b2 - b1, fill=False,
                                   edgecolor=color, linewidth=BOX_LINE_PT))
            boxes.append(_box_pixels(ax, (a1, b1, a2, b2)))
        _draw_numbers(fig, slot, boxes, ids, colors)
    _draw_color_scale(fig, cmap, norm, titles_y)
    return fig


def draw_overview(volume, findings: Sequence[dict], path: Path,
                  window: Tuple[float, float], max_findings: int = 20,
                  warning: Optional[str] = None) -> None:
    """Write ``overview.png`` drawn by :func:`overview_figure` (the
    signature of :func:`~mmlesion.visualization.overview_raster.
    draw_overview`, which ``old_code`` replaces by it)."""
    save_png(overview_figure(volume, findings, window, max_findings, warning),
             path)
