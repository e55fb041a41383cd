# Copyright (c) mmlesion contributors. All rights reserved.
"""The overview picture of a scan's findings (``overview.png``).

Coronal and axial maximum-intensity projections (MIPs) of the volume the
findings were detected in, with the best findings' boxes. Made to be read
at a glance at its natural size (``report.html`` shows it so), all sizes
in pixels:

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

:func:`draw_overview` writes it drawn straight into pixels
(:class:`~mmlesion.visualization.overview_raster.OverviewRaster`, where
its sizes, slots and shared parts are defined); :func:`overview_figure`
draws it with matplotlib, as before (0.17-0.26 CPU seconds per scan in a
batch of scans), kept for comparison: the benchmark puts it back by
:data:`AS_PIXELS`.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from .label_layout import Rect, leader_line
from .overview_raster import (BOX_LINE_PT, NUMBER_PX, OVERVIEW_SIZE_PX,
                              SCORE_CMAP, SCORE_RANGE, TEXT_PX, TITLE_PX,
                              TITLE_TOP_PX, WARNING_COLOR, WARNING_TOP_PX,
                              OverviewRaster, overview_title, panel_slots,
                              place_tags, projections, score_strip,
                              score_ticks)
from .pixel_figure import (figure_rect, font_pt, pixel_figure,
                           pixel_transform, save_png)
from .text_stamp import paste_text

#: How :func:`draw_overview` draws: True, straight into pixels
#: (:class:`~mmlesion.visualization.overview_raster.OverviewRaster`);
#: False, with matplotlib (:func:`overview_figure`, the code before, which
#: the benchmark's ``old_code`` puts back).
AS_PIXELS = True


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
    """Write ``overview.png`` of :data:`OVERVIEW_SIZE_PX`: drawn as pixels
    (:class:`~mmlesion.visualization.overview_raster.OverviewRaster`), or
    by :func:`overview_figure` where :data:`AS_PIXELS` is False.

    Args:
        volume (CTVolume): the volume the findings were detected in.
        findings (Sequence[dict]): by decreasing score.
        path (Path): PNG to write.
        window (tuple): HU display window.
        max_findings (int): the best ones drawn, numbered by rank.
        warning (str, optional): the model's warning, drawn on it.
    """
    if AS_PIXELS:
        OverviewRaster(volume, window, warning).draw(findings, path,
                                                     max_findings)
        return
    save_png(overview_figure(volume, findings, window, max_findings, warning),
             path)
