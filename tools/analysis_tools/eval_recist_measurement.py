# Copyright (c) mmlesion contributors. All rights reserved.
"""How well the RECIST axes of ``infer_volume`` agree with radiologists.

For every lesion of ``DL_info*.csv`` whose key slice PNG is present, the
mask is grown inside the ground-truth box exactly as for a detected
finding without a model mask
(:func:`mmlesion.apis.whole_scan.measure.measure_lesion`), its long and
short axis are measured (:func:`mmlesion.structures.recist.
recist_diameters`) and compared with the radiologist's RECIST diameters
(``Lesion_diameters_Pixel_`` x ``Spacing_mm_px_``). Prints a table (mean
absolute error in mm and %, bias and Bland-Altman 95 % limits of agreement)
and writes a Bland-Altman picture, a per-lesion CSV and a picture of
example lesions with both pairs of axes.

Example::

    python tools/analysis_tools/eval_recist_measurement.py \\
        --data-root data/DeepLesion \\
        --out-dir work_dirs/recist_measurement
"""
import argparse
import csv
import glob
import os
import os.path as osp
import sys
from typing import TYPE_CHECKING, List

import numpy as np

from mmlesion_cli import tool_parser

if TYPE_CHECKING:
    from mmlesion.datasets.deeplesion.dl_info import DLInfoRecord

AXES = ('long', 'short')


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--data-root', required=True,
                        help='DeepLesion root: annotations/DL_info*.csv and '
                        'Images_png/')
    parser.add_argument('--out-dir', required=True,
                        help='for bland_altman.png and lesions.csv')
    parser.add_argument('--dpi', type=int, default=100,
                        help='resolution of the pictures (their text is 10 pt '
                        'or more: keep it 100 or more)')
    parser.add_argument(
        '--examples', type=int, default=3,
        help='lesions drawn in examples.png (both axes, ours and the '
        "radiologist's; the median-error ones); 0: none")
    return parser.parse_args(argv)


def find_lesions(data_root: str) -> List['DLInfoRecord']:
    """Lesions of every ``annotations/DL_info*.csv`` with their PNG."""
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
    csvs = sorted(glob.glob(osp.join(data_root, 'annotations',
                                     'DL_info*.csv')))
    if not csvs:
        raise FileNotFoundError(f'{data_root}: no annotations/DL_info*.csv')
    seen, out = set(), []
    for path in csvs:
        for rec in parse_dl_info(path, duplicate_rows='drop'):
            key = (rec.file_name, rec.bbox)
            png = osp.join(data_root, 'Images_png', rec.series_name,
                           rec.slice_file)
            if key not in seen and osp.isfile(png):
                seen.add(key)
                out.append(rec)
    return out


def measure(data_root: str, lesions: List['DLInfoRecord']) -> List[dict]:
    """Measure every lesion from its ground-truth box (one row each)."""
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis.whole_scan.measure import measure_lesion
    from mmlesion.datasets.deeplesion.png_slices import read_hu_png
    rows = []
    for rec in lesions:
        png = osp.join(data_root, 'Images_png', rec.series_name,
                       rec.slice_file)
        hu = read_hu_png(png)
        sp = (rec.spacing[0], rec.spacing[1])
        measured = measure_lesion(hu, rec.bbox, sp)
        diam, source = measured.diameters, measured.source
        if diam is None:
            raise ValueError(f'{png}: the box {rec.bbox} of row {rec.row} '
                             'lies outside the slice')
        ref_long, ref_short = rec.diameters_mm
        rows.append(dict(file_name=rec.file_name, row=rec.row,
                         source=source, ref_long=ref_long,
                         ref_short=ref_short, long=diam.long_mm,
                         short=diam.short_mm))
        rows[-1]['_draw'] = (png, rec, diam)
    return rows


def summarise(rows: List[dict]) -> List[dict]:
    """Per axis: n, MAE (mm, %), bias and the 95 % limits of agreement."""
    out = []
    for axis in AXES:
        ours = np.array([r[axis] for r in rows])
        ref = np.array([r['ref_' + axis] for r in rows])
        diff = ours - ref
        sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.
        out.append(dict(
            axis=axis, n=len(rows), mae_mm=float(np.abs(diff).mean()),
            mae_pct=float((np.abs(diff) / ref).mean() * 100),
            median_ae_mm=float(np.median(np.abs(diff))),
            bias_mm=float(diff.mean()),
            loa_mm=(float(diff.mean() - 1.96 * sd),
                    float(diff.mean() + 1.96 * sd)),
            ref_mean_mm=float(ref.mean())))
    return out


def format_table(stats: List[dict], rows: List[dict]) -> str:
    """The summary as a Markdown table."""
    sources = {}
    for r in rows:
        sources[r['source']] = sources.get(r['source'], 0) + 1
    lines = [
        '| axis | lesions | radiologist mean (mm) | MAE (mm) | MAE (%) | '
        'median AE (mm) | bias (mm) | 95 % limits of agreement (mm) |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |'
    ]
    for s in stats:
        lo, hi = s['loa_mm']
        lines.append(
            f"| {s['axis']} | {s['n']} | {s['ref_mean_mm']:.1f} | "
            f"{s['mae_mm']:.2f} | {s['mae_pct']:.1f} | "
            f"{s['median_ae_mm']:.2f} | {s['bias_mm']:+.2f} | "
            f'{lo:+.1f} to {hi:+.1f} |')
    lines.append('masks: ' + ', '.join(f'{k} {v}'
                                       for k, v in sorted(sources.items())))
    return '\n'.join(lines)


