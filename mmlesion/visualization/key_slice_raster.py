# Copyright (c) mmlesion contributors. All rights reserved.
"""A finding's key-slice picture, drawn straight into pixels.

The key slice (the RECIST one where measured) whole and magnified around
the box, with the box, the RECIST axes, a three-line title and the demo
weights' warning (about a tenth of matplotlib's CPU). Coordinates are
continuous voxel coordinates (voxel ``i`` covers ``[i - 0.5, i + 0.5]``).
"""
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.datasets.transforms.windowing import window_hu
from mmlesion.structures.ct_geometry import world_to_voxel

from .pixel_drawing import (SHIFT, WARNING_RGB, DrawnText, PanelView,
                            fit_rect, fixed, font, frame, resized_rgb,
                            save_pixels_png)
from .recist_axes import recist_labels

#: Size of a key-slice picture, pixels (width, height).
KEY_SLICE_SIZE_PX = (720, 440)
#: Height of a key-slice picture's text (title lines, RECIST legend), px.
KEY_SLICE_TEXT_PX = 13.
#: Line height of the title, in text heights (matplotlib's default).
LINE_SPACING = 1.25
#: Colours (RGB) of the box, the RECIST long and short axis (the warning's:
#: :data:`~mmlesion.visualization.pixel_drawing.WARNING_RGB`).
BOX_RGB = (0, 255, 0)
LONG_AXIS_RGB = (255, 0, 0)
SHORT_AXIS_RGB = (0, 191, 255)
#: Margin around the panels and the gap between them, px.
MARGIN_PX = 6.
GAP_FRACTION = .035


def describe_size(finding: dict) -> str:
    """A finding's sizes, each named: e.g. ``'largest box side 28.1 mm;
    RECIST long axis 11.5 mm x short axis 10.2 mm'``.

    Args:
        finding (dict): a finding of :func:`~mmlesion.apis.whole_scan.infer.
            infer_volume`.

    Returns:
        str: the sizes in words (without RECIST when it was not measured).
    """
    side = finding.get('largest_box_side_mm', finding['diameter_mm'])
    text = f'largest box side {side:.1f} mm'
    rec = finding.get('recist')
    if rec:
        text += (f"; RECIST long axis {rec['long_axis_mm']:.1f} mm x short "
                 f"axis {rec['short_axis_mm']:.1f} mm")
    return text


def box_on_slice(finding: dict, z: int):
    """The finding's 2D box and score on slice ``z`` (None, None if it has
    none there)."""
    for item in finding['boxes_2d']:
        if item['slice'] == z:
            return item['bbox'], item['score']
    return None, None


def key_slice_of(finding: dict) -> int:
    """The slice drawn: the RECIST one where it was measured."""
    rec = finding.get('recist')
    return int(rec['key_slice'] if rec else finding['key_slice'])


def scan_slice_of(finding: dict, volume, original=None) -> Optional[int]:
    """The scan's slice (index from 0, as ``slice_range_original``)
    nearest to the slice drawn: the RECIST one's ``key_slice_original``
    where measured, else the drawn slice of ``volume`` mapped through world
    coordinates onto ``original``.

    Args:
        finding (dict): a finding of ``findings.json``.
        volume (CTVolume): the volume drawn (the detector's).
        original (ScanGeometry | CTVolume, optional): the scan's grid
            (``spacing_zyx``, ``origin_xyz``, ``direction``).

    Returns:
        int | None: the slice; None without RECIST and ``original``.
    """
    rec = finding.get('recist')
    if rec:
        return int(rec['key_slice_original'])
    if original is None:
        return None
    x1, y1, x2, y2 = box_on_slice(finding, key_slice_of(finding))[0]
    centre = [[key_slice_of(finding), (y1 + y2) / 2, (x1 + x2) / 2]]
    z = world_to_voxel(volume.voxel_to_world(centre), original.spacing_zyx,
                       original.origin_xyz, original.direction)[0, 0]
    return int(np.clip(np.floor(z + .5), 0, int(original.shape_zyx[0]) - 1))


def slices_text(finding: dict) -> str:
    """The scan's slices a finding covers: ``slices 32-53 of the scan``,
    ``slice 4 of the scan``."""
    first, last = finding['slice_range_original']
    return (f'slice {first}' if first == last else
            f'slices {first}-{last}') + ' of the scan'


def title_lines(finding: dict, drawn: Optional[int] = None) -> List[str]:
    """The three lines of a key-slice picture's title, in the scan's slice
    numbers and with the finding's own score.

    Args:
        finding (dict): a finding of ``findings.json``.
        drawn (int, optional): the scan's slice drawn
            (:func:`scan_slice_of`); None: RECIST's, else not named.
    """
    rec = finding.get('recist')
    if drawn is None and rec:
        drawn = int(rec['key_slice_original'])
    x, y, zw = finding['center_world']
    where = slices_text(finding)
    if drawn is not None:
        why = ('its largest box, where RECIST is measured' if rec else
               'its best box')
        where += f'; drawn: slice {drawn} ({why})'
    return [
        f"finding {finding['id']}: score {finding['score']:.3f}, world "
        f'({x:.1f}, {y:.1f}, {zw:.1f}) mm', describe_size(finding), where]


