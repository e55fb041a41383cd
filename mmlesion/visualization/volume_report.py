# Copyright (c) mmlesion contributors. All rights reserved.
"""A self-contained HTML report of the 3D findings in a CT scan: every
picture at its natural size, values as a reader reads them (3 significant
digits, units), files outside the results named by their file name only.
"""
import base64
import html
import math
import numbers
import os.path as osp
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

# write_volume_results (and the benchmark's timing) call these from here
from .key_slice_raster import (KeySliceRaster, describe_size,  # noqa: F401
                               slices_text)
from .overview_raster import draw_overview  # noqa: F401


def _img_tag(path: Path, alt: str) -> str:
    """The PNG inlined, at its natural size (width and height given, so
    the page does not shrink it where there is room)."""
    from PIL import Image
    with Image.open(path, formats=['PNG']) as image:
        width, height = image.size
    data = base64.b64encode(Path(path).read_bytes()).decode('ascii')
    return (f'<img alt="{html.escape(alt)}" width="{width}" '
            f'height="{height}" src="data:image/png;base64,{data}">')


def shown_number(value: Any) -> str:
    """A number as the report shows it: 3 significant digits (``0.703``,
    ``12.3``), whole from 1000 on (``1235``), an integer as it is."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return f'{value:.0f}' if abs(value) >= 1000 else f'{float(value):.3g}'


def shown_numbers(values: Sequence[Any]) -> str:
    """``2 x 0.703 x 0.703``: a size or spacing."""
    return ' x '.join(shown_number(v) for v in values)


#: An absolute path inside a text (POSIX or Windows), its last part kept.
_ABSOLUTE_PATH = re.compile(
    r'(?<![\w.])(?:[A-Za-z]:)?[\\/](?:[^\s()\\/]+[\\/])*([^\s()\\/]+)')


def shown_name(text: Any, one_path: bool = False) -> str:
    """A path (or a text holding paths) as the report names it: each
    absolute path by its last part.

    Args:
        text: the path or text.
        one_path (bool): ``text`` is one path (spaces included), e.g. the
            scan's.

    Returns:
        str: the text to show.
    """
    text = str(text)
    if osp.isabs(text) and (one_path or not re.search(r'\s', text)):
        return osp.basename(osp.normpath(text)) or text
    return _ABSOLUTE_PATH.sub(r'\1', text)


def series_text(record: Mapping[str, Any]) -> str:
    """A series as a reader names it, its UID beside: ``CT Body 3.0
    (series number 2; UID 1.2.3)``; the UID alone where the record has
    no ``series_description`` / ``series_number``."""
    uid = str(record.get('series_uid'))
    name, number = (record.get('series_description'),
                    record.get('series_number'))
    if name is None and number is None:
        return uid
    parts = ([] if number is None else [f'series number {number}'])
    return (f'{name} ' if name else '') + '(' + '; '.join(
        parts + [f'UID {uid}']) + ')'


#: What a validated FP rate counts, by ``fp_unit``, in plain words.
FP_UNIT_WORDS = {
    'scan': 'per scan',
    'sub-volume': 'per validation sub-volume (about per scan for scans '
    'like those)',
    'image': 'per 2D validation image (one key slice: on a whole scan that '
    'is per slice, not per scan)',
}


def stacking_text(settings: Mapping[str, Any]) -> str:
    """How the 2D boxes were stacked into findings, in plain words
    (``findings.json``'s ``settings``; a record without the lesion steps
    had none)."""
    get = settings.get
    parts = [f"IoU > {shown_number(get('iou_thr'))} on consecutive slices"]
    if get('max_gap'):
        parts.append(f"bridging up to {get('max_gap')} missed slice(s)")
    if get('contain_thr') is not None:
        parts.append(f"or a box {shown_number(100 * get('contain_thr'))} % "
                     'inside the last one')
    if get('join_gap') is not None:
        parts.append(f"fragments up to {get('join_gap')} slice(s) apart "
                     'joined')
    if get('merge_iou') is not None:
        parts.append('overlapping findings merged (3D IoU > '
                     f"{shown_number(get('merge_iou'))})")
    if get('merge_inside') is not None:
        parts.append('a finding lying more than '
                     f"{shown_number(100 * get('merge_inside'))} % inside "
                     'another merged into it')
    if (get('min_slices') or 1) > 1:
        parts.append(f"findings on fewer than {get('min_slices')} slices "
                     'dropped')
    return '; '.join(parts)


def kept_text(point: Mapping[str, Any], kept: int, candidates: int) -> str:
    """Which findings were kept and why, in plain words
    (``findings.json``'s ``operating_point``), numbers rounded and data
    named by file.

    Args:
        point (Mapping): the record (``source``, ``threshold``,
            ``fp_rate``, ``fp_unit``, ``sensitivity``, ``split``,
            ``epoch``).
        kept (int): the findings kept.
        candidates (int): every finding stacked (0: the kept ones are
            all, as :class:`~mmlesion.apis.whole_scan.results.Candidates`
            says).

    Returns:
        str: e.g. ``12 of 40 findings, at most 4 false positives per scan
        on validation (sensitivity 0.75; val.csv; epoch 3): every finding
        scoring 0.412 or more. All 40 are in candidates.csv.``
    """
    threshold = shown_number(point.get('threshold'))
    candidates = max(candidates, kept)
    head = f'{kept} of {candidates} findings'
    tail = f' All {candidates} are in candidates.csv.'
    if point.get('source') != 'validation':
        why = ('the --score-thr given' if point.get('source') == 'score-thr'
               else 'the checkpoint records no validated operating point '
               'to keep fewer')
        return f'{head}: every finding scoring {threshold} or more ({why}).' \
            + tail
    where = [f"sensitivity {shown_number(point['sensitivity'])}"
             if point.get('sensitivity') is not None else '',
             shown_name(point['split']) if point.get('split') else '',
             f"epoch {point['epoch']}" if point.get('epoch') is not None
             else '']
    where = '; '.join(w for w in where if w)
    unit = point.get('fp_unit') or 'image'
    return (f"{head}, at most {shown_number(point.get('fp_rate'))} false "
            f"positives {FP_UNIT_WORDS.get(unit, 'per ' + unit)} on "
            f"validation{f' ({where})' if where else ''}: every finding "
            f'scoring {threshold} or more.' + tail)


def dicom_text(dicom: Optional[Mapping[str, Any]]) -> str:
    """Whether the DICOM SR and SEG were written, and why not, in a
    sentence (``findings.json``'s ``dicom``; paths by their last part).

    Args:
        dicom (Mapping, optional): the record (``written``, ``reason``,
            ``sr``, ``seg``, ``seg_findings``, ``seg_reason``).

    Returns:
        str: e.g. ``SR findings_sr.dcm written; SEG findings_seg.dcm with
        the masks of 12 findings`` or ``...; no SEG: the model predicts no lesion
        masks ...``; empty without a record.
    """
    if not dicom:
        return ''
    if not dicom.get('written'):
        return ('SR and SEG not written: '
                + shown_name(dicom.get('reason') or 'unknown reason'))
    text = f"SR {dicom['sr']} written"
    if dicom.get('seg'):
        count = len(dicom.get('seg_findings', ()))
        return text + f"; SEG {dicom['seg']} with the masks of {count} " \
            'findings'
    return text + '; no SEG: ' + shown_name(dicom.get('seg_reason')
                                            or 'unknown reason')


#: The style of a model warning heading a page (a red box).
WARNING_STYLE = ('background: #fde2e2; border: 3px solid #c00000; color: '
                 '#900000; padding: 0.8em 1em; font-size: 1.3em; '
                 'margin-bottom: 1em')


def warning_banner(warning: str) -> str:
    """A model warning (e.g. demo weights) as the red box heading a page:
    ``report.html``, an archive's ``summary.html``."""
    return (f'<div class="model-warning" role="alert" style="{WARNING_STYLE}'
            f'"><b>Warning: model {html.escape(shown_name(warning))}.</b>'
            '</div>\n')


def voxel_range(low: float, high: float, size: int) -> Tuple[int, int]:
    """The first and last voxel (inclusive) a box side covers, from its
    edges in continuous voxels, clipped to the scan.

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
    """A single HTML file (images inlined as base64, no external assets),
    a ``model_warning`` of the record heading it in a red box.

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
    point = record.get('operating_point')
    kept = ('' if point is None else '<br><b>kept</b> ' + esc(kept_text(
        point, len(record['findings']), record['num_candidates'])))
    dicom = dicom_text(record.get('dicom'))
    dicom = f'<br><b>DICOM</b> {esc(dicom)}' if dicom else ''
    num = shown_number
    shown_title = shown_name(title, one_path=title == str(record['scan']))
    warning = record.get('model_warning')
    banner = warning_banner(warning) if warning else ''
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{esc(shown_title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #bbb; padding: 4px 8px; vertical-align: top;
          font-size: 13px; }}
img {{ display: block; max-width: none; height: auto; }}
tr.key-slice td {{ padding: 4px 0 16px; border-left: none;
                  border-right: none; }}
</style></head><body>
{banner}<h1>Lesion findings</h1>
<p><b>scan</b> {esc(shown_name(record['scan'], one_path=True))}<br>
<b>series</b> {esc(series_text(record))}<br>
<b>voxels</b> {shown_numbers(geo['shape_zyx'])} (z, y, x) at
{shown_numbers(geo['spacing_zyx'])} mm;
detector input: {settings['num_slices']} slices at
{num(settings['interval_mm'])} mm, {num(settings['pixel_spacing'])} mm/px
({esc(settings['pixel_spacing_source'])})<br>
<b>detection</b> {record['num_slices']} slices in
{num(record['detect_seconds'])} s ({num(record['slices_per_second'])}
slices/s); {record['num_boxes_2d']} 2D boxes (score &ge;
{num(settings['score_thr'])}) stacked into
{record.get('num_candidates', len(record['findings']))} findings
({esc(stacking_text(settings))}){kept}{dicom}</p>
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
