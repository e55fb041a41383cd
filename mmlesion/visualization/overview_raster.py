# Copyright (c) mmlesion contributors. All rights reserved.
"""A scan's overview (``overview.png``), drawn straight into pixels.

Coronal and axial maximum-intensity projections side by side, each box
numbered by rank on a tag of its colour (its score on a fixed 0 to 1
scale), placed apart from the others, and the demo weights' warning in a
red band under the title.
"""
import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.datasets.transforms.windowing import window_hu

from .label_layout import (LabelSearch, Rect, leader_line, outline_bands,
                           place_labels, text_size)
from .pixel_drawing import (PICTURE_DPI, SHIFT, WARNING_RGB, DrawnText,
                            PanelView, fit_rect, fixed, font, font_pt, frame,
                            resized_rgb, save_pixels_png)

#: Size of ``overview.png``, pixels.
OVERVIEW_SIZE_PX = (1000, 560)
#: Height of the box numbers, pixels (matplotlib's default 10 pt at 100 dpi
#: is 13.9 px).
NUMBER_PX = 14.
#: Height of the title and of the warning, pixels.
TITLE_PX = 16.
#: Height of the panel titles and of the colour scale's text, pixels.
TEXT_PX = 14.
#: The colour scale of the boxes: score 1 red, score 0 yellow, on a fixed
#: range (the same colour means the same score in every scan).
SCORE_CMAP = 'autumn_r'
SCORE_RANGE = (0., 1.)
#: Background of the model warning.
WARNING_COLOR = '#{:02x}{:02x}{:02x}'.format(*WARNING_RGB)
#: Top of the title's and of the warning's text, pixels.
TITLE_TOP_PX = 6.
WARNING_TOP_PX = 36.
#: Width of a box's outline and padding of a number's tag, points at
#: :data:`~mmlesion.visualization.pixel_drawing.PICTURE_DPI`.
BOX_LINE_PT = 1.2
TAG_PAD_PT = 1.5

_MARGIN = 8.
_GAP = 12.
_SCALE_WIDTH = 84.  # the colour scale, its ticks and its name
_BLACK = (0, 0, 0)


class PanelSlots(NamedTuple):
    """The titles' top and the coronal and the axial slot."""
    title_top: float
    slots: List[Tuple[float, float, float, float]]


def panel_slots(height: float, warning: bool
                ) -> PanelSlots:
    """The top of the panel titles and the two panels' slots ``(x, y, w,
    h)`` in pixels from the top left.

    Args:
        height (float): the picture's height, px.
        warning (bool): a warning band under the title.

    Returns:
        tuple: the titles' top and the coronal and the axial slot.
    """
    width = OVERVIEW_SIZE_PX[0]
    titles_y = 62. if warning else 34.
    top = titles_y + TEXT_PX + 8.
    w = (width - _SCALE_WIDTH - _MARGIN - _GAP) / 2.
    h = height - top - _MARGIN
    return PanelSlots(titles_y, [(_MARGIN, top, w, h),
                                 (_MARGIN + w + _GAP, top, w, h)])


@dataclass(frozen=True)
class Projection:
    """One panel's projection.

    Args:
        name (str): the panel's title.
        image (np.ndarray): the windowed MIP in [0, 1], ``(rows, cols)``
            as the volume's axes give them.
        origin (str): ``'lower'`` (row 0 at the bottom: the coronal
            projection head up) or ``'upper'``.
        aspect (float): a voxel's height over its width on the panel (the
            spacings' ratio, as ``imshow(aspect=...)``).
        sides (tuple[int, int, int, int]): the indices of the box's left,
            top, right and bottom in a finding's ``bbox_voxel_resampled``.
    """
    name: str
    image: np.ndarray
    origin: str
    aspect: float
    sides: Tuple[int, int, int, int]

    def view(self, slot: Tuple[float, float, float, float]) -> PanelView:
        """The projection fitted into a slot at its aspect, centred."""
        rows, cols = self.image.shape
        left, top, w, h = fit_rect(slot, rows * self.aspect / cols)
        y_range = (rows - .5, -.5) if self.origin == 'lower' else (-.5,
                                                                   rows - .5)
        return PanelView(left, top, (w, h), (-.5, cols - .5), y_range)

    def box(self, finding: dict) -> Tuple[float, float, float, float]:
        """A finding's box in the projection's voxels ``(a1, b1, a2, b2)``.
        """
        b = finding['bbox_voxel_resampled']
        return tuple(float(b[k]) for k in self.sides)


