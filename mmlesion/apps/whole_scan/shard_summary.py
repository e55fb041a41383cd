# Copyright (c) mmlesion contributors. All rights reserved.
"""The merged outputs of a sharded batch
(:mod:`~mmlesion.apps.whole_scan.shards`; :func:`write_sharded_outputs`).
"""
import base64
import html
import io
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from mmlesion.apis.whole_scan.write import (output_paths,
                                            recorded_model_warnings)
from mmlesion.utils import atomic_save_with, atomic_write_text
from mmlesion.visualization.volume_report import warning_banner

from .batch import SUMMARY_NAME, write_csv

#: The merged findings table.
FINDINGS_TABLE = 'findings.csv'
#: The columns of ``OUT/findings.csv``.
FINDING_COLUMNS = ('scan', 'folder', 'finding', 'score', 'center_x_mm',
                   'center_y_mm', 'center_z_mm', 'first_slice', 'last_slice',
                   'largest_box_side_mm', 'recist_long_mm',
                   'recist_short_mm', 'lesion_type')


@dataclass
class ShardedRow:
    """One scan of a sharded run (a row of ``OUT/scans.csv``)."""
    scan: str
    folder: str
    shard: int
    status: str = 'queued'
    attempts: int = 0
    findings: Optional[int] = None
    best_score: str = ''
    slices: Optional[int] = None
    total_seconds: Optional[float] = None
    error: str = ''


#: The columns of ``OUT/scans.csv`` of a sharded run.
SHARDED_COLUMNS = tuple(f.name for f in fields(ShardedRow))


def shard_folder(shard: int) -> str:
    """The folder of a shard in ``OUT``."""
    return f'shard_{shard:03d}'


def scan_findings(out: Path, row: ShardedRow) -> List[dict]:
    """A finished scan's ``findings.json`` findings."""
    path = output_paths(out / shard_folder(row.shard) / row.folder).json
    return json.loads(Path(path).read_text(encoding='utf-8'))['findings']


def model_warnings(rows: Sequence[ShardedRow], out: Path) -> List[str]:
    """The ``model_warning`` s of the finished scans (e.g. demo weights),
    each once, in the rows' order."""
    return recorded_model_warnings(out / shard_folder(r.shard) / r.folder
                                   for r in rows if r.status == 'done')


def finding_records(rows: Sequence[ShardedRow],
                    out: Path) -> List[Dict[str, Any]]:
    """The rows of ``findings.csv``, scan by scan."""
    records = []
    for row in rows:
        if row.status != 'done':
            continue
        for f in scan_findings(out, row):
            recist = f.get('recist') or {}
            first, last = (f.get('slice_range_original') or ['', ''])[:2]
            centre = f.get('center_world') or ['', '', '']
            records.append(dict(
                scan=row.scan, folder=row.folder, finding=f.get('id'),
                score=f'{f["score"]:.4f}', center_x_mm=_mm(centre[0]),
                center_y_mm=_mm(centre[1]), center_z_mm=_mm(centre[2]),
                first_slice=first, last_slice=last,
                largest_box_side_mm=_mm(f.get('largest_box_side_mm')),
                recist_long_mm=_mm(recist.get('long_axis_mm')),
                recist_short_mm=_mm(recist.get('short_axis_mm')),
                lesion_type=f.get('lesion_type') or ''))
    return records


def _mm(value: Any) -> str:
    return '' if value in (None, '') else f'{float(value):.2f}'


def write_sharded_outputs(rows: Sequence[ShardedRow], out: Path) -> None:
    """``scans.csv``, ``findings.csv``, ``summary.png`` and
    ``summary.html``, each written atomically."""
    write_csv(out / SUMMARY_NAME, SHARDED_COLUMNS,
              [asdict(r) for r in rows])
    records = finding_records(rows, out)
    write_csv(out / FINDINGS_TABLE, FINDING_COLUMNS, records)
    warnings = model_warnings(rows, out)
    png = _summary_picture(rows, warnings)
    atomic_save_with(str(out / 'summary.png'),
                     lambda p: Path(p).write_bytes(png))
    atomic_write_text(str(out / 'summary.html'),
                      _summary_page(rows, len(records), png, warnings))


