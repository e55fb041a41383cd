# Copyright (c) mmlesion contributors. All rights reserved.
"""The finishing's earlier code, for ``benchmark_infer_scans.py``.

Holds the key-slice pictures as matplotlib drew them before
:class:`~mmlesion.visualization.key_slice_raster.KeySliceRaster`: one figure
for a scan's key slices (:class:`MatplotlibKeySlices`, 2026-11-26) and,
before it, a figure per finding (:func:`old_key_slice_figure`,
:class:`OldKeySlices`); the undoing of each change of the finishing while
in a block (the ``old_code`` schedule: :func:`old_code`; the overview as
matplotlib drew it before :class:`~mmlesion.visualization.overview_raster.
OverviewRaster` is ``matplotlib_pictures.overview_figure``), the
timing of each change on one scan, old and new in turn (``--change-rounds``:
:data:`CHANGES`, :func:`time_changes`) and the check that two batch folders
hold the same findings and pictures (:func:`same_files`).
"""
import contextlib
import json
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def old_key_slice_figure(volume, finding: dict, window: Tuple[float, float],
                         warning: Optional[str] = None) -> 'Figure':
    """The key-slice picture as it was drawn before
    :class:`MatplotlibKeySlices`: a new figure and axes per finding (the
    same pixels, tested)."""
    from matplotlib.patches import Rectangle

    from mmlesion.datasets.transforms.windowing import window_hu
    from mmlesion.visualization.recist_axes import draw_recist_axes
    from projects.benchmarks.matplotlib_pictures import (font_pt, paste_text,
                                                         pixel_figure,
                                                         pixel_transform)
    from mmlesion.visualization.key_slice_raster import (KEY_SLICE_SIZE_PX,
                                                         KEY_SLICE_TEXT_PX,
                                                         box_on_slice,
                                                         key_slice_of,
                                                         title_lines)
    rec = finding.get('recist')
    z = key_slice_of(finding)
    img = window_hu(volume.array[z], window, (0., 1.))
    box, _ = box_on_slice(finding, z)
    x1, y1, x2, y2 = box
    width, height = KEY_SLICE_SIZE_PX
    fig = pixel_figure(width, height)
    pt = font_pt(KEY_SLICE_TEXT_PX)
    top = 8. + (4 if warning else 3) * 1.25 * KEY_SLICE_TEXT_PX
    fig.subplots_adjust(left=6. / width, right=1. - 6. / width,
                        bottom=6. / height, top=1. - top / height,
                        wspace=.035)
    axes = fig.subplots(1, 2)
    for ax, zoom in zip(axes, (False, True)):
        ax.imshow(img, cmap='gray', vmin=0., vmax=1.,
                  interpolation='nearest' if zoom else 'antialiased')
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                               edgecolor='lime', linewidth=1.5))
        draw_recist_axes(ax, rec, fontsize=pt)
        if zoom:  # beyond the image edge: air
            ax.set_facecolor('black')
            half = max(x2 - x1, y2 - y1) * 1.5 + 8
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            ax.set_xlim(cx - half, cx + half)
            ax.set_ylim(cy + half, cy - half)
        ax.set_xticks([])
        ax.set_yticks([])
    lines = title_lines(finding)
    if warning:
        paste_text(fig, f'WARNING: model {warning}', width / 2., 6.,
                   KEY_SLICE_TEXT_PX, color='#b00000', weight='bold')
    fig.text(width / 2., top - 4., '\n'.join(lines),
             transform=pixel_transform(fig), fontsize=pt, ha='center',
             va='bottom', linespacing=1.25)
    return fig