def projections(volume, window: Tuple[float, float]) -> List[Projection]:
    """The coronal (head up) and the axial MIP of a volume, windowed
    (windowing is monotone: windowing the projections is exact).

    Args:
        volume (CTVolume): the volume the findings were detected in.
        window (tuple): HU display window.

    Returns:
        list[Projection]: coronal, axial.
    """
    sz, sy, sx = volume.spacing_zyx
    coronal = window_hu(volume.array.max(axis=1), window, (0., 1.))  # z, x
    axial = window_hu(volume.array.max(axis=0), window, (0., 1.))  # y, x
    return [Projection('coronal MIP (head up)', coronal, 'lower', sz / sx,
                       (0, 2, 3, 5)),
            Projection('axial MIP', axial, 'upper', sy / sx, (0, 1, 3, 4))]


#: The coronal panel's least height, as a fraction of its slot: a thin
#: series (20 slices of 2 mm across 400 mm) is stretched along z to it.
MIN_HEIGHT_FRACTION = 1 / 3


#: The end of a stretched panel's title: its numbers only next to their
#: boxes (:func:`place_tags`).
STRETCHED = '; numbers where room)'


def at_least_min_height(projection: Projection,
                        slot: Tuple[float, float, float, float]
                        ) -> Projection:
    """A projection stretched along its rows so that it fills at least
    :data:`MIN_HEIGHT_FRACTION` of its slot's height, its title saying by
    how much; as it is where it does already.

    Args:
        projection (Projection): the coronal (or any) projection.
        slot (tuple): its slot ``(x, y, w, h)``.

    Returns:
        Projection: the projection to draw.
    """
    rows, cols = projection.image.shape
    _, _, w, h = slot
    height = min(h, w * rows * projection.aspect / cols)
    stretch = MIN_HEIGHT_FRACTION * h / height
    if stretch <= 1.:
        return projection
    return replace(projection, aspect=projection.aspect * stretch,
                   name=projection.name[:-1] + f', z stretched x{stretch:.1f}'
                   + STRETCHED)


def overview_title(findings: Sequence[dict], shown: int) -> str:
    """The overview's title line."""
    return (f'{len(findings)} findings ({shown} best drawn, numbered by '
            'rank; colour: score)')


def place_tags(slot: Tuple[float, float, float, float],
               boxes: Sequence[Rect], ids: Sequence[int],
               near_only: bool = False) -> List[Optional[Rect]]:
    """The number tags of one panel's boxes, placed apart in its slot, best
    first (:func:`~mmlesion.visualization.label_layout.place_labels`).

    Args:
        slot (tuple): the panel's slot ``(x, y, w, h)``.
        boxes (Sequence[Rect]): the boxes in pixels of the picture.
        ids (Sequence[int]): their numbers.
        near_only (bool): a tag only next to its box, none where that has
            no room (a stretched thin series' coronal panel: its crowded
            boxes are numbered on the axial one).

    Returns:
        list[Rect | None]: each tag in pixels of the picture; None where no
        room was left in the slot (the box drawn unnumbered).
    """
    sx, sy, sw, sh = slot
    local = [(x1 - sx, y1 - sy, x2 - sx, y2 - sy) for x1, y1, x2, y2 in boxes]
    sizes = [text_size(str(i), font_pt(NUMBER_PX), PICTURE_DPI, TAG_PAD_PT)
             for i in ids]
    line_px = BOX_LINE_PT * PICTURE_DPI / 72.
    bands = [b for box in local for b in outline_bands(box, line_px)]
    rects = place_labels(local, sizes, (sw, sh), prefer_out=bands,
                         search=LabelSearch(rings=8, near_only=near_only))
    return [None if r is None else
            (r[0] + sx, r[1] + sy, r[2] + sx, r[3] + sy) for r in rects]