def _summary_picture(rows: Sequence[ShardedRow],
                     warnings: Sequence[str] = ()) -> bytes:
    """Findings per finished scan (bars) and the scans' status counts, a
    PNG of 1000 x 400 px (taller by a red line per model warning)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4 + .35 * len(warnings)), dpi=100)
    if warnings:
        fig.suptitle('\n'.join(f'WARNING: model {w}' for w in warnings),
                     color='#c00000', fontsize=13, fontweight='bold')
    ax_f, ax_s = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[3, 1]))
    done = [r for r in rows if r.status == 'done']
    ax_f.bar(range(len(done)), [r.findings or 0 for r in done],
             color='tab:blue')
    ax_f.set_xticks(range(len(done)))
    ax_f.set_xticklabels([r.folder for r in done], rotation=90 if
                         len(done) > 8 else 0, fontsize=12 if len(done) <= 8
                         else 9)
    ax_f.set_ylabel('findings kept', fontsize=12)
    ax_f.set_title('findings per scan', fontsize=13)
    statuses = ('done', 'failed')
    counts = [sum(r.status == s for r in rows) for s in statuses]
    ax_s.bar(statuses, counts, color=['tab:green', 'tab:red'])
    ax_s.set_title(f'{len(rows)} scans', fontsize=13)
    ax_s.tick_params(labelsize=12)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png')
    return buffer.getvalue()


def _summary_page(rows: Sequence[ShardedRow], num_findings: int,
                  png: bytes, warnings: Sequence[str] = ()) -> str:
    """A self-contained page: the model warnings (as the scans' reports
    head them), the picture and the scans' table."""
    esc = html.escape
    failed = [r for r in rows if r.status == 'failed']
    lines = [
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<title>Scans: summary</title></head><body>',
        *(warning_banner(w) for w in warnings),
        f'<h1>{len(rows)} scans: {len(rows) - len(failed)} done, '
        f'{len(failed)} failed; {num_findings} findings</h1>',
        '<img alt="findings per scan and status counts" '
        'src="data:image/png;base64,'
        + base64.b64encode(png).decode('ascii') + '">',
        '<table border="1" cellpadding="3"><tr>'
        + ''.join(f'<th>{c}</th>' for c in SHARDED_COLUMNS) + '</tr>']
    for row in rows:
        cells = {k: '' if v is None else v for k, v in asdict(row).items()}
        link = (f'<a href="{esc(shard_folder(row.shard))}/'
                f'{esc(row.folder)}/report.html">{esc(row.folder)}</a>'
                if row.status == 'done' else esc(row.folder))
        lines.append('<tr>' + ''.join(
            f'<td>{link if c == "folder" else esc(str(cells[c]))}</td>'
            for c in SHARDED_COLUMNS) + '</tr>')
    lines.append('</table></body></html>')
    return '\n'.join(lines) + '\n'


def format_sharded_summary(rows: Sequence[ShardedRow], out_dir: str) -> str:
    """The console's lines: the failed scans, the counts, the tables."""
    lines = [f'WARNING: model {w}'
             for w in model_warnings(rows, Path(out_dir))]
    lines += [f'failed   {r.scan}: {r.error}' for r in rows
              if r.status == 'failed']
    done = sum(r.status == 'done' for r in rows)
    lines.append(f'{len(rows)} scans: {done} done, {len(rows) - done} '
                 f'failed; {os.path.join(out_dir, SUMMARY_NAME)}, '
                 f'{os.path.join(out_dir, FINDINGS_TABLE)}, '
                 f'{os.path.join(out_dir, "summary.html")}')
    return '\n'.join(lines)