class MatplotlibKeySlices:
    """The key slices as drawn from 2026-11-26 until
    :class:`~mmlesion.visualization.key_slice_raster.KeySliceRaster`: one
    matplotlib figure drawing the key slices of a scan's findings one after
    another: the panels, the box, the title and the warning are built once
    and only their contents change from finding to finding (building a
    figure and its two axes cost a sixth of a picture). A picture is the
    same, pixel for pixel, as that of a figure of its own (tested).

    Each picture shows the finding's key slice (the RECIST one where it was
    measured) whole and magnified around the box, with its box, the RECIST
    axes and their legend, and three lines of title; the warning (demo
    weights) in red above them. The arguments are those of
    :class:`~mmlesion.visualization.key_slice_raster.KeySliceRaster`.
    """

    def __init__(self, volume, window: Tuple[float, float],
                 warning: Optional[str] = None, original=None) -> None:
        import numpy as np
        from matplotlib.patches import Rectangle

        from projects.benchmarks.matplotlib_pictures import (
            font_pt, paste_text, pixel_figure, pixel_transform)
        self.volume, self.window, self.warning = volume, window, warning
        from mmlesion.visualization.key_slice_raster import (
            KEY_SLICE_SIZE_PX, KEY_SLICE_TEXT_PX)
        width, height = KEY_SLICE_SIZE_PX
        fig = self.figure = pixel_figure(width, height)
        self._pt = font_pt(KEY_SLICE_TEXT_PX)
        # fixed margins (tight_layout drew the figure twice: a quarter of
        # the time of a picture); the title's lines (and the warning) fit
        # above
        top = 8. + (4 if warning else 3) * 1.25 * KEY_SLICE_TEXT_PX
        fig.subplots_adjust(left=6. / width, right=1. - 6. / width,
                            bottom=6. / height, top=1. - top / height,
                            wspace=.035)
        self.axes = fig.subplots(1, 2)
        blank = np.zeros(np.shape(volume.array)[1:3], np.float32)
        self._images, self._boxes = [], []
        for ax, zoom in zip(self.axes, (False, True)):
            self._images.append(ax.imshow(
                blank, cmap='gray', vmin=0., vmax=1.,
                interpolation='nearest' if zoom else 'antialiased'))
            self._boxes.append(ax.add_patch(Rectangle(
                (0., 0.), 1., 1., fill=False, edgecolor='lime',
                linewidth=1.5)))
            if zoom:  # beyond the image edge: air
                ax.set_facecolor('black')
            ax.set_xticks([])
            ax.set_yticks([])
        # the RECIST axes shown: per panel its two lines and their legend
        self._recist: List[Tuple[list, object]] = []
        if warning:  # the same on every key slice: drawn once, pasted
            paste_text(fig, f'WARNING: model {warning}', width / 2., 6.,
                       KEY_SLICE_TEXT_PX, color='#b00000', weight='bold')
        self._title = fig.text(width / 2., top - 4., '',
                               transform=pixel_transform(fig),
                               fontsize=self._pt, ha='center', va='bottom',
                               linespacing=1.25)

    def show(self, finding: dict):
        """Put a finding on the figure.

        Args:
            finding (dict): a finding of :func:`infer_volume`.

        Returns:
            matplotlib.figure.Figure: the figure, showing it (the same
            figure for every finding).
        """
        from mmlesion.datasets.transforms.windowing import window_hu
        from mmlesion.visualization.key_slice_raster import (box_on_slice,
                                                             key_slice_of,
                                                             title_lines)
        rec = finding.get('recist')
        z = key_slice_of(finding)
        img = window_hu(self.volume.array[z], self.window, (0., 1.))
        box, _ = box_on_slice(finding, z)
        x1, y1, x2, y2 = box
        for image, rect in zip(self._images, self._boxes):
            image.set_data(img)
            rect.set_bounds(x1, y1, x2 - x1, y2 - y1)
        self._show_recist(rec)
        # the whole slice keeps the image's limits (imshow's); the zoom:
        zoom = self.axes[1]
        half = max(x2 - x1, y2 - y1) * 1.5 + 8
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        zoom.set_xlim(cx - half, cx + half)
        zoom.set_ylim(cy + half, cy - half)
        self._title.set_text('\n'.join(title_lines(finding)))
        return self.figure

    def _show_recist(self, rec: Optional[dict]) -> None:
        """The RECIST axes and their legend on both panels
        (:func:`~mmlesion.visualization.recist_axes.draw_recist_axes`):
        drawn anew after a finding without them, else the last ones moved
        and their legend's texts changed (building a legend costs a tenth
        of a picture)."""
        from mmlesion.visualization.recist_axes import (draw_recist_axes,
                                                        recist_labels)
        if not rec or not self._recist:  # none to show, or none to reuse
            for lines, legend in self._recist:
                for line in lines:
                    line.remove()
                legend.remove()
            self._recist = []
            if not rec:
                return
            for ax in self.axes:
                draw_recist_axes(ax, rec, fontsize=self._pt)
                self._recist.append((list(ax.lines), ax.get_legend()))
            return
        labels = recist_labels(rec)
        for lines, legend in self._recist:
            for line, text, (key, label) in zip(lines, legend.texts, labels):
                (x1, y1), (x2, y2) = rec[key]
                line.set_data([x1, x2], [y1, y2])
                line.set_label(label)
                text.set_text(label)

    def draw(self, finding: dict, path: Path, saver=None) -> None:
        """Write a finding's picture (:meth:`show`) as a PNG, here
        (``saver`` is ignored: matplotlib holds the GIL).

        Args:
            finding (dict): a finding of :func:`infer_volume`.
            path (Path): PNG to write.
            saver (Executor, optional): ignored.
        """
        from projects.benchmarks.matplotlib_pictures import save_png
        save_png(self.show(finding), path)