def score_strip(top: float) -> Tuple[float, float, float, float]:
    """The colour scale's strip right of the panels: ``(x, y1, w, y2)``,
    its name ``score`` at ``top`` above it."""
    width, height = OVERVIEW_SIZE_PX
    return width - _SCALE_WIDTH + 14., top + TEXT_PX + 12., 14., \
        height - 2. * _MARGIN


def score_ticks(y1: float, y2: float) -> List[Tuple[float, float]]:
    """The colour scale's ticks: ``(score, y)``, 0 at the bottom ``y2``."""
    lo, hi = SCORE_RANGE
    return [(value, y2 - (y2 - y1) * (value - lo) / (hi - lo))
            for value in (0., .25, .5, .75, 1.)]


def score_colors(scores: Sequence[float]) -> np.ndarray:
    """Scores' ``(n, 3)`` uint8 RGB colours on :data:`SCORE_CMAP` over
    :data:`SCORE_RANGE` (matplotlib's, as 8-bit values)."""
    import matplotlib
    lo, hi = SCORE_RANGE
    values = (np.asarray(scores, np.float64) - lo) / (hi - lo)
    return matplotlib.colormaps[SCORE_CMAP](values, bytes=True)[..., :3]


@dataclass(frozen=True)
class OverviewPanel:
    """A panel of the last overview and what is drawn on it.

    Args:
        view (PanelView): the projection's place and extent.
        boxes (list[Rect]): each finding's box in pixels of the picture.
        tags (list[Rect | None]): its number's tag (None: unnumbered).
        ids (list[int]): the findings' numbers (ranks).
        colors (np.ndarray): ``(n, 3)`` uint8, their scores' colours.
    """
    view: PanelView
    boxes: List[Rect]
    tags: List[Optional[Rect]]
    ids: List[int]
    colors: np.ndarray