class KeySliceRaster:
    """Draws the key slices of one scan's findings (module docstring).

    The title's place is set once per scan; :attr:`texts` names the texts
    of the last picture.

    Args:
        volume (CTVolume): the volume the findings were detected in.
        window (tuple): HU display window.
        warning (str, optional): the model's warning, drawn on every
            picture.
        original (ScanGeometry | CTVolume, optional): the scan's grid, to
            name the slice drawn by the scan's number
            (:func:`scan_slice_of`).
    """

    def __init__(self, volume, window: Tuple[float, float],
                 warning: Optional[str] = None, original=None) -> None:
        self.volume, self.window, self.warning = volume, window, warning
        self.original = original
        self.texts: List[DrawnText] = []
        width, height = KEY_SLICE_SIZE_PX
        text_px = KEY_SLICE_TEXT_PX
        lines = 4 if warning else 3
        #: the title's bottom edge; the panels start below it
        self.title_bottom = 8. + lines * LINE_SPACING * text_px - 4.
        top = self.title_bottom + 4.
        self._area = (MARGIN_PX, top, width - MARGIN_PX,
                      height - MARGIN_PX)
        self._base = np.full((height, width, 3), 255, np.uint8)

    def _cells(self) -> List[Tuple[float, float, float, float]]:
        """The two panels' cells (left, top, width, height), px."""
        left, top, right, bottom = self._area
        cell = (right - left) / (2 + GAP_FRACTION)
        return [(left, top, cell, bottom - top),
                (right - cell, top, cell, bottom - top)]

    def views(self, finding: dict) -> Tuple[PanelView, PanelView]:
        """The whole-slice panel and the magnified one of a finding."""
        rows, cols = np.shape(self.volume.array)[1:3]
        whole_cell, zoom_cell = self._cells()
        x0, y0, w, h = fit_rect(whole_cell, rows / cols)
        whole = PanelView(x0, y0, (w, h), (-.5, cols - .5), (-.5, rows - .5))
        x1, y1, x2, y2 = box_on_slice(finding, key_slice_of(finding))[0]
        half = max(x2 - x1, y2 - y1) * 1.5 + 8
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        x0, y0, w, h = fit_rect(zoom_cell, 1.)
        zoom = PanelView(x0, y0, (w, h), (cx - half, cx + half),
                         (cy - half, cy + half))
        return whole, zoom

    def render(self, finding: dict) -> np.ndarray:
        """A finding's picture.

        Args:
            finding (dict): a finding of :func:`~mmlesion.apis.whole_scan.
                infer.infer_volume`, with a 2D box on its key slice.

        Returns:
            np.ndarray: ``(height, width, 3)`` uint8 RGB.
        """
        from PIL import Image, ImageDraw
        z = key_slice_of(finding)
        box, _ = box_on_slice(finding, z)
        if box is None:
            raise ValueError(f"finding {finding.get('id')}: no 2D box on its "
                             f'key slice {z}')
        grey = np.rint(window_hu(self.volume.array[z], self.window,
                                 (0., 255.))).astype(np.uint8)
        canvas = self._base.copy()
        rec = finding.get('recist')
        labels = recist_labels(rec) if rec else []
        views = self.views(finding)
        for view, zoom in zip(views, (False, True)):
            panel = (_zoomed(grey, view) if zoom else
                     resized_rgb(grey, view.size))
            _draw_box(panel, view, box)
            if rec:
                _draw_recist(panel, view, rec)
                _legend_frame(panel, labels)
            x, y = view.left, view.top
            h, w = panel.shape[:2]
            canvas[y:y + h, x:x + w] = panel
            frame(canvas, view)
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        self.texts = []
        self._title(draw, title_lines(
            finding, scan_slice_of(finding, self.volume, self.original)))
        for view in views if rec else ():
            self._legend_text(draw, view, labels)
        return np.asarray(image)

    def draw(self, finding: dict, path: Path,
             saver: Optional[Executor] = None) -> Optional[Future]:
        """Write a finding's picture (:meth:`render`) as a PNG.

        Args:
            finding (dict): a finding of :func:`infer_volume`.
            path (Path): PNG to write.
            saver (Executor, optional): encodes and writes the PNG (a thread
                pool writes while the next pictures are drawn); None: here.

        Returns:
            Future | None: the saver's future of the written PNG (its
            ``result()`` raises a write's error), or None.
        """
        pixels = self.render(finding)
        if saver is None:
            save_pixels_png(pixels, path)
            return None
        return saver.submit(save_pixels_png, pixels, path)

    def _text(self, draw, xy, text: str, fill, anchor: str,
              bold: bool = False) -> None:
        draw.text(xy, text, fill=fill, anchor=anchor,
                  font=font(KEY_SLICE_TEXT_PX, bold))
        self.texts.append(DrawnText(text, KEY_SLICE_TEXT_PX))

    def _title(self, draw, lines: Sequence[str]) -> None:
        width = KEY_SLICE_SIZE_PX[0]
        step = LINE_SPACING * KEY_SLICE_TEXT_PX
        if self.warning:
            self._text(draw, (width / 2., 6.), f'WARNING: model '
                       f'{self.warning}', WARNING_RGB, 'mt', bold=True)
        # the last line's descent on the title's bottom edge
        last = self.title_bottom
        for i, line in enumerate(lines):
            self._text(draw, (width / 2., last - (len(lines) - 1 - i) * step),
                       line, (0, 0, 0), 'md')

    def _legend_text(self, draw, view: PanelView, labels) -> None:
        (x0, y0, _, _), rows = _legend_box(view.size, labels)
        for (_, label), (_, y) in zip(labels, rows):
            self._text(draw, (view.left + x0 + LEGEND_TEXT_X,
                              view.top + y), label, (0, 0, 0), 'lm')