class OldKeySlices:
    """:class:`MatplotlibKeySlices` as the pictures were drawn before it:
    :func:`old_key_slice_figure` per finding, saved as ``savefig`` does by
    default (zlib level 6)."""

    def __init__(self, volume, window: Tuple[float, float],
                 warning: Optional[str] = None, original=None) -> None:
        self.volume, self.window, self.warning = volume, window, warning

    def draw(self, finding: dict, path: Path, saver=None) -> None:
        fig = old_key_slice_figure(self.volume, finding, self.window,
                                   self.warning)
        fig.savefig(str(path), dpi=fig.dpi)


@contextlib.contextmanager
def old_code(raster: bool = True, pictures: bool = True,
             png_level: bool = True, records: bool = True,
             png_threads: bool = True, overview: bool = True,
             png_encoder: bool = True) -> Iterator[None]:
    """The finishing's earlier code while in the block: the key slices drawn
    by matplotlib (``raster``: :class:`MatplotlibKeySlices`, the code before
    :class:`~mmlesion.visualization.key_slice_raster.KeySliceRaster`; the
    same content, other pixels), on a new figure per key slice
    (``pictures``: :class:`OldKeySlices`, the code before 2026-11-26; only
    with ``raster``), PNGs at zlib's default level 6 (``png_level``),
    findings' records copied by ``dataclasses.asdict`` (``records``), the
    key slices' PNGs written as they are drawn instead of by threads
    (``png_threads``: the code before 2026-11-26's evening), the overview
    drawn by matplotlib (``overview``: ``matplotlib_pictures.overview_figure``,
    the code before :class:`~mmlesion.visualization.overview_raster.
    OverviewRaster`; the same content, other pixels), the pictures drawn
    as pixels encoded by Pillow (``png_encoder``: with its adaptive row
    filters; the same pixels). The same findings, tested; the same pixels
    among the matplotlib ways."""
    from dataclasses import asdict

    import mmlesion.visualization.pixel_drawing as pixel_drawing
    import projects.benchmarks.matplotlib_pictures as matplotlib_pictures
    import mmlesion.visualization.volume_report as volume_report
    from mmlesion.apis.whole_scan import write
    from mmlesion.utils.writing.field_record import FieldRecord
    patches = []
    if png_encoder:
        patches.append((pixel_drawing, 'PNG_ENCODER', 'pillow'))
    if overview:
        patches.append((volume_report, 'draw_overview',
                        matplotlib_pictures.draw_overview))
    if png_threads:
        patches.append((write, 'PNG_WRITERS', 0))
    if raster:
        patches.append((volume_report, 'KeySliceRaster',
                        OldKeySlices if pictures else MatplotlibKeySlices))
    if png_level:
        patches.append((matplotlib_pictures, 'PNG_COMPRESS_LEVEL', 6))
    if records:
        patches.append((FieldRecord, 'to_dict',
                        lambda self: asdict(self)))
    saved = [(owner, name, getattr(owner, name))
             for owner, name, _ in patches]
    try:
        for owner, name, value in patches:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


#: The :func:`old_code` keywords of the code now: every change kept.
NEW = dict(raster=False, pictures=False, png_level=False, records=False,
           png_threads=False, overview=False, png_encoder=False)
#: The :func:`old_code` keywords that draw a picture by another renderer
#: (matplotlib instead of pixels): the key slices, the overview.
RENDERERS = ('raster', 'overview')
#: Each change of the finishing timed by :func:`time_changes`: name ->
#: the :func:`old_code` keywords of its old and its new way (the other
#: changes kept). The key slices' changes: a figure per finding -> one
#: figure (2026-11-26), then matplotlib -> pixels drawn by
#: ``KeySliceRaster``; the overview's: matplotlib -> pixels drawn by
#: ``OverviewRaster``. The PNG level is timed on matplotlib's pictures
#: (the pictures drawn as pixels are saved at level 1 either way).
CHANGES = {
    'key slices drawn as pixels (KeySliceRaster)': (dict(raster=True),
                                                    dict()),
    'overview drawn as pixels': (dict(overview=True), dict()),
    'PNGs at zlib level 1 (matplotlib\'s)': (
        dict(raster=True, overview=True, png_level=True),
        dict(raster=True, overview=True)),
    'records without asdict': (dict(records=True), dict()),
    'PNGs encoded by OpenCV, rows unfiltered': (dict(png_encoder=True),
                                                dict()),
    'all, the code before 2026-11-26 -> now': (
        dict(raster=True, pictures=True, png_level=True, records=True,
             overview=True, png_encoder=True), dict()),
}