class OverviewRaster:
    """Draws a scan's overview (module docstring).

    :attr:`texts` and :attr:`panels` describe the last picture's texts and
    panels; :attr:`scale` is the colour strip's place (score 1 at its top).

    Args:
        volume (CTVolume): the volume the findings were detected in.
        window (tuple): HU display window.
        warning (str, optional): the model's warning (``model_warning``:
            weights trained on the synthetic demo data), drawn under the
            title.
    """

    def __init__(self, volume, window: Tuple[float, float],
                 warning: Optional[str] = None) -> None:
        self.volume, self.window, self.warning = volume, window, warning
        self.texts: List[DrawnText] = []
        self.panels: List[OverviewPanel] = []
        self.titles_y, self.slots = panel_slots(OVERVIEW_SIZE_PX[1],
                                                bool(warning))
        x, y1, w, y2 = score_strip(self.titles_y)
        rows = int(y2 - y1)
        self.scale = PanelView(int(x), int(round(y2)) - rows, (int(w), rows),
                               (0., 1.), SCORE_RANGE[::-1])

    def render(self, findings: Sequence[dict],
               max_findings: int = 20) -> np.ndarray:
        """The overview of a scan's findings.

        Args:
            findings (Sequence[dict]): by decreasing score (``id``,
                ``score``, ``bbox_voxel_resampled``).
            max_findings (int): the best ones drawn, numbered by rank.

        Returns:
            np.ndarray: ``(height, width, 3)`` uint8 RGB of
            :data:`OVERVIEW_SIZE_PX`.
        """
        from PIL import Image, ImageDraw
        width, height = OVERVIEW_SIZE_PX
        shown = list(findings[:max_findings])
        ids = [int(f['id']) for f in shown]
        colors = score_colors([f['score'] for f in shown])
        canvas = np.full((height, width, 3), 255, np.uint8)
        self.panels = []
        projected = projections(self.volume, self.window)
        projected[0] = at_least_min_height(projected[0], self.slots[0])
        for slot, projection in zip(self.slots, projected):
            view = projection.view(slot)
            boxes = _draw_panel(canvas, view, projection, shown, colors)
            tags = place_tags(slot, boxes, ids, near_only=projection.name
                              .endswith(STRETCHED))
            self.panels.append(OverviewPanel(view, boxes, tags, ids, colors))
        _draw_tags(canvas, self.panels)
        _draw_strip(canvas, self.scale)
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        self.texts = []
        self._text(draw, (width / 2., TITLE_TOP_PX),
                   overview_title(findings, len(shown)), TITLE_PX)
        if self.warning:
            self._warning(draw, f'WARNING: model {self.warning}')
        for (x, _, w, _), projection in zip(self.slots, projected):
            self._text(draw, (x + w / 2., self.titles_y), projection.name,
                       TEXT_PX)
        for panel in self.panels:
            for rect, i in zip(panel.tags, panel.ids):
                if rect is not None:
                    self._text(draw, ((rect[0] + rect[2]) / 2.,
                                      (rect[1] + rect[3]) / 2.), str(i),
                               NUMBER_PX, va='center_baseline')
        self._scale_texts(draw)
        return np.asarray(image)

    def draw(self, findings: Sequence[dict], path: Path,
             max_findings: int = 20) -> None:
        """Write the overview (:meth:`render`) as a PNG.

        Args:
            findings (Sequence[dict]): by decreasing score.
            path (Path): PNG to write.
            max_findings (int): the best ones drawn, numbered by rank.
        """
        save_pixels_png(self.render(findings, max_findings), path)

    def _text(self, draw, xy: Tuple[float, float], text: str, px: float,
              ha: str = 'center', va: str = 'top') -> None:
        """A line of text aligned as matplotlib aligns it (``ha``:
        ``'left'`` or ``'center'``; ``va``: ``'top'``, ``'center'`` or
        ``'center_baseline'``)."""
        text_font = font(px)
        x, y = xy
        ascent, descent = _line_metrics(text_font, text)
        baseline = {'top': y + ascent,
                    'center': y + (ascent - descent) / 2.,
                    'center_baseline': y + ascent / 2.}[va]
        draw.text((x, baseline), text, fill=_BLACK, font=text_font,
                  anchor='ls' if ha == 'left' else 'ms')
        advance = text_font.getlength(text)
        left = x if ha == 'left' else x - advance / 2.
        self.texts.append(DrawnText(text, px, (left, baseline - ascent,
                                               left + advance,
                                               baseline + descent)))

    def _warning(self, draw, text: str) -> None:
        """The warning in white bold, its ink's top at
        :data:`WARNING_TOP_PX`, on a red band 5 px beyond its ink."""
        bold = font(TITLE_PX, bold=True)
        xy = (OVERVIEW_SIZE_PX[0] / 2., WARNING_TOP_PX)
        x1, y1, x2, y2 = draw.textbbox(xy, text, font=bold, anchor='mt')
        draw.rectangle((x1 - 5, y1 - 5, x2 + 4, y2 + 4), fill=WARNING_RGB)
        draw.text(xy, text, fill=(255, 255, 255), font=bold, anchor='mt')
        self.texts.append(DrawnText(text, TITLE_PX, (x1, y1, x2, y2)))

    def _scale_texts(self, draw) -> None:
        """The colour scale's name and tick labels."""
        view = self.scale
        x, y1, w, y2 = score_strip(self.titles_y)
        self._text(draw, (x, self.titles_y), 'score', TEXT_PX, ha='left')
        for value, y in score_ticks(y1, y2):
            self._text(draw, (view.left + view.size[0] + 6., y),
                       f'{value:.2f}', TEXT_PX, ha='left', va='center')


