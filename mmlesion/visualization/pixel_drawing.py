# Copyright (c) mmlesion contributors. All rights reserved.
"""What the pictures drawn straight into pixels (numpy, OpenCV, Pillow)
share. Pixel ``i`` covers ``[i, i + 1]``, its centre at ``i + 0.5``.
"""
import functools
import os.path as osp
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np

#: Dots per inch the pictures' sizes in points are counted at (PNG pixels
#: are CSS pixels in ``report.html``).
PICTURE_DPI = 100.
#: zlib level of the pictures' PNGs: 1, the fastest (PNG is lossless at any
#: level: the same pixels as the default 6, in a file about 12% larger).
PNG_COMPRESS_LEVEL = 1
#: Who encodes the pictures' PNGs: ``'opencv'`` (libpng, rows unfiltered:
#: about two thirds of Pillow's CPU time, a file about 4% larger) or
#: ``'pillow'`` (adaptive row filters); the same pixels.
PNG_ENCODER = 'opencv'
#: Colour (RGB) of the model warning (weights trained on demo data).
WARNING_RGB = (176, 0, 0)
#: Sub-pixel bits of OpenCV's drawing calls.
SHIFT = 4


def font_pt(px: float, dpi: float = PICTURE_DPI) -> float:
    """The font size in points that is ``px`` pixels at ``dpi``."""
    return px * 72. / dpi


@functools.lru_cache(maxsize=8)
def font(px: float, bold: bool = False):
    """DejaVu Sans (bundled with matplotlib) at ``px`` pixels per em.

    Args:
        px (float): the font size, pixels (rounded to whole pixels).
        bold (bool): DejaVu Sans Bold.

    Returns:
        PIL.ImageFont.FreeTypeFont: the font (one object per size).
    """
    import matplotlib
    from PIL import ImageFont
    name = 'DejaVuSans-Bold.ttf' if bold else 'DejaVuSans.ttf'
    return ImageFont.truetype(
        osp.join(matplotlib.get_data_path(), 'fonts', 'ttf', name),
        size=int(round(px)))


@dataclass(frozen=True)
class DrawnText:
    """A text of the last picture.

    Args:
        text (str): what it says.
        px (float): its font size, pixels.
        box (tuple, optional): ``(x1, y1, x2, y2)`` in pixels of the
            picture: its advance width and its line's ascent and descent,
            as matplotlib's ``Text.get_window_extent`` measures a text.
    """
    text: str
    px: float
    box: Optional[Tuple[float, float, float, float]] = None


@dataclass(frozen=True)
class PanelView:
    """Where a panel sits in the picture and what part of an image it
    shows.

    Args:
        left (int): the panel's first column in the picture, px.
        top (int): its first row.
        size (tuple[int, int]): its width and height, px.
        x_range (tuple[float, float]): the continuous image x at its left
            and right edge.
        y_range (tuple[float, float]): the image y at its top and bottom
            edge (decreasing for an image shown bottom up).
    """
    left: int
    top: int
    size: Tuple[int, int]
    x_range: Tuple[float, float]
    y_range: Tuple[float, float]

    def to_panel(self, x: float, y: float) -> Tuple[float, float]:
        """Image ``(x, y)`` -> panel pixel coordinates (pixel centres at
        ``i + 0.5``)."""
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return ((x - x0) * self.size[0] / (x1 - x0),
                (y - y0) * self.size[1] / (y1 - y0))


def fit_rect(cell: Tuple[float, float, float, float],
             aspect: float) -> Tuple[int, int, int, int]:
    """The largest rectangle of ``aspect`` centred in a cell, in whole
    pixels (as matplotlib's axes of a fixed aspect in their place).

    Args:
        cell (tuple): ``(left, top, width, height)``, px.
        aspect (float): the rectangle's height over its width.

    Returns:
        tuple[int, int, int, int]: its left, top, width and height.
    """
    left, top, width, height = cell
    w, h = width, width * aspect
    if h > height:
        w, h = height / aspect, height
    x0 = int(round(left + (width - w) / 2))
    y0 = int(round(top + (height - h) / 2))
    return x0, y0, int(round(left + (width + w) / 2)) - x0, \
        int(round(top + (height + h) / 2)) - y0


def resized_rgb(grey: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """A grey uint8 image at ``size`` (width, height), as RGB: area
    averaging where it shrinks, linear where it grows."""
    w, h = size
    shrink = w < grey.shape[1] or h < grey.shape[0]
    small = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA
                       if shrink else cv2.INTER_LINEAR)
    return cv2.cvtColor(small, cv2.COLOR_GRAY2RGB)


def fixed(point: Tuple[float, float]) -> Tuple[int, int]:
    """Continuous pixel coordinates (centres at ``i + 0.5``) -> OpenCV's
    fixed point of :data:`SHIFT` bits (centres at integers)."""
    return tuple(int(round((v - .5) * (1 << SHIFT))) for v in point)


def frame(canvas: np.ndarray, view: PanelView) -> None:
    """A panel's black frame, 1 px (matplotlib's axes spines, on the pixels
    of its edges: the first and the one after the last)."""
    w, h = view.size
    cv2.rectangle(canvas, (view.left, view.top),
                  (view.left + w, view.top + h), (0, 0, 0), 1)


def save_pixels_png(pixels: np.ndarray, path: Path) -> None:
    """Write an RGB picture as a PNG at :data:`PNG_COMPRESS_LEVEL`, encoded as
    :data:`PNG_ENCODER` says, in place (callers stage it in an output set).

    Args:
        pixels (np.ndarray): ``(height, width, 3)`` uint8 RGB.
        path (Path): PNG to write.

    Raises:
        OSError: OpenCV could not encode the picture.
    """
    if PNG_ENCODER == 'pillow':
        from PIL import Image
        Image.fromarray(pixels).save(str(path), format='PNG',
                                     compress_level=PNG_COMPRESS_LEVEL)
        return
    # most of a picture is a CT slice: the row filters (Pillow's and
    # libpng's default tries all five per row) barely shrink it but cost a
    # third of the time
    ok, data = cv2.imencode('.png', np.ascontiguousarray(pixels[..., ::-1]),
                            [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESS_LEVEL,
                             cv2.IMWRITE_PNG_FILTER,
                             cv2.IMWRITE_PNG_FILTER_NONE])
    if not ok:
        raise OSError(f'{path}: OpenCV could not encode the picture as PNG')
    with open(path, 'wb') as f:
        f.write(data.tobytes())
