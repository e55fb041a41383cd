# Copyright (c) mmlesion contributors. All rights reserved.
"""The finishing's code before 2026-11-26, for ``benchmark_infer_scans.py``.

Holds the key-slice picture as it was drawn before
:class:`~mmlesion.visualization.volume_report.KeySliceCanvas`
(:func:`old_key_slice_figure`, a figure per finding; :class:`OldKeySlices`),
the undoing of each change of the finishing while in a block (the
``old_code`` schedule: :func:`old_code`), the timing of each change on one
scan, old and new in turn (``--change-rounds``: :data:`CHANGES`,
:func:`time_changes`) and the check that two batch folders hold the same
findings and pictures (:func:`same_files`).
"""
import contextlib
import json
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, Optional, Tuple

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def old_key_slice_figure(volume, finding: dict, window: Tuple[float, float],
                         warning: Optional[str] = None) -> 'Figure':
    """The key-slice picture as it was drawn before
    :class:`~mmlesion.visualization.volume_report.KeySliceCanvas`: a new
    figure and axes per finding (the same pixels, tested)."""
    from matplotlib.patches import Rectangle

    from mmlesion.datasets.transforms.windowing import window_hu
    from mmlesion.visualization.pixel_figure import (font_pt, pixel_figure,
                                                     pixel_transform)
    from mmlesion.visualization.recist_axes import draw_recist_axes
    from mmlesion.visualization.text_stamp import paste_text
    from mmlesion.visualization.volume_report import (KEY_SLICE_SIZE_PX,
                                                      KEY_SLICE_TEXT_PX,
                                                      _box_on_slice,
                                                      describe_size)
    rec = finding.get('recist')
    z = int(rec['key_slice'] if rec else finding['key_slice'])
    img = window_hu(volume.array[z], window, (0., 1.))
    box, score = _box_on_slice(finding, z)
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
    x, y, zw = finding['center_world']
    lines = [
        f"finding {finding['id']}: score {finding['score']:.3f}, world "
        f"({x:.1f}, {y:.1f}, {zw:.1f}) mm", describe_size(finding),
        f"slices {finding['slice_range_original'][0]}-"
        f"{finding['slice_range_original'][1]} of the scan; drawn: "
        f"resampled slice {z}, 2D score {score:.3f}"]
    if warning:
        paste_text(fig, f'WARNING: model {warning}', width / 2., 6.,
                   KEY_SLICE_TEXT_PX, color='#b00000', weight='bold')
    fig.text(width / 2., top - 4., '\n'.join(lines),
             transform=pixel_transform(fig), fontsize=pt, ha='center',
             va='bottom', linespacing=1.25)
    return fig


class OldKeySlices:
    """:class:`~mmlesion.visualization.volume_report.KeySliceCanvas` as
    the pictures were drawn before it: :func:`old_key_slice_figure` per
    finding, saved as ``savefig`` does by default (zlib level 6)."""

    def __init__(self, volume, window: Tuple[float, float],
                 warning: Optional[str] = None) -> None:
        self.volume, self.window, self.warning = volume, window, warning

    def draw(self, finding: dict, path: Path) -> None:
        fig = old_key_slice_figure(self.volume, finding, self.window,
                                   self.warning)
        fig.savefig(str(path), dpi=fig.dpi)


@contextlib.contextmanager
def old_code(pictures: bool = True, png_level: bool = True,
             records: bool = True) -> Iterator[None]:
    """The finishing's code before 2026-11-26 while in the block: a new
    figure per key slice (``pictures``), PNGs at zlib's default level 6
    (``png_level``), findings' records copied by ``dataclasses.asdict``
    (``records``). The same files (pixels and findings), tested."""
    from dataclasses import asdict

    import mmlesion.visualization.pixel_figure as pixel_figure
    import mmlesion.visualization.volume_report as volume_report
    from mmlesion.apis.whole_scan import results
    patches = []
    if pictures:
        patches.append((volume_report, 'KeySliceCanvas', OldKeySlices))
    if png_level:
        patches.append((pixel_figure, 'PNG_COMPRESS_LEVEL', 6))
    if records:
        patches.append((results._Record, 'to_dict',
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


#: Each change of the finishing timed by :func:`time_changes`: name ->
#: the :func:`old_code` keywords of its old and its new way (the other
#: changes kept).
CHANGES = {
    'one figure for the key slices (KeySliceCanvas)': (
        dict(pictures=True), dict()),
    'PNGs at zlib level 1': (dict(png_level=True), dict()),
    'records without asdict': (dict(records=True), dict()),
    'all three': (dict(pictures=True, png_level=True, records=True),
                  dict()),
}


def time_changes(result, volume, run_info, folder: Path,
                 rounds: int) -> Dict[str, dict]:
    """Write one measured scan's files (``write_scan``) with each change of
    :data:`CHANGES` undone and done, in turn, ``rounds`` times: the CPU
    seconds of each (medians), their ratio (old / new, median of the
    rounds' ratios) and whether both wrote the same findings and pictures
    (:func:`same_files`). Only this process runs: CPU seconds are this
    process's."""
    from mmlesion.apis.whole_scan.run import write_scan
    keep = dict(pictures=False, png_level=False, records=False)
    seconds = {name: ([], [], []) for name in CHANGES}
    for round_ in range(rounds):
        for name, ways in CHANGES.items():
            for i, way in enumerate(ways):
                with old_code(**{**keep, **way}):
                    cpu = time.process_time()
                    write_scan(result, volume, run_info,
                               str(folder / f'{round_}_{i}' / 'scan'), True)
                    seconds[name][i].append(time.process_time() - cpu)
            same = same_files(folder / f'{round_}_0', folder / f'{round_}_1')
            seconds[name][2].append(all(same))
    return {name: dict(
        old=round(statistics.median(old), 3),
        new=round(statistics.median(new), 3),
        old_over_new=round(statistics.median(
            a / b for a, b in zip(old, new)), 3),
        same_files=all(same))
        for name, (old, new, same) in seconds.items()}


def same_files(a: Path, b: Path) -> Tuple[bool, bool]:
    """Whether two batch folders hold the same findings (``findings.json``
    's findings, RECIST included) and pictures of the same pixels, scan by
    scan."""
    import numpy as np
    from PIL import Image
    findings = pictures = True
    for folder in sorted(p for p in a.iterdir() if p.is_dir()):
        other = b / folder.name

        def listed(path: Path) -> list:
            return json.loads((path / 'findings.json').read_text())[
                'findings']

        findings &= listed(folder) == listed(other)
        pngs = sorted(p.relative_to(folder) for p in folder.rglob('*.png'))
        pictures &= pngs == sorted(
            p.relative_to(other) for p in other.rglob('*.png'))
        for rel in pngs if pictures else ():
            pictures &= np.array_equal(
                np.asarray(Image.open(folder / rel)),
                np.asarray(Image.open(other / rel)))
    return findings, pictures