def draw_overview(volume, findings: Sequence[dict], path: Path,
                  window: Tuple[float, float], max_findings: int = 20,
                  warning: Optional[str] = None) -> None:
    """Write ``overview.png`` of :data:`OVERVIEW_SIZE_PX`.

    Args:
        volume (CTVolume): the volume the findings were detected in.
        findings (Sequence[dict]): by decreasing score.
        path (Path): PNG to write.
        window (tuple): HU display window.
        max_findings (int): the best ones drawn, numbered by rank.
        warning (str, optional): the model's warning, drawn on it.
    """
    OverviewRaster(volume, window, warning).draw(findings, path, max_findings)


def _line_metrics(text_font, text: str) -> Tuple[float, float]:
    """A line's ascent and descent as matplotlib lays a text out: the
    text's ink, at least that of ``'lp'``."""
    _, top, _, bottom = text_font.getbbox(text, anchor='ls')
    _, lp_top, _, lp_bottom = _lp_box(text_font)
    descent = max(bottom, lp_bottom)
    return max(bottom - top, lp_bottom - lp_top) - descent, descent


@functools.lru_cache(maxsize=8)
def _lp_box(text_font) -> Tuple[int, int, int, int]:
    """The ink of ``'lp'`` from its baseline (matplotlib's least line)."""
    return text_font.getbbox('lp', anchor='ls')


def _draw_panel(canvas: np.ndarray, view: PanelView, projection: Projection,
                shown: Sequence[dict], colors: np.ndarray) -> List[Rect]:
    """A projection resized into its panel with the findings' boxes
    (clipped to the panel, best first, so the others over it; 1 px lines,
    anti-aliased: about 1.4 px wide, matplotlib's :data:`BOX_LINE_PT` are
    1.7 px), and the panel's frame; returns the boxes in pixels of the
    picture."""
    grey = np.rint(projection.image * 255.).astype(np.uint8)
    if projection.origin == 'lower':
        grey = grey[::-1]
    panel = resized_rgb(grey, view.size)
    boxes = []
    for finding, color in zip(shown, colors):
        a1, b1, a2, b2 = projection.box(finding)
        (p1, q1), (p2, q2) = view.to_panel(a1, b1), view.to_panel(a2, b2)
        cv2.rectangle(panel, fixed((p1, q1)), fixed((p2, q2)),
                      tuple(int(c) for c in color), 1, cv2.LINE_AA,
                      SHIFT)
        boxes.append((view.left + min(p1, p2), view.top + min(q1, q2),
                      view.left + max(p1, p2), view.top + max(q1, q2)))
    w, h = view.size
    canvas[view.top:view.top + h, view.left:view.left + w] = panel
    frame(canvas, view)
    return boxes


def _draw_tags(canvas: np.ndarray, panels: Sequence[OverviewPanel]) -> None:
    """Over the panels, as in matplotlib's figure: the lines from the boxes
    to their tags placed away from them (1 px, anti-aliased), then the
    tags (filled in their boxes' colours, in whole pixels)."""
    for panel in panels:
        for box, rect, color in zip(panel.boxes, panel.tags, panel.colors):
            line = None if rect is None else leader_line(box, rect)
            if line is not None:
                cv2.line(canvas, fixed(line[0]), fixed(line[1]),
                         tuple(int(c) for c in color), 1, cv2.LINE_AA,
                         SHIFT)
    for panel in panels:
        for rect, color in zip(panel.tags, panel.colors):
            if rect is not None:
                x1, y1, x2, y2 = (int(round(v)) for v in rect)
                canvas[y1:y2, x1:x2] = color


def _draw_strip(canvas: np.ndarray, view: PanelView) -> None:
    """The colour scale's strip (score 1 on its top row, 0 on its bottom
    row, as matplotlib's ``figimage`` of the scores), its frame and its
    ticks (1 px, on the rows of the ticks' heights)."""
    (w, h), x, y = view.size, view.left, view.top
    lo, hi = SCORE_RANGE
    canvas[y:y + h, x:x + w] = score_colors(np.linspace(hi, lo, h))[:, None]
    frame(canvas, view)
    for _, ty in score_ticks(y, y + h):
        canvas[int(ty), x + w:x + w + 5] = _BLACK
