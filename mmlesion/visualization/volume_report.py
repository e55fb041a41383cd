# Copyright (c) mmlesion contributors. All rights reserved.
"""Pictures and a self-contained HTML report of 3D findings in a CT scan.

Used by :func:`mmlesion.apis.whole_scan.write.write_volume_results`. All
coordinates are continuous voxel coordinates of the (resampled) volume the
findings were detected in (voxel centres at integers, which is also where
matplotlib's ``imshow`` puts pixel centres).
"""
import base64
import html
from pathlib import Path
from typing import Dict, Sequence, Tuple


from mmlesion.datasets.transforms.windowing import window_hu

from .recist_axes import draw_recist_axes


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


def _figure(width: float, height: float):
    """A matplotlib figure of its own (no pyplot: no global state, so the
    pictures may be drawn in a thread while another scan is detected)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _box_on_slice(finding: dict, z: int):
    for item in finding['boxes_2d']:
        if item['slice'] == z:
            return item['bbox'], item['score']
    return None, None


def draw_key_slice(volume, finding: dict, path: Path,
                   window: Tuple[float, float]) -> None:
    """The key slice of a finding with its box, whole and magnified.

    Args:
        volume (CTVolume): the volume the finding was detected in.
        finding (dict): a finding of :func:`infer_volume`.
        path (Path): PNG to write.
        window (tuple): HU display window.
    """
    from matplotlib.patches import Rectangle
    rec = finding.get('recist')
    z = int(rec['key_slice'] if rec else finding['key_slice'])
    img = window_hu(volume.array[z], window, (0., 1.))
    box, score = _box_on_slice(finding, z)
    x1, y1, x2, y2 = box
    fig = _figure(8, 4.5)
    axes = fig.subplots(1, 2)
    for ax, zoom in zip(axes, (False, True)):
        ax.imshow(img, cmap='gray', vmin=0., vmax=1.,
                  interpolation='nearest' if zoom else 'antialiased')
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                               edgecolor='lime', linewidth=1.5))
        draw_recist_axes(ax, rec)
        if zoom:  # beyond the image edge: air
            ax.set_facecolor('black')
            half = max(x2 - x1, y2 - y1) * 1.5 + 8
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            ax.set_xlim(cx - half, cx + half)
            ax.set_ylim(cy + half, cy - half)
        ax.set_xticks([])
        ax.set_yticks([])
    x, y, zw = finding['center_world']
    fig.suptitle(
        f"finding {finding['id']}: score {finding['score']:.3f}, world "
        f"({x:.1f}, {y:.1f}, {zw:.1f}) mm\n{describe_size(finding)}\n"
        f"slices {finding['slice_range_original'][0]}-"
        f"{finding['slice_range_original'][1]} of the scan; drawn: "
        f"resampled slice {z}, 2D score {score:.3f}",
        fontsize=9)
    # fixed margins (tight_layout drew the figure twice: a quarter of the
    # time of a picture); the three title lines fit above the images
    fig.subplots_adjust(left=.01, right=.99, bottom=.01, top=.84,
                        wspace=.04)
    fig.savefig(str(path), dpi=90)


def draw_overview(volume, findings: Sequence[dict], path: Path,
                  window: Tuple[float, float], max_findings: int = 20
                  ) -> None:
    """Coronal and axial maximum-intensity projections with the findings.

    Args:
        volume (CTVolume): the volume the findings were detected in.
        findings (Sequence[dict]): by decreasing score.
        path (Path): PNG to write.
        window (tuple): HU display window.
        max_findings (int): the best ones drawn, numbered by rank.
    """
    import matplotlib
    from matplotlib.patches import Rectangle
    sz, sy, sx = volume.spacing_zyx
    # windowing is monotone, so the projection of the windowed volume is
    # the windowed projection (exactly): window the two projections only
    coronal = window_hu(volume.array.max(axis=1), window, (0., 1.))  # z, x
    axial = window_hu(volume.array.max(axis=0), window, (0., 1.))  # y, x
    fig = _figure(11, 5.5)
    axes = fig.subplots(1, 2)
    axes[0].imshow(coronal, cmap='gray', vmin=0., vmax=1., origin='lower',
                   aspect=sz / sx)
    axes[0].set_title('coronal MIP (head up)', fontsize=9)
    axes[1].imshow(axial, cmap='gray', vmin=0., vmax=1., aspect=sy / sx)
    axes[1].set_title('axial MIP', fontsize=9)
    cmap = matplotlib.colormaps['autumn']
    for rank, f in enumerate(findings[:max_findings]):
        x1, y1, z1, x2, y2, z2 = f['bbox_voxel_resampled']
        color = cmap(rank / max(max_findings - 1, 1))
        for ax, (a1, b1, a2, b2) in ((axes[0], (x1, z1, x2, z2)),
                                     (axes[1], (x1, y1, x2, y2))):
            ax.add_patch(Rectangle((a1, b1), a2 - a1, b2 - b1, fill=False,
                                   edgecolor=color, linewidth=1.2))
            ax.text(a2 + 1, b1, str(f['id']), color=color, fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    shown = min(len(findings), max_findings)
    fig.suptitle(f'{len(findings)} findings ({shown} best drawn, numbered '
                 'by rank)', fontsize=10)
    fig.subplots_adjust(left=.01, right=.99, bottom=.01, top=.88,
                        wspace=.04)
    fig.savefig(str(path), dpi=80)


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode('ascii')
    return (f'<img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{data}">')


def write_html_report(record: dict, pictures: Dict[int, Path],
                      overview: Path, path: Path, title: str,
                      max_findings: int = 20) -> None:
    """A single HTML file (images inlined as base64, no external assets).

    A ``model_warning`` of the record (weights trained on the synthetic
    demo data) heads the page in a red box; each finding's size is named:
    the largest in-plane side of its 3D box and the RECIST long and short
    axes.

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
        pic = _img_tag(pictures[f['id']], f"finding {f['id']}") \
            if f['id'] in pictures else ''
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
            f"<td>{esc(str(f['bbox_voxel']))}</td><td>{pic}</td></tr>")
    more = len(record['findings']) - len(rows)
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
img {{ max-width: 100%; }}
td img {{ width: 480px; }}
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
<p>World coordinates in mm (LPS, as SimpleITK and LUNA16); slices and
boxes <code>[x1, y1, z1, x2, y2, z2]</code> in voxels of the original
scan. <b>Largest box side</b>: the longer in-plane side (width or height)
of the finding's 3D box. <b>RECIST long axis</b>: the longest diameter of
the lesion on its key slice; <b>short axis</b>: the longest diameter
perpendicular to it (RECIST 1.1).</p>
<table><tr><th>#</th><th>score</th><th>centre (x, y, z) mm</th>
<th>largest box side mm</th><th>RECIST long axis x short axis mm</th>
<th>slices</th><th>box (voxels)</th><th>key slice</th></tr>
{''.join(rows)}
</table>
<p>{f'{more} more findings in findings.json and candidates.csv.'
    if more > 0 else ''}</p>
</body></html>
"""
    Path(path).write_text(page, encoding='utf-8')
