# Copyright (c) mmlesion contributors. All rights reserved.
"""The picture of a dataset fingerprint
(:class:`~mmlesion.apps.own_data.fingerprint.DatasetFingerprint`):
HU, lesion sizes, spacings and counts per split above, lesion crops below."""
import numpy as np

from mmlesion.apps.own_data.fingerprint import (HU_BIN_EDGES,
                                                DatasetFingerprint)
from mmlesion.utils.writing.atomic import atomic_save_with

#: Split colours of the histograms.
_COLOURS = dict(train='tab:blue', val='tab:orange', test='tab:green')
_FONT = 11


def _hist(ax, values, label, colour, bins=20):
    if len(values):
        ax.hist(values, bins=bins, alpha=.6, label=label, color=colour)


def _intensities(ax, fp: DatasetFingerprint) -> None:
    every = fp.splits['all']
    centres = (HU_BIN_EDGES[:-1] + HU_BIN_EDGES[1:]) / 2
    for name, counts, colour in (
            ('inside lesions', every.hu_histogram_inside, 'tab:red'),
            ('outside', every.hu_histogram_outside, 'tab:gray')):
        counts = np.asarray(counts, np.float64)
        if counts.sum():
            ax.plot(centres, counts / counts.sum(), label=name, color=colour)
    ax.set_xlim(-1024, 1200)
    ax.set_xlabel('HU', fontsize=_FONT)
    ax.set_ylabel('share of voxels', fontsize=_FONT)
    ax.set_title('Intensities', fontsize=_FONT + 1)


def _sizes(ax, fp: DatasetFingerprint) -> None:
    for name, split in fp.splits.items():
        if name in _COLOURS and split.lesion_extents_zyx_mm:
            ext = np.asarray(split.lesion_extents_zyx_mm)
            _hist(ax, ext[:, 1:].max(1), f'{name} in-plane', _COLOURS[name])
    ax.set_xlabel('lesion extent, larger of y and x (mm)', fontsize=_FONT)
    ax.set_ylabel('lesions', fontsize=_FONT)
    ax.set_title('Lesion sizes', fontsize=_FONT + 1)


def _spacings(ax, fp: DatasetFingerprint) -> None:
    spacing = np.asarray(fp.splits['all'].scan_spacings_zyx_mm)
    _hist(ax, spacing[:, 0], 'slice thickness (z)', 'tab:purple', 15)
    _hist(ax, spacing[:, 2], 'in-plane (x)', 'tab:olive', 15)
    ax.set_xlabel('mm', fontsize=_FONT)
    ax.set_ylabel('scans', fontsize=_FONT)
    ax.set_title('Spacings', fontsize=_FONT + 1)


def _counts(ax, fp: DatasetFingerprint) -> None:
    ax.axis('off')
    lines = [f'{fp.dataset or "dataset"}: {", ".join(fp.classes)}', '']
    for name, split in fp.splits.items():
        med = (f'{split.lesion_diameter_mm.at(50):.1f} mm'
               if split.num_lesions else '-')
        lines.append(f'{name:<5} {split.num_scans:>5} scans '
                     f'{split.num_lesions:>6} lesions, median {med}')
    every = fp.splits['all']
    lines += ['', 'orientations: ' + ', '.join(
        f'{k} {v}' for k, v in every.orientations.items())]
    if every.hu_inside.n:
        lines.append('HU in lesions, 0.5-99.5th pct: '
                     f'{every.hu_inside.at(0.5):.0f} .. '
                     f'{every.hu_inside.at(99.5):.0f}')
    ax.text(0, 1, '\n'.join(lines), va='top', family='monospace',
            fontsize=_FONT)


def _montage(ax, fp: DatasetFingerprint) -> None:
    ax.axis('off')
    ax.set_title('Lesions, central axial slice (box and half its size '
                 'around it), smallest to largest', fontsize=_FONT + 1)
    if not fp.crops:
        ax.text(.5, .5, 'no lesions', ha='center', fontsize=_FONT)
        return
    inside = fp.splits['all'].hu_inside
    lo, hi = (inside.at(0.5), inside.at(99.5)) if inside.n else (-200, 300)
    lo, hi = lo - (hi - lo) / 2, hi + (hi - lo) / 2
    cols = 8
    rows = -(-len(fp.crops) // cols)
    px = fp.crops[0].hu.shape[0]
    tiles = np.zeros((rows * px, cols * px), np.float32)
    for k, crop in enumerate(fp.crops):
        r, c = divmod(k, cols)
        tiles[r * px:(r + 1) * px, c * px:(c + 1) * px] = np.clip(
            (crop.hu - lo) / max(hi - lo, 1.), 0, 1)
        ax.text(c * px + 2, r * px + 2, f'{crop.diameter_mm:.0f} mm '
                f'{crop.split}', color='yellow', va='top', fontsize=10)
    ax.imshow(tiles, cmap='gray', vmin=0, vmax=1)


def draw_fingerprint(fp: DatasetFingerprint, path: str) -> None:
    """Draw ``fp`` into the PNG ``path`` (written whole or not at all).

    Args:
        fp (DatasetFingerprint): with its ``crops`` for the montage.
        path (str): the PNG.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(20, 10), dpi=100, layout='constrained')
    grid = fig.add_gridspec(2, 4, height_ratios=(1, 1.1))
    for k, draw in enumerate((_intensities, _sizes, _spacings, _counts)):
        ax = fig.add_subplot(grid[0, k])
        draw(ax, fp)
        ax.tick_params(labelsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=10)
    _montage(fig.add_subplot(grid[1, :]), fp)
    fig.suptitle(f'Fingerprint of {fp.ann_file}', fontsize=_FONT + 2)
    atomic_save_with(path, lambda p: fig.savefig(p, format='png'))
