# Copyright (c) mmlesion contributors. All rights reserved.
"""A whole-scan result without a model, and the text of the pictures
matplotlib saves, for the tests of the whole-scan pictures.

:func:`crowded_scan_result` stacks made-up 2D boxes on a small synthetic
volume with the real :func:`~mmlesion.apis.whole_scan.stack.
stack_findings` (so the findings' voxel boxes, slice ranges and world
coordinates are the library's): a dense cluster of findings in the middle,
a few apart, and one that starts on the scan's first slice.

:func:`record_saved_pictures` watches ``Figure.savefig``,
``KeySliceRaster.draw`` and ``OverviewRaster.draw`` and keeps, per saved
file name, every text drawn with its size in pixels of the saved PNG (for
a figure, the font size in points times the saving dpi / 72): what a
reader sees at the picture's natural size; for a picture drawn as pixels,
also the pixels saved and what drew them.
"""
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from mmlesion.apis.whole_scan.results import (ConfigRecord,
                                              RecistMeasurement,
                                              RunProvenance, ScanGeometry,
                                              ScanResult, SoftwareVersions)
from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                               VolumeInferenceSettings)
from mmlesion.apis.whole_scan.stack import stack_findings
from mmlesion.datasets.volumes import CTVolume

#: The provenance of a run that records nothing (random weights, no config
#: file): a result with it is a run's result (``model_warning`` written).
BARE_PROVENANCE = RunProvenance(None, ConfigRecord(None, '', ''),
                                SoftwareVersions(*[''] * 6))
#: Findings in the dense cluster of :func:`crowded_scan_result`.
CLUSTER = 16


def crowded_scan_result(model_warning: Optional[str] = None,
                        size: int = 128, num_slices: int = 24,
                        seed: int = 0) -> ScanResult:
    """A :class:`ScanResult` of a small synthetic volume (a body ellipse of
    soft tissue in air), without running a model.

    Finding 1 lies on the scan's first slices (its box's low z edge is -0.5
    in continuous voxels) and has RECIST axes; then, by decreasing score,
    :data:`CLUSTER` small ones crowded in the middle of the body and six
    apart.

    Args:
        model_warning (str, optional): the result's ``model_warning``.
        size (int): the slices' side, voxels.
        num_slices (int): slices.
        seed (int): of the boxes' places, sizes and scores.

    Returns:
        ScanResult: with ``resampled`` (the volume itself) and a
        ``provenance`` (a run's result, so ``model_warning`` is recorded).
    """
    rng = np.random.default_rng(seed)
    array = np.full((num_slices, size, size), -1000., np.float32)
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - size / 2) / (.4 * size))**2 + (
        (xx - size / 2) / (.45 * size))**2 < 1
    array[:, body] = 40.
    volume = CTVolume(array, (2., .8, .8), (-50., -50., -200.))
    c = size / 2.
    specs = [(c + rng.uniform(-8, 8), c + rng.uniform(-8, 8),
              rng.uniform(2., 4.), int(rng.integers(4, num_slices - 6)))
             for _ in range(CLUSTER)]
    specs += [(rng.uniform(.25, .75) * size, rng.uniform(.25, .75) * size,
               rng.uniform(2., 5.), int(rng.integers(2, num_slices - 4)))
              for _ in range(6)]
    scores = list(rng.permutation(np.linspace(.3, .98, len(specs))))
    specs.append((.3 * size, .3 * size, 5., 0))  # from the first slice on
    scores.append(.99)
    boxes = [np.zeros((0, 4)) for _ in range(num_slices)]
    slice_scores = [np.zeros(0) for _ in range(num_slices)]
    for (x, y, r, z0), s in zip(specs, scores):
        for z in range(z0, z0 + 3):
            boxes[z] = np.vstack([boxes[z], [[x - r, y - r, x + r, y + r]]])
            slice_scores[z] = np.append(slice_scores[z], s)
    findings = stack_findings(boxes, slice_scores, volume, volume,
                              DetectionSettings(score_thr=.05)).kept
    best = findings[0]
    z = best.key_slice
    x1, y1, x2, y2 = next(b.bbox for b in best.boxes_2d if b.slice == z)
    long_axis = [[x1 + .5, y1 + .5], [x2 - .5, y2 - .5]]
    short_axis = [[x1 + .5, y2 - .5], [x2 - .5, y1 + .5]]
    best.recist = RecistMeasurement(
        long_axis_mm=6.1, short_axis_mm=5.2, area_mm2=22.,
        mask_source='grabcut', key_slice=z, key_slice_original=z,
        long_axis_voxel=long_axis, short_axis_voxel=short_axis,
        outline_voxel=long_axis + short_axis,
        long_axis_resampled=long_axis, short_axis_resampled=short_axis)
    geometry = ScanGeometry.from_volume(volume)
    return ScanResult(
        scan='chest.nii.gz', series_uid='1.2.3', original=geometry,
        resampled_geometry=geometry,
        settings=VolumeInferenceSettings(3, 2., .8, (-1024., 1050.),
                                         [dict(type='LoadVolumeSlices')]),
        detection=DetectionSettings(), device='cpu',
        num_slices=num_slices, num_boxes_2d=3 * len(specs),
        detect_seconds=1., slices_per_second=float(num_slices),
        findings=findings, model_warning=model_warning,
        provenance=BARE_PROVENANCE, resampled=volume)


