# Copyright (c) mmlesion contributors. All rights reserved.
"""Score format, display scale and label placement of the lesion pictures:
pure functions (no drawing, no torch) behind
:func:`mmlesion.visualization.lesion_visualizer.draw_lesion_overlay` and the
whole-scan pictures.
"""
import math
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

#: ``(x1, y1, x2, y2)`` in output pixels.
Rect = Tuple[float, float, float, float]

#: Advance widths (em) of matplotlib's default DejaVu Sans, rounded up:
#: narrow punctuation and blanks; every other character counts as wide.
_NARROW = {'.': .33, ',': .33, ':': .34, ' ': .33, 'i': .28, 'l': .28,
           '(': .4, ')': .4, '/': .34, '-': .37, 't': .4, 'r': .42}
_WIDE = .66
#: Height of one text line (ascender + descender of DejaVu Sans), em.
_LINE = 1.17


def format_score(score: float) -> str:
    """A detection score in [0, 1] as written on the pictures, boxes and
    legends alike: two decimals, e.g. ``'0.93'``."""
    return f'{float(score):.2f}'


def display_scale(shape: Sequence[int], min_size: int) -> int:
    """The smallest integer factor ``k >= 1`` that makes the short side of
    an image of ``shape`` (height, width, ...) at least ``min_size``."""
    short = max(1, min(int(shape[0]), int(shape[1])))
    return max(1, int(math.ceil(min_size / short)))


def text_size(text: str, font_pt: float, dpi: float = 100.,
              pad_pt: float = 1.5) -> Tuple[float, float]:
    """Width and height in pixels of a one-line label with its background
    (DejaVu Sans' advance widths rounded up: labels said apart are apart).

    Args:
        text (str): the label.
        font_pt (float): font size in points.
        dpi (float): pixels per inch of the drawing (matplotlib's 100).
        pad_pt (float): padding of the background box on every side,
            points.

    Returns:
        tuple[float, float]: ``(width, height)`` in pixels.
    """
    ems = sum(_NARROW.get(ch, _WIDE) for ch in text)
    px = dpi / 72.
    return ((ems * font_pt + 2 * pad_pt) * px,
            (_LINE * font_pt + 2 * pad_pt) * px)


def overlaps(a: Rect, b: Rect) -> bool:
    """Whether two ``(x1, y1, x2, y2)`` rectangles share an inner point
    (touching is apart)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def outline_bands(box: Sequence[float], width: float) -> List[Rect]:
    """The four sides of a box's outline as thin rectangles.

    Args:
        box (Sequence[float]): ``(x1, y1, x2, y2)``.
        width (float): the outline's width in pixels.

    Returns:
        list[Rect]: top, bottom, left and right band.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    h = width / 2. + 1.
    return [(x1 - h, y1 - h, x2 + h, y1 + h), (x1 - h, y2 - h, x2 + h, y2 + h),
            (x1 - h, y1 - h, x1 + h, y2 + h), (x2 - h, y1 - h, x2 + h, y2 + h)]


def _candidates(box: Sequence[float], w: float, h: float,
                gap: float) -> Tuple[List[Tuple[float, float]],
                                     List[Tuple[float, float]]]:
    """Top-left corners to try: next to the box, then stacked further out.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    near = [(x1, y1 - h - gap), (x1, y2 + gap), (x2 - w, y1 - h - gap),
            (x2 - w, y2 + gap), (x2 + gap, y1), (x1 - w - gap, y1),
            (x2 + gap, y2 - h), (x1 - w - gap, y2 - h)]
    far = []
    for k in range(1, 4):
        step = k * (h + gap)
        far += [(x1, y1 - h - gap - step), (x1, y2 + gap + step)]
    return near, far


def _ring_candidates(box: Sequence[float], w: float, h: float, gap: float,
                     rings: int) -> List[Tuple[float, float]]:
    """Top-left corners all around the box, ring after ring outwards (ring
    ``k`` keeps ``k - 1`` label heights between box and label), nearest
    to the box's centre first within a ring."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2., (y1 + y2) / 2.
    out: List[Tuple[float, float]] = []
    for k in range(1, rings + 1):
        e = gap + (k - 1) * (h + gap)
        rx1, ry1, rx2, ry2 = x1 - e, y1 - e, x2 + e, y2 + e
        xs = _steps(rx1 - w, rx2, (w + gap) / 2.)
        ys = _steps(ry1, ry2 - h, (h + gap) / 2.)
        spots = ([(x, ry1 - h) for x in xs] + [(x, ry2) for x in xs] +
                 [(rx1 - w, y) for y in ys] + [(rx2, y) for y in ys])
        spots.sort(key=lambda p: (p[0] + w / 2. - cx)**2 +
                   (p[1] + h / 2. - cy)**2)
        out += spots
    return out


