# Copyright (c) mmlesion contributors. All rights reserved.
"""Score format, display scale and label placement of the lesion pictures.

Pure functions (no drawing, no torch) behind
:func:`mmlesion.visualization.lesion_visualizer.draw_lesion_overlay`:

* :func:`format_score`: the one way a score is written (``0.93``), on the
  boxes and in the legend alike;
* :func:`display_scale`: the integer factor that brings a small slice
  (DeepLesion's demo slices are 256 px) to a readable size;
* :func:`text_size`: a slightly generous estimate of a label's size;
* :func:`place_labels`: puts each label next to its box where it overlaps
  no other label, the legend and (where possible) no ground-truth outline.
"""
import math
from typing import List, Optional, Sequence, Tuple

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
    """A detection score as written on the pictures: two decimals.

    Args:
        score (float): a score in [0, 1].

    Returns:
        str: e.g. ``'0.93'`` (never ``'93.0'``).
    """
    return f'{float(score):.2f}'


def display_scale(shape: Sequence[int], min_size: int) -> int:
    """Integer upscaling factor for showing an image of ``shape``.

    Args:
        shape (Sequence[int]): ``(height, width, ...)`` of the image.
        min_size (int): the least short side wanted; 0 or less: no scaling.

    Returns:
        int: the smallest factor ``k >= 1`` with ``k * short side >=
        min_size``.
    """
    short = max(1, min(int(shape[0]), int(shape[1])))
    if min_size <= short:
        return 1
    return int(math.ceil(min_size / short))


def text_size(text: str, font_pt: float, dpi: float = 100.,
              pad_pt: float = 1.5) -> Tuple[float, float]:
    """Width and height in pixels of a one-line label with its background.

    An estimate from DejaVu Sans' advance widths, rounded up, so that two
    labels it says are apart are apart on the picture.

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
    """Whether two rectangles share an inner point (touching is apart).

    Args:
        a (Rect): ``(x1, y1, x2, y2)``.
        b (Rect): ``(x1, y1, x2, y2)``.

    Returns:
        bool: they overlap.
    """
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


def place_labels(boxes: Sequence[Sequence[float]],
                 sizes: Sequence[Tuple[float, float]],
                 image_size: Tuple[int, int],
                 keep_out: Sequence[Rect] = (),
                 prefer_out: Sequence[Rect] = (),
                 gap: float = 3.) -> List[Optional[Rect]]:
    """Place one label per box, greedily, in the given order.

    Each label goes to the first spot where it overlaps no label already
    placed and nothing in ``keep_out``: next to its box (above, below,
    beside; shifted inside the picture), preferably missing ``prefer_out``
    (the ground-truth outlines) too, else stacked further out. A label with
    no such spot is left out (``None``): its box is still drawn.

    Args:
        boxes (Sequence): ``(x1, y1, x2, y2)`` per label, most important
            first (highest score).
        sizes (Sequence[tuple[float, float]]): ``(width, height)`` per label
            (:func:`text_size`).
        image_size (tuple[int, int]): ``(width, height)`` of the picture.
        keep_out (Sequence[Rect]): areas no label may cover (the legend).
        prefer_out (Sequence[Rect]): areas a label covers only if it has to.
        gap (float): pixels between a box and its label.

    Returns:
        list[Rect | None]: the label rectangles, ``None`` where left out.
    """
    width, height = float(image_size[0]), float(image_size[1])
    placed: List[Rect] = []
    result: List[Optional[Rect]] = []
    loose = list(keep_out)
    strict = loose + list(prefer_out)
    for box, (w, h) in zip(boxes, sizes):
        found: Optional[Rect] = None
        near, far = _candidates(box, w, h, gap)
        tries = ((near, strict), (near, loose), (far, strict), (far, loose))
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
