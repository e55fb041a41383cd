# Copyright (c) mmlesion contributors. All rights reserved.
"""Key-slice pictures and a self-contained HTML report of 3D findings in
a CT scan (the overview picture: :mod:`~mmlesion.visualization.
scan_overview`).

Used by :func:`mmlesion.apis.whole_scan.write.write_volume_results`. All
coordinates are continuous voxel coordinates of the (resampled) volume the
findings were detected in (voxel centres at integers, which is also where
matplotlib's ``imshow`` puts pixel centres).

Readable at the size they are shown: ``report.html`` shows every picture
at its natural size (one PNG pixel per CSS pixel), and the pictures set
their text in pixels (:mod:`~mmlesion.visualization.pixel_figure`): the
key slices' title and RECIST legend :data:`KEY_SLICE_TEXT_PX` high.
"""
import base64
import html
import math
import struct
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmlesion.datasets.transforms.windowing import window_hu

from .pixel_figure import (font_pt, pixel_figure, pixel_transform,
                           save_png)
from .recist_axes import draw_recist_axes, recist_labels
# the overview has its own module; write_volume_results (and the
# benchmark's timing of each part) call it from here
from .scan_overview import draw_overview, overview_figure  # noqa: F401
from .text_stamp import paste_text

#: Size of a key-slice picture, pixels.
KEY_SLICE_SIZE_PX = (720, 440)
#: Height of a key-slice picture's text (title lines, RECIST legend), px.
KEY_SLICE_TEXT_PX = 13.