#: Legend layout (px): padding, the line sample's length, the text's start
#: from the frame's left edge, the rows' height, the distance from the
#: panel's edges.
LEGEND_PAD = 5
LEGEND_SAMPLE = 26
LEGEND_TEXT_X = LEGEND_PAD + LEGEND_SAMPLE + 10
LEGEND_ROW = int(round(1.6 * KEY_SLICE_TEXT_PX))
LEGEND_INSET = 6


def _legend_box(panel_size, labels):
    """The legend's frame (x, y, w, h in the panel) and each row's line
    sample start and centre height (lower right corner, as matplotlib's
    ``loc='lower right'``)."""
    text_font = font(KEY_SLICE_TEXT_PX)
    text_w = max(text_font.getlength(label) for _, label in labels)
    w = int(np.ceil(LEGEND_TEXT_X + text_w + LEGEND_PAD))
    h = 2 * LEGEND_PAD + LEGEND_ROW * len(labels)
    x0 = panel_size[0] - LEGEND_INSET - w
    y0 = panel_size[1] - LEGEND_INSET - h
    rows = [(x0 + LEGEND_PAD, y0 + LEGEND_PAD + LEGEND_ROW * (i + .5))
            for i in range(len(labels))]
    return (x0, y0, w, h), rows


def _zoomed(grey: np.ndarray, view: PanelView) -> np.ndarray:
    """The panel's part of the slice, each panel pixel showing the voxel
    under its centre (nearest); black (air) beyond the slice."""
    w, h = view.size
    (x0, x1), (y0, y1) = view.x_range, view.y_range
    xs = np.floor(x0 + (np.arange(w) + .5) * (x1 - x0) / w + .5).astype(
        np.int64)
    ys = np.floor(y0 + (np.arange(h) + .5) * (y1 - y0) / h + .5).astype(
        np.int64)
    rows, cols = grey.shape
    inside = (ys >= 0) & (ys < rows), (xs >= 0) & (xs < cols)
    out = np.zeros((h, w), np.uint8)
    out[np.ix_(inside[0], inside[1])] = grey[np.ix_(ys[inside[0]],
                                                    xs[inside[1]])]
    return cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)


def _draw_box(panel: np.ndarray, view: PanelView, box) -> None:
    x1, y1, x2, y2 = box
    cv2.rectangle(panel, fixed(view.to_panel(x1, y1)),
                  fixed(view.to_panel(x2, y2)), BOX_RGB, 2, cv2.LINE_AA,
                  SHIFT)


def _draw_recist(panel: np.ndarray, view: PanelView, rec: dict) -> None:
    for (key, _), color in zip(recist_labels(rec),
                               (LONG_AXIS_RGB, SHORT_AXIS_RGB)):
        ends = [view.to_panel(*p) for p in rec[key]]
        cv2.line(panel, fixed(ends[0]), fixed(ends[1]), color, 2,
                 cv2.LINE_AA, SHIFT)
        for end in ends:
            _plus(panel, end, color)


def _plus(panel: np.ndarray, centre, color, half: float = 3.5) -> None:
    """A '+' marker (matplotlib's, 5 pt) at panel coordinates."""
    cx, cy = centre
    for dx, dy in ((half, 0.), (0., half)):
        cv2.line(panel, fixed((cx - dx, cy - dy)),
                 fixed((cx + dx, cy + dy)), color, 1, cv2.LINE_AA, SHIFT)


def _legend_frame(panel: np.ndarray, labels) -> None:
    """The legend's frame (white at 60 %, grey edge) and line samples."""
    (x0, y0, w, h), rows = _legend_box(panel.shape[1::-1], labels)
    x0, y0 = max(x0, 0), max(y0, 0)
    region = panel[y0:y0 + h, x0:x0 + w]
    region[:] = (region * .4 + 255 * .6).astype(np.uint8)
    cv2.rectangle(panel, (x0, y0), (x0 + w - 1, y0 + h - 1), (204, ) * 3, 1)
    for (x, y), color in zip(rows, (LONG_AXIS_RGB, SHORT_AXIS_RGB)):
        start, end = (x + .5, y + .5), (x + LEGEND_SAMPLE + .5, y + .5)
        cv2.line(panel, fixed(start), fixed(end), color, 2, cv2.LINE_AA,
                 SHIFT)
        _plus(panel, ((start[0] + end[0]) / 2, start[1]), color)