def time_changes(result, volume, run_info, folder: Path,
                 rounds: int) -> Dict[str, dict]:
    """Write one measured scan's files (``write_scan``) with each change of
    :data:`CHANGES` undone and done, in turn, ``rounds`` times: the CPU
    seconds of each (medians), their ratio (old / new, median of the
    rounds' ratios), whether both wrote the same findings, and the same
    pictures (:func:`same_files`; for a change of renderer, the share of
    the pictures' pixels that agree instead: :func:`picture_agreement`).
    Only this process runs: CPU seconds are this process's."""
    from mmlesion.apis.whole_scan.run import ScanOutput, write_scan
    seconds = {name: ([], [], [], []) for name in CHANGES}
    for round_ in range(rounds):
        for name, ways in CHANGES.items():
            for i, way in enumerate(ways):
                with old_code(**{**NEW, **way}):
                    cpu = time.process_time()
                    write_scan(result, volume, run_info, ScanOutput(
                        str(folder / f'{round_}_{i}' / 'scan'), True))
                    seconds[name][i].append(time.process_time() - cpu)
            a, b = folder / f'{round_}_0', folder / f'{round_}_1'
            same = same_files(a, b)
            seconds[name][2].append(same[0])
            seconds[name][3].append(picture_agreement(a, b) if
                                    _renderer_changes(ways) else same[1])
    return {name: dict(
        old=round(statistics.median(old), 3),
        new=round(statistics.median(new), 3),
        old_over_new=round(statistics.median(
            a / b for a, b in zip(old, new)), 3),
        same_findings=all(findings),
        same_pictures=(None if _renderer_changes(CHANGES[name]) else
                       all(pictures)),
        picture_agreement=(round(min(pictures), 4)
                           if _renderer_changes(CHANGES[name]) else None))
        for name, (old, new, findings, pictures) in seconds.items()}


def other_renderer(keywords: dict) -> bool:
    """Whether :func:`old_code` with these keywords (its defaults for the
    others) draws a picture by another renderer than the code now (the
    key slices or the overview by matplotlib).

    Args:
        keywords (dict): :func:`old_code` keywords.

    Returns:
        bool: its pictures compare by :func:`picture_agreement`.
    """
    return any(keywords.get(name, True) for name in RENDERERS)


def _renderer_changes(ways) -> bool:
    """Whether a change's old and new way (keywords over :data:`NEW`)
    draw a picture (the key slices, the overview) with different renderers
    (matplotlib or pixels)."""
    old, new = ({**NEW, **way} for way in ways)
    return any(old[name] != new[name] for name in RENDERERS)


def _pictures(a: Path, b: Path):
    """The PNGs of two batch folders, pair by pair (None: other names)."""
    names = sorted(p.relative_to(a) for p in a.rglob('*.png'))
    if names != sorted(p.relative_to(b) for p in b.rglob('*.png')):
        return None
    return [(a / rel, b / rel) for rel in names]


def same_files(a: Path, b: Path) -> Tuple[bool, bool]:
    """Whether two batch folders hold the same findings (``findings.json``
    's findings, RECIST included) and pictures of the same pixels, scan by
    scan."""
    import numpy as np
    from PIL import Image
    findings = True
    for folder in sorted(p for p in a.iterdir() if p.is_dir()):

        def listed(path: Path) -> list:
            return json.loads((path / 'findings.json').read_text())[
                'findings']

        findings &= listed(folder) == listed(b / folder.name)
    pairs = _pictures(a, b)
    pictures = pairs is not None and all(
        np.array_equal(np.asarray(Image.open(x)), np.asarray(Image.open(y)))
        for x, y in pairs)
    return findings, pictures


#: Two pixels agree when no channel differs by more than this.
AGREEMENT_LEVELS = 32


def picture_agreement(a: Path, b: Path) -> float:
    """For pictures of two renderers (matplotlib and
    :class:`~mmlesion.visualization.key_slice_raster.KeySliceRaster` or
    :class:`~mmlesion.visualization.overview_raster.OverviewRaster`): the
    smallest share, over the pictures of two batch folders, of pixels that
    agree within :data:`AGREEMENT_LEVELS` grey levels in every channel (0
    when the folders hold other pictures or sizes). The same content drawn
    twice agrees in about 95 % of the pixels (text and lines a pixel
    apart); the tests compare the content itself."""
    import numpy as np
    from PIL import Image
    pairs = _pictures(a, b)
    if not pairs:
        return 0.
    shares = []
    for x, y in pairs:
        u = np.asarray(Image.open(x).convert('RGB'), dtype=np.int16)
        v = np.asarray(Image.open(y).convert('RGB'), dtype=np.int16)
        shares.append(float((np.abs(u - v).max(-1) <= AGREEMENT_LEVELS).mean())
                      if u.shape == v.shape else 0.)
    return min(shares)
