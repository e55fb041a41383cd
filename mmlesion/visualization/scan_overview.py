# Copyright (c) mmlesion contributors. All rights reserved.
"""The overview picture of a scan's findings (``overview.png``).

Coronal and axial maximum-intensity projections (MIPs) of the volume the
findings were detected in, with the best findings' boxes. Made to be read
at a glance at its natural size (``report.html`` shows it so), all sizes
in pixels (:mod:`~mmlesion.visualization.pixel_figure`):

* each box is numbered by rank (the finding's id) on a tag of the box's
  colour, :data:`NUMBER_PX` high; the tags are placed apart
  (:func:`~mmlesion.visualization.label_layout.place_labels`): in a dense
  cluster a tag goes further out, tied to its box by a line;
* the colour of a box is its score, on a fixed scale from 0 to 1 shown
  beside the projections (a colour strip named ``score``);
* a model trained on the synthetic demo data
  (:data:`~mmlesion.apis.whole_scan.model.DEMO_MODEL_WARNING`) puts its
  warning on the picture itself, in a red band under the title, as
  ``report.html`` does at its head.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from mmlesion.datasets.transforms.windowing import window_hu

from .label_layout import (Rect, leader_line, outline_bands, place_labels,
                           text_size)
from .pixel_figure import (figure_rect, font_pt, pixel_figure,
                           pixel_transform, save_png)
from .text_stamp import paste_text

#: Size of ``overview.png``, pixels.
OVERVIEW_SIZE_PX = (1000, 560)
#: Height of the box numbers, pixels (matplotlib's default 10 pt at 100 dpi
#: is 13.9 px).
NUMBER_PX = 14.
#: Height of the title and of the warning, pixels.
TITLE_PX = 16.
#: Height of the panel titles and of the colour scale's text, pixels.
TEXT_PX = 14.
#: The colour scale of the boxes: score 1 red, score 0 yellow.
SCORE_CMAP = 'autumn_r'
#: Background of the model warning.
WARNING_COLOR = '#b00000'

_MARGIN = 8.
_GAP = 12.
_SCALE_WIDTH = 84.  # the colour scale, its ticks and its name
_BOX_LINE_PT = 1.2
_TAG_PAD_PT = 1.5


def _panel_slots(height: float, warning: bool
                 ) -> Tuple[float, List[Tuple[float, float, float, float]]]:
    """The top of the panel titles and the two panels' slots ``(x, y, w,
    h)`` in pixels from the top left."""
    width = OVERVIEW_SIZE_PX[0]
    titles_y = 62. if warning else 34.
    top = titles_y + TEXT_PX + 8.
    w = (width - _SCALE_WIDTH - _MARGIN - _GAP) / 2.
    h = height - top - _MARGIN
    return titles_y, [(_MARGIN, top, w, h), (_MARGIN + w + _GAP, top, w, h)]


def _draw_color_scale(fig, cmap, norm, top: float) -> None:
    """The colour scale of the scores, right of the panels, named ``score``
    (a strip of the colour map with ticks: no colour-bar axes, which cost a
    sixth of the picture's time)."""
    import numpy as np
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle
    width, height = OVERVIEW_SIZE_PX
    pixels = pixel_transform(fig)
    pt = font_pt(TEXT_PX)
    x, w = width - _SCALE_WIDTH + 14., 14
    fig.text(x, top, 'score', transform=pixels, fontsize=pt, ha='left',
             va='top')
    y1 = top + TEXT_PX + 12.
    y2 = height - 2. * _MARGIN
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
    for value in (0., .25, .5, .75, 1.):
        ty = y2 - (y2 - y1) * (value - norm.vmin) / (norm.vmax - norm.vmin)
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
    (best first), tied to their box by a line where placed away from it.
    The tags and the lines are one collection each (a text's own
    background box costs a millisecond a number)."""
    from matplotlib.collections import LineCollection, PolyCollection
    sx, sy, sw, sh = slot
    pixels = pixel_transform(fig)
    pt = font_pt(NUMBER_PX)
    local = [(x1 - sx, y1 - sy, x2 - sx, y2 - sy) for x1, y1, x2, y2 in boxes]
    sizes = [text_size(str(i), pt, fig.dpi, _TAG_PAD_PT) for i in ids]
    line_px = _BOX_LINE_PT * fig.dpi / 72.
    bands = [b for box in local for b in outline_bands(box, line_px)]
    rects = place_labels(local, sizes, (sw, sh), prefer_out=bands, rings=8)
    tags, tag_colors, lines, line_colors = [], [], [], []
    for box, rect, i, color in zip(local, rects, ids, colors):
        if rect is None:  # no room anywhere in the panel: box unnumbered
            continue
        line = leader_line(box, rect)
        if line is not None:
            lines.append([(px + sx, py + sy) for px, py in line])
            line_colors.append(color)
        x1, y1, x2, y2 = rect[0] + sx, rect[1] + sy, rect[2] + sx, rect[3] + sy
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
    """The overview as a matplotlib figure (see the module doc).

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
    sz, sy, sx = volume.spacing_zyx
    # windowing is monotone, so the projection of the windowed volume is
    # the windowed projection (exactly): window the two projections only
    coronal = window_hu(volume.array.max(axis=1), window, (0., 1.))  # z, x
    axial = window_hu(volume.array.max(axis=0), window, (0., 1.))  # y, x
    shown = list(findings[:max_findings])
    pixels = pixel_transform(fig)
    fig.text(width / 2., 6., f'{len(findings)} findings '
             f'({len(shown)} best drawn, numbered by rank; colour: score)',
             transform=pixels, fontsize=font_pt(TITLE_PX), ha='center',
             va='top')
    if warning:  # the same on every scan of a run: drawn once, pasted
        stamp = paste_text(fig, f'WARNING: model {warning}', width / 2.,
                           36., TITLE_PX, color='white', weight='bold')
        x1, x2, y1, y2 = stamp.get_extent()
        fig.add_artist(Rectangle((x1 - 5., height - y2 - 5.),
                                 x2 - x1 + 10., y2 - y1 + 10.,
                                 facecolor=WARNING_COLOR, edgecolor='none',
                                 transform=pixels))
    titles_y, slots = _panel_slots(height, bool(warning))
    cmap = matplotlib.colormaps[SCORE_CMAP]
    norm = Normalize(0., 1.)
    colors = [cmap(norm(f['score'])) for f in shown]
    ids = [int(f['id']) for f in shown]
    # name, image, its origin and aspect, the box's sides drawn on it
    panels = (('coronal MIP (head up)', coronal, 'lower', sz / sx,
               (0, 2, 3, 5)),
              ('axial MIP', axial, 'upper', sy / sx, (0, 1, 3, 4)))
    for slot, (name, image, origin, aspect, sides) in zip(slots, panels):
        x, y, w, h = slot
        fig.text(x + w / 2., titles_y, name, transform=pixels,
                 fontsize=font_pt(TEXT_PX), ha='center', va='top')
        ax = fig.add_axes(figure_rect(fig, x, y, w, h))
        ax.imshow(image, cmap='gray', vmin=0., vmax=1., origin=origin,
                  aspect=aspect)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.apply_aspect()  # the image's final place, for the numbers
        boxes = []
        for f, color in zip(shown, colors):
            b = f['bbox_voxel_resampled']  # x1, y1, z1, x2, y2, z2
            a1, b1, a2, b2 = (b[k] for k in sides)
            ax.add_patch(Rectangle((a1, b1), a2 - a1, b2 - b1, fill=False,
                                   edgecolor=color,
                                   linewidth=_BOX_LINE_PT))
            boxes.append(_box_pixels(ax, (a1, b1, a2, b2)))
        _draw_numbers(fig, slot, boxes, ids, colors)
    _draw_color_scale(fig, cmap, norm, titles_y)
    return fig


def draw_overview(volume, findings: Sequence[dict], path: Path,
                  window: Tuple[float, float], max_findings: int = 20,
                  warning: Optional[str] = None) -> None:
    """Write ``overview.png``: :func:`overview_figure` as a PNG of
    :data:`OVERVIEW_SIZE_PX`.

    Args:
        volume (CTVolume): the volume the findings were detected in.
        findings (Sequence[dict]): by decreasing score.
        path (Path): PNG to write.
        window (tuple): HU display window.
        max_findings (int): the best ones drawn, numbered by rank.
        warning (str, optional): the model's warning, drawn on it.
    """
    save_png(overview_figure(volume, findings, window, max_findings, warning),
             path)