def describe_size(finding: dict) -> str:
    """A finding's sizes, each named: e.g. ``'largest box side 28.1 mm;
    RECIST long axis 11.5 mm x short axis 10.2 mm'``.

    The box side is the longer in-plane side (width or height) of the
    finding's 3D box (``largest_box_side_mm``, formerly only
    ``diameter_mm``); the RECIST axes are measured on its key slice
    (:mod:`~mmlesion.apis.whole_scan.measure`).

    Args:
        finding (dict): a finding of :func:`~mmlesion.apis.whole_scan.infer.infer_volume`.

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


def _box_on_slice(finding: dict, z: int):
    for item in finding['boxes_2d']:
        if item['slice'] == z:
            return item['bbox'], item['score']
    return None, None


def key_slice_figure(volume, finding: dict, window: Tuple[float, float],
                     warning: Optional[str] = None):
    """The key slice of a finding with its box, whole and magnified, as a
    matplotlib figure of :data:`KEY_SLICE_SIZE_PX` (a
    :class:`KeySliceCanvas` of its own).

    Args:
        volume (CTVolume): the volume the finding was detected in.
        finding (dict): a finding of :func:`infer_volume`.
        window (tuple): HU display window.
        warning (str, optional): the model's warning (``model_warning``:
            weights trained on the synthetic demo data), drawn in red above
            the title.

    Returns:
        matplotlib.figure.Figure: the picture.
    """
    return KeySliceCanvas(volume, window, warning).show(finding)


class KeySliceCanvas:
    """One figure drawing the key slices of a scan's findings one after
    another: the panels, the box, the title and the warning are built once
    and only their contents change from finding to finding (building a
    figure and its two axes cost a sixth of a picture). A picture is the
    same, pixel for pixel, as that of a figure of its own (tested).

    Each picture shows the finding's key slice (the RECIST one where it was
    measured) whole and magnified around the box, with its box, the RECIST
    axes and their legend, and three lines of title; the warning (demo
    weights) in red above them.

    Args:
        volume (CTVolume): the volume the findings were detected in.
        window (tuple): HU display window.
        warning (str, optional): the model's warning, drawn on every
            picture.
    """

    def __init__(self, volume, window: Tuple[float, float],
                 warning: Optional[str] = None) -> None:
        from matplotlib.patches import Rectangle
        self.volume, self.window, self.warning = volume, window, warning
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
        rec = finding.get('recist')
        z = int(rec['key_slice'] if rec else finding['key_slice'])
        img = window_hu(self.volume.array[z], self.window, (0., 1.))
        box, score = _box_on_slice(finding, z)
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
        x, y, zw = finding['center_world']
        self._title.set_text('\n'.join([
            f"finding {finding['id']}: score {finding['score']:.3f}, world "
            f"({x:.1f}, {y:.1f}, {zw:.1f}) mm", describe_size(finding),
            f"slices {finding['slice_range_original'][0]}-"
            f"{finding['slice_range_original'][1]} of the scan; drawn: "
            f"resampled slice {z}, 2D score {score:.3f}"]))
        return self.figure

    def _show_recist(self, rec: Optional[dict]) -> None:
        """The RECIST axes and their legend on both panels
        (:func:`~mmlesion.visualization.recist_axes.draw_recist_axes`):
        drawn anew after a finding without them, else the last ones moved
        and their legend's texts changed (building a legend costs a tenth
        of a picture)."""
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

    def draw(self, finding: dict, path: Path) -> None:
        """Write a finding's picture (:meth:`show`) as a PNG.

        Args:
            finding (dict): a finding of :func:`infer_volume`.
            path (Path): PNG to write.
        """
        save_png(self.show(finding), path)


def draw_key_slice(volume, finding: dict, path: Path,
                   window: Tuple[float, float],
                   warning: Optional[str] = None) -> None:
    """Write a finding's key-slice picture (:func:`key_slice_figure`; a
    scan's pictures are drawn faster on one :class:`KeySliceCanvas`).

    Args:
        volume (CTVolume): the volume the finding was detected in.
        finding (dict): a finding of :func:`infer_volume`.
        path (Path): PNG to write.
        window (tuple): HU display window.
        warning (str, optional): the model's warning, drawn on it.
    """
    save_png(key_slice_figure(volume, finding, window, warning), path)


def png_size(path: Path) -> Tuple[int, int]:
    """Width and height of a PNG file, from its header.

    Args:
        path (Path): the PNG.

    Returns:
        tuple[int, int]: ``(width, height)`` in pixels.
    """
    with open(path, 'rb') as f:
        head = f.read(24)
    if head[:8] != b'\x89PNG\r\n\x1a\n' or head[12:16] != b'IHDR':
        raise ValueError(f'{path} is not a PNG file')
    return struct.unpack('>II', head[16:24])


def _img_tag(path: Path, alt: str) -> str:
    """The PNG inlined, at its natural size (width and height given, so
    the page does not shrink it where there is room)."""
    data = base64.b64encode(Path(path).read_bytes()).decode('ascii')
    width, height = png_size(path)
    return (f'<img alt="{html.escape(alt)}" width="{width}" '
            f'height="{height}" src="data:image/png;base64,{data}">')


def voxel_range(low: float, high: float, size: int) -> Tuple[int, int]:
    """The first and last voxel (indices from 0, inclusive) a box side
    covers, from its edges in continuous voxels.

    Voxel ``i`` spans ``[i - 0.5, i + 0.5]``, so a box over the first
    voxel has its low edge at -0.5 (``findings.json``'s ``bbox_voxel``
    keeps these edges); the voxels are those holding the edges, clipped to
    the scan (as ``slice_range_original``).

    Args:
        low (float): the low edge, continuous voxels.
        high (float): the high edge.
        size (int): voxels along that axis.

    Returns:
        tuple[int, int]: first and last voxel.
    """
    first = max(int(math.floor(low + .5)), 0)
    last = min(int(math.ceil(high - .5)), int(size) - 1)
    return first, max(first, last)


def _box_voxels(finding: dict, shape_zyx: Sequence[int]) -> str:
    """A finding's box as voxel ranges of the scan: ``x 50-70, y 12-30``.
    """
    x1, y1, _, x2, y2, _ = finding['bbox_voxel']
    xs = voxel_range(x1, x2, shape_zyx[2])
    ys = voxel_range(y1, y2, shape_zyx[1])
    return f'x {xs[0]}-{xs[1]}, y {ys[0]}-{ys[1]}'


def write_html_report(record: dict, pictures: Dict[int, Path],
                      overview: Path, path: Path, title: str,
                      max_findings: int = 20) -> None:
    """A single HTML file (images inlined as base64, no external assets).

    A ``model_warning`` of the record (weights trained on the synthetic
    demo data) heads the page in a red box; each finding's size is named:
    the largest in-plane side of its 3D box and the RECIST long and short
    axes; its slices and box as the voxels it covers (:func:`voxel_range`),
    its key slice in a row of its own under it. Every picture is shown at
    its natural size, where its text is at least 12 px.

    Args:
        record (dict): the serialisable result of :func:`infer_volume`.
        pictures (dict): finding id -> its key-slice PNG.
        overview (Path): the overview PNG.
        path (Path): HTML file to write.
        title (str): page title.
        max_findings (int): findings listed.
    """
    esc = html.escape
    geo = record['original']
    settings = record['settings']
    rows = []
    for f in record['findings'][:max_findings]:
        x, y, z = f['center_world']
        rec = f.get('recist')
        axes = (f"{rec['long_axis_mm']:.1f} x {rec['short_axis_mm']:.1f}"
                if rec else '-')
        side = f.get('largest_box_side_mm', f['diameter_mm'])
        rows.append(
            f"<tr><td>{f['id']}</td><td>{f['score']:.3f}</td>"
            f'<td>({x:.1f}, {y:.1f}, {z:.1f})</td>'
            f'<td>{side:.1f}</td><td>{axes}</td>'
            f"<td>{f['slice_range_original'][0]}-"
            f"{f['slice_range_original'][1]}</td>"
            f"<td>{_box_voxels(f, geo['shape_zyx'])}</td></tr>")
        if f['id'] in pictures:  # the picture at its size, under its row
            pic = _img_tag(pictures[f['id']], f"finding {f['id']}")
            rows.append(f'<tr class="key-slice"><td colspan="7">{pic}'
                        '</td></tr>')
    more = len(record['findings']) - len(
        record['findings'][:max_findings])
    warning = record.get('model_warning')
    banner = (f'<div class="model-warning" role="alert"><b>Warning: model '
              f'{esc(warning)}.</b></div>\n' if warning else '')
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #bbb; padding: 4px 8px; vertical-align: top;
          font-size: 13px; }}
img {{ display: block; max-width: none; height: auto; }}
tr.key-slice td {{ padding: 4px 0 16px; border-left: none;
                  border-right: none; }}
.model-warning {{ background: #fde2e2; border: 3px solid #c00000;
                  color: #900000; padding: 0.8em 1em; font-size: 1.3em;
                  margin-bottom: 1em; }}
</style></head><body>
{banner}<h1>Lesion findings</h1>
<p><b>scan</b> {esc(str(record['scan']))}<br>
<b>series</b> {esc(str(record['series_uid']))}<br>
<b>voxels</b> {geo['shape_zyx']} (z, y, x) at {geo['spacing_zyx']} mm;
detector input: {settings['num_slices']} slices at
{settings['interval_mm']} mm, {settings['pixel_spacing']} mm/px
({esc(settings['pixel_spacing_source'])})<br>
<b>detection</b> {record['num_slices']} slices in
{record['detect_seconds']} s ({record['slices_per_second']} slices/s);
{record['num_boxes_2d']} 2D boxes (score &ge; {settings['score_thr']})
stacked into {len(record['findings'])} findings (IoU &gt;
{settings['iou_thr']} on consecutive slices)</p>
{_img_tag(overview, 'overview')}
<h2>Findings by score</h2>
<p>World coordinates in mm (LPS, as SimpleITK and LUNA16). <b>Slices</b>
and <b>box</b>: the first and last slice and voxel (indices from 0) the
finding covers in the original scan (findings.json keeps the box's edges,
<code>bbox_voxel</code>, in continuous voxels). Each finding's key slice
follows its row.
<b>Largest box side</b>: the longer in-plane side (width or height)
of the finding's 3D box. <b>RECIST long axis</b>: the longest diameter of
the lesion on its key slice; <b>short axis</b>: the longest diameter
perpendicular to it (RECIST 1.1).</p>
<table><tr><th>#</th><th>score</th><th>centre (x, y, z) mm</th>
<th>largest box side mm</th><th>RECIST long axis x short axis mm</th>
<th>slices</th><th>box (voxels)</th></tr>
{''.join(rows)}
</table>
<p>{f'{more} more findings in findings.json and candidates.csv.'
    if more > 0 else ''}</p>
</body></html>
"""
    Path(path).write_text(page, encoding='utf-8')
