# Copyright (c) mmlesion contributors. All rights reserved.
"""A matplotlib figure sized in pixels, with font sizes in pixels.

The whole-scan pictures (:mod:`~mmlesion.visualization.volume_report`,
:mod:`~mmlesion.visualization.scan_overview`) are read as PNG files and in
``report.html``, where they are shown at their natural size (one PNG pixel
per CSS pixel). So their sizes are set in pixels: a figure of
``width_px x height_px`` saved at :data:`PICTURE_DPI`, and text of
``font_pt(px)`` points, which is ``px`` pixels high in the PNG and on the
page.
"""
from typing import Tuple

#: Dots per inch of the whole-scan pictures (figure and PNG alike).
PICTURE_DPI = 100.
#: The smallest text drawn in a whole-scan picture, in PNG pixels (= CSS px
#: in ``report.html``). 12 px is the size below which short labels in
#: DejaVu Sans stop reading at a glance at 1 device pixel per CSS pixel.
MIN_TEXT_PX = 12.
#: zlib level of the pictures' PNGs: 1, the fastest (PNG is lossless at any
#: level: the same pixels as the default 6, in a file about 12% larger).
PNG_COMPRESS_LEVEL = 1


def font_pt(px: float, dpi: float = PICTURE_DPI) -> float:
    """The font size in points that is ``px`` pixels at ``dpi``.

    Args:
        px (float): wanted font size in pixels.
        dpi (float): the figure's (and the PNG's) dots per inch.

    Returns:
        float: the size in points for matplotlib.
    """
    return px * 72. / dpi


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
        fig (Figure): from :func:`~mmlesion.visualization.pixel_figure.
            pixel_figure`.
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