def _steps(start: float, stop: float, step: float) -> List[float]:
    """``start``, ``start + step``, ... up to ``stop`` (``stop`` included).
    """
    if stop <= start:
        return [start]
    n = int(math.ceil((stop - start) / step))
    return [start + (stop - start) * i / n for i in range(n + 1)]


def _tries(box: Sequence[float], w: float, h: float, gap: float,
           rings: int, strict: List[Rect], loose: List[Rect],
           near_only: bool = False
           ) -> Iterator[Tuple[List[Tuple[float, float]], List[Rect]]]:
    """The spots to try for a label and what each must miss, in order;
    the rings' spots (most of the work) made only when reached."""
    near, far = _candidates(box, w, h, gap)
    yield from ((near, strict), (near, loose))
    if near_only:
        return
    yield from ((far, strict), (far, loose))
    if rings > 0:
        ring = _ring_candidates(box, w, h, gap, rings)
        yield from ((ring, strict), (ring, loose))


@dataclass(frozen=True)
class LabelSearch:
    """Where :func:`place_labels` looks for a label's spot.

    Args:
        gap (float): pixels between a box and its label.
        rings (int): rings of spots all around the box tried last (0: none;
            a crowded cluster of boxes needs a few).
        near_only (bool): only the spots next to the box (no label tied to
            its box by a line): a label with no free spot there is left
            out.
    """
    gap: float = 3.
    rings: int = 0
    near_only: bool = False


def place_labels(boxes: Sequence[Sequence[float]],
                 sizes: Sequence[Tuple[float, float]],
                 image_size: Tuple[int, int],
                 keep_out: Sequence[Rect] = (),
                 prefer_out: Sequence[Rect] = (),
                 search: LabelSearch = LabelSearch()
                 ) -> List[Optional[Rect]]:
    """Place one label per box, greedily, in the given order: at the
    first spot next to its box, else further out, then (``search.rings``)
    all around it, where it overlaps no placed label and nothing in
    ``keep_out`` (nor, if it can, ``prefer_out``).

    Args:
        boxes (Sequence): ``(x1, y1, x2, y2)`` per label, most important
            first (highest score).
        sizes (Sequence[tuple[float, float]]): ``(width, height)`` per label
            (:func:`text_size`).
        image_size (tuple[int, int]): ``(width, height)`` of the picture.
        keep_out (Sequence[Rect]): areas no label may cover (the legend).
        prefer_out (Sequence[Rect]): areas a label covers only if it has to.
        search (LabelSearch): the gap, the rings and whether only the
            spots next to the box are tried.

    Returns:
        list[Rect | None]: the label rectangles, ``None`` where left out.
    """
    gap, rings, near_only = search.gap, search.rings, search.near_only
    width, height = float(image_size[0]), float(image_size[1])
    placed: List[Rect] = []
    result: List[Optional[Rect]] = []
    loose = list(keep_out)
    strict = loose + list(prefer_out)
    for box, (w, h) in zip(boxes, sizes):
        found: Optional[Rect] = None
        tries = _tries(box, w, h, gap, 0 if near_only else rings, strict,
                       loose, near_only)
        for spots, avoid in tries if w <= width and h <= height else ():
            for x, y in spots:
                x = min(max(x, 0.), width - w)
                y = min(max(y, 0.), height - h)
                rect = (x, y, x + w, y + h)
                if not any(overlaps(rect, o) for o in placed + avoid):
                    found = rect
                    break
            if found is not None:
                break
        result.append(found)
        if found is not None:
            placed.append(found)
    return result


def leader_line(box: Sequence[float], rect: Rect, gap: float = 3.
                ) -> Optional[Tuple[Tuple[float, float], Tuple[float, float]]]:
    """The line that ties a label placed away from its box to the box.

    Args:
        box (Sequence[float]): ``(x1, y1, x2, y2)`` of the box.
        rect (Rect): the label's rectangle (:func:`place_labels`).
        gap (float): a label at most twice this far from the box is next
            to it and needs no line.

    Returns:
        tuple | None: ``((x, y) on the box's outline, (x, y) on the label's
        edge)``, the two nearest points; None for a label next to its box.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    lx1, ly1, lx2, ly2 = rect
    # nearest points of two axis-aligned rectangles, axis by axis
    ax, bx = _nearest(x1, x2, lx1, lx2)
    ay, by = _nearest(y1, y2, ly1, ly2)
    if math.hypot(bx - ax, by - ay) <= 2. * gap:
        return None
    return (ax, ay), (bx, by)


def _nearest(a1: float, a2: float, b1: float,
             b2: float) -> Tuple[float, float]:
    """The nearest points of the intervals [a1, a2] and [b1, b2]."""
    if b1 > a2:
        return a2, b1
    if a1 > b2:
        return a1, b2
    mid = (max(a1, b1) + min(a2, b2)) / 2.  # overlapping: straight across
    return mid, mid