@dataclass
class SavedText:
    """A text of a saved picture.

    Args:
        text (str): what it says.
        px (float): its font size in pixels of the saved PNG.
        artist (matplotlib.text.Text, optional): the artist (None for a
            pasted text or one drawn as pixels).
        box (tuple, optional): its extent ``(x1, y1, x2, y2)`` in pixels
            of the PNG from the top left, where the picture recorded it
            (the overview drawn as pixels).
    """
    text: str
    px: float
    artist: Optional[object]
    box: Optional[Tuple[float, float, float, float]] = None


@dataclass
class SavedPicture:
    """A picture as ``savefig``, ``KeySliceRaster.draw`` or
    ``OverviewRaster.draw`` wrote it.

    Args:
        figure (Figure, optional): the figure (drawn); None for a picture
            drawn as pixels.
        dpi (float): the saving dpi (1 for pixels).
        texts (list[SavedText]): its visible, non-empty texts.
        pixels (np.ndarray, optional): the saved PNG's RGB pixels (the
            overview drawn as pixels).
        drawer (object, optional): the ``OverviewRaster`` that drew it
            (its panels, tags and colour scale).
    """
    figure: object
    dpi: float
    texts: List[SavedText] = field(default_factory=list)
    pixels: Optional[np.ndarray] = None
    drawer: Optional[object] = None

    @property
    def smallest_text_px(self) -> float:
        """The smallest font size drawn, pixels of the PNG."""
        return min(t.px for t in self.texts)


def _drawn_texts(fig, dpi: float) -> List[SavedText]:
    """The visible texts: matplotlib's, and those drawn once and pasted
    (``matplotlib_pictures.paste_text`` of the benchmarks, at the
    figure's dpi)."""
    from matplotlib.text import Text
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        out.append(SavedText(t.get_text(), t.get_fontsize() * dpi / 72., t))
    try:
        from projects.benchmarks.matplotlib_pictures import pasted_texts
    except ImportError:  # the code before the pasted texts
        return out
    out += [SavedText(text, px * dpi / fig.dpi, None)
            for text, px in pasted_texts(fig)]
    return out


@contextlib.contextmanager
def record_saved_pictures(monkeypatch) -> Iterator[Dict[str, SavedPicture]]:
    """Record every figure saved by ``Figure.savefig``, every key slice
    drawn by ``KeySliceRaster.draw`` and every overview drawn by
    ``OverviewRaster.draw`` meanwhile.

    Yields:
        dict: file name (``overview.png``, ``finding_001.png``) ->
        :class:`SavedPicture`.
    """
    from matplotlib.figure import Figure

    from mmlesion.visualization.key_slice_raster import KeySliceRaster
    try:
        from mmlesion.visualization.overview_raster import OverviewRaster
    except ImportError:  # the code before: the overview by matplotlib
        OverviewRaster = None
    saved: Dict[str, SavedPicture] = {}
    original = Figure.savefig
    original_draw = KeySliceRaster.draw
    original_overview = OverviewRaster and OverviewRaster.draw

    def record(raster, path, pixels: Optional[np.ndarray] = None) -> None:
        saved[Path(str(path)).name] = SavedPicture(
            None, 1., [SavedText(t.text, t.px, None, t.box)
                       for t in raster.texts], pixels,
            None if pixels is None else raster)

    def draw(raster, finding, path, *args, **kwargs):
        result = original_draw(raster, finding, path, *args, **kwargs)
        record(raster, path)
        return result

    def draw_overview(raster, findings, path, *args, **kwargs):
        original_overview(raster, findings, path, *args, **kwargs)
        from PIL import Image
        with Image.open(path) as image:
            record(raster, path, np.asarray(image.convert('RGB')))

    def savefig(fig, fname, *args, **kwargs):
        result = original(fig, fname, *args, **kwargs)
        dpi = kwargs.get('dpi', 'figure')
        dpi = fig.dpi if dpi in (None, 'figure') else float(dpi)
        saved[Path(str(fname)).name] = SavedPicture(
            fig, dpi, _drawn_texts(fig, dpi))
        return result

    with monkeypatch.context() as patch:
        patch.setattr(Figure, 'savefig', savefig)
        patch.setattr(KeySliceRaster, 'draw', draw)
        if OverviewRaster is not None:
            patch.setattr(OverviewRaster, 'draw', draw_overview)
        yield saved


def drawn_over(pixels: np.ndarray, background: np.ndarray,
               color: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """How much of ``color`` each pixel shows over its background, as an
    anti-aliased line or a tag leaves it (``pixel = background + a *
    (color - background)``).

    Args:
        pixels (np.ndarray): ``(..., 3)`` RGB of the picture.
        background (np.ndarray): the same pixels with nothing drawn.
        color (Sequence[int]): RGB drawn.

    Returns:
        tuple[np.ndarray, np.ndarray]: per pixel, ``a`` (least squares;
        0 where the colour is the background's) and what ``a`` leaves
        unexplained (the largest channel's difference, grey levels).
    """
    p = np.asarray(pixels, np.float64)
    b = np.asarray(background, np.float64)
    towards = np.asarray(color, np.float64) - b
    norm = (towards**2).sum(-1)
    a = np.where(norm > 0, ((p - b) * towards).sum(-1) / np.maximum(norm, 1),
                 0.)
    left = np.abs(p - b - a[..., None] * towards).max(-1)
    return a, left