#: the smallest text of the pictures, points (saved at ``--dpi``, at least
#: 100: a point is a pixel or more on the saved picture)
FONT_PT = 10


def _save(fig, path: str, dpi: int) -> None:
    """Write the figure whole or not at all."""
    from mmlesion.utils.writing.atomic import atomic_save_with
    atomic_save_with(path, lambda f: fig.savefig(f, dpi=dpi, format='png'))


def bland_altman_figure(rows: List[dict], stats: List[dict]):
    """Bland-Altman plots of both axes (a matplotlib ``Figure``, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, s in zip(axes, stats):
        axis = s['axis']
        ours = np.array([r[axis] for r in rows])
        ref = np.array([r['ref_' + axis] for r in rows])
        ax.scatter((ours + ref) / 2, ours - ref, s=14, c='tab:blue')
        ax.axhline(s['bias_mm'], color='k', lw=1,
                   label=f"bias {s['bias_mm']:+.1f} mm")
        for v in s['loa_mm']:
            ax.axhline(v, color='k', ls='--', lw=.8)
        ax.axhline(0, color='grey', lw=.5)
        ax.set_xlabel(f'mean of measured and radiologist {axis} axis (mm)',
                      fontsize=FONT_PT)
        ax.set_ylabel('measured - radiologist (mm)', fontsize=FONT_PT)
        ax.tick_params(labelsize=FONT_PT)
        ax.set_title(f"{axis} axis: MAE {s['mae_mm']:.1f} mm "
                     f"({s['mae_pct']:.0f} %), n={s['n']}",
                     fontsize=FONT_PT + 1)
        ax.legend(fontsize=FONT_PT, loc='upper left')
    fig.tight_layout()
    return fig


def bland_altman(rows: List[dict], stats: List[dict], path: str,
                 dpi: int = 100) -> None:
    """Save :func:`bland_altman_figure` as a PNG."""
    _save(bland_altman_figure(rows, stats), path, dpi)


def examples_figure(rows: List[dict], num: int):
    """The ``num`` lesions nearest the median long-axis error: key slice
    crop, ground-truth box, measured axes (solid, red / blue) and the
    radiologist's (dashed, yellow); a matplotlib ``Figure`` (Agg)."""
    import matplotlib.patches
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.datasets.deeplesion.png_slices import read_hu_png
    from mmlesion.datasets.transforms.windowing import window_hu
    from mmlesion.visualization.recist_axes import draw_recist_axes
    err = np.array([abs(r['long'] - r['ref_long']) for r in rows])
    order = np.argsort(np.abs(err - np.median(err)))[:num]
    fig = Figure(figsize=(3.8 * len(order), 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(order), squeeze=False)
    for ax, i in zip(axes[0], order):
        png, rec, diam = rows[i]['_draw']
        hu = read_hu_png(png)
        x1, y1, x2, y2 = rec.bbox
        half = max(x2 - x1, y2 - y1) * .9 + 8
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ax.imshow(window_hu(hu, (-160., 240.), (0., 1.)), cmap='gray',
                  vmin=0, vmax=1, interpolation='nearest')
        ax.add_patch(matplotlib.patches.Rectangle(
            (x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor='lime',
            linewidth=1))
        pts = np.asarray(rec.recist)
        for a, b in ((0, 1), (2, 3)):
            ax.plot(pts[[a, b], 0], pts[[a, b], 1], '--', color='yellow',
                    linewidth=1.2)
        draw_recist_axes(ax, dict(
            long_axis_mm=diam.long_mm, short_axis_mm=diam.short_mm,
            long_axis_resampled=diam.long_axis.tolist(),
            short_axis_resampled=diam.short_axis.tolist()),
            fontsize=FONT_PT)
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy + half, cy - half)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{rec.file_name}\nradiologist {rows[i]['ref_long']:.1f}"
                     f" x {rows[i]['ref_short']:.1f} mm (dashed)",
                     fontsize=FONT_PT)
    fig.tight_layout(rect=(0, 0, 1, .96))  # room for the two-line titles
    return fig


def draw_examples(rows: List[dict], num: int, path: str,
                  dpi: int = 100) -> None:
    """Save :func:`examples_figure` as a PNG."""
    _save(examples_figure(rows, num), path, dpi)


def write_rows(rows: List[dict], path: str) -> None:
    """Per-lesion CSV (written atomically)."""
    tmp = path + '.tmp'
    with open(tmp, 'w', newline='') as f:
        fields = [k for k in rows[0] if not k.startswith('_')]
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator='\n')
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f'{r[k]:.3f}' if isinstance(r[k], float)
                                 else r[k]) for k in fields})
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    try:
        lesions = find_lesions(args.data_root)
        if not lesions:
            raise FileNotFoundError(
                f'{args.data_root}: no lesion of DL_info*.csv has its key '
                'slice under Images_png/')
        rows = measure(args.data_root, lesions)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    stats = summarise(rows)
    png = osp.join(args.out_dir, 'bland_altman.png')
    bland_altman(rows, stats, png, args.dpi)
    write_rows(rows, osp.join(args.out_dir, 'lesions.csv'))
    if args.examples > 0:
        draw_examples(rows, args.examples,
                      osp.join(args.out_dir, 'examples.png'), args.dpi)
    print(f'{len(rows)} lesions on '
          f'{len({r["file_name"] for r in rows})} key slices '
          f'({args.data_root})')
    print(format_table(stats, rows))
    print(f'picture: {png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
