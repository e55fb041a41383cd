# Copyright (c) mmlesion contributors. All rights reserved.
"""The benchmark's earlier key-slice code draws what it drew: one
matplotlib figure for a scan's key slices
(``MatplotlibKeySlices``, 2026-11-26) draws the pictures of a figure per
finding (``old_key_slice_figure``, before it) pixel for pixel, and PNGs at
zlib level 1 hold the pixels of the default level; so the benchmark's
``matplotlib`` and ``old_code`` schedules time the code they name."""
import copy
import io

import numpy as np
from PIL import Image

from mmlesion.apis.whole_scan.model import DEMO_MODEL_WARNING
from projects.benchmarks.matplotlib_pictures import save_png
from tests.helpers.scan_pictures import crowded_scan_result
from tests.helpers.tool_modules import load_tool

WINDOW = (-1024., 1050.)


def _old():
    return load_tool('projects/benchmarks/infer_scans_changes.py')


def _pixels(fig, **kwargs) -> np.ndarray:
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=fig.dpi, **kwargs)
    buffer.seek(0)
    return np.asarray(Image.open(buffer))


def _findings(result) -> list:
    """Six findings: with RECIST axes (the first), without, and one whose
    box sticks out of the slice."""
    findings = [f.to_dict() for f in result.findings[:5]]
    out = copy.deepcopy(findings[2])
    for box in out['boxes_2d']:
        box['bbox'] = [-6., -4., 20., 15.]
    return findings + [out]


def test_one_figure_draws_the_pictures_of_a_figure_per_finding():
    old = _old()
    for warning in (DEMO_MODEL_WARNING, None):
        result = crowded_scan_result(warning)
        findings = _findings(result)
        assert findings[0].get('recist') and not findings[1].get('recist')
        canvas = old.MatplotlibKeySlices(result.resampled, WINDOW, warning)
        # RECIST after none, none after RECIST, RECIST after RECIST
        order = findings + [findings[0], findings[0], findings[3]]
        for finding in order:
            before = _pixels(old.old_key_slice_figure(
                result.resampled, finding, WINDOW, warning))
            now = _pixels(canvas.show(finding))
            assert now.shape == before.shape == (440, 720, 4)
            assert np.array_equal(now, before), (warning, finding['id'])


def test_a_finding_without_recist_leaves_no_legend_behind():
    result = crowded_scan_result()
    findings = _findings(result)
    canvas = _old().MatplotlibKeySlices(result.resampled, WINDOW)
    fig = canvas.show(findings[0])
    assert all(ax.get_legend() is not None for ax in fig.axes)
    assert len(fig.axes[0].lines) == 2
    fig = canvas.show(findings[1])
    assert all(ax.get_legend() is None and not ax.lines for ax in fig.axes)


def test_pngs_at_level_1_hold_the_pixels_of_the_default_level(tmp_path):
    result = crowded_scan_result(DEMO_MODEL_WARNING)
    finding = result.findings[0].to_dict()
    old = _old()
    fig = old.old_key_slice_figure(result.resampled, finding, WINDOW,
                                   DEMO_MODEL_WARNING)
    fig.savefig(str(tmp_path / 'old.png'), dpi=fig.dpi)
    old.MatplotlibKeySlices(result.resampled, WINDOW,
                            DEMO_MODEL_WARNING).draw(finding,
                                                     tmp_path / 'new.png')
    save_png(fig, tmp_path / 'again.png')
    pictures = [np.asarray(Image.open(tmp_path / name))
                for name in ('old.png', 'new.png', 'again.png')]
    assert all(np.array_equal(p, pictures[0]) for p in pictures[1:])
    assert Image.open(tmp_path / 'new.png').size == (720, 440)


def test_old_code_puts_matplotlib_s_overview_back(tmp_path):
    """``old_code(overview=True)`` (the ``overview_matplotlib``,
    ``before_evening``, ``matplotlib`` and ``old_code`` schedules) draws
    the overview by matplotlib, as before the overview drawn as pixels;
    a change of the overview's renderer compares pictures by their
    agreeing pixels."""
    from mmlesion.visualization import volume_report
    from mmlesion.visualization.overview_raster import OverviewRaster
    from projects.benchmarks.matplotlib_pictures import overview_figure
    old = _old()
    result = crowded_scan_result(DEMO_MODEL_WARNING)
    findings = [f.to_dict() for f in result.findings]
    args = (result.resampled, findings)
    kwargs = dict(window=WINDOW, warning=DEMO_MODEL_WARNING)
    with old.old_code(**dict(old.NEW, overview=True)):
        volume_report.draw_overview(*args, tmp_path / 'old.png', **kwargs)
    volume_report.draw_overview(*args, tmp_path / 'new.png', **kwargs)
    old_png, new_png = (np.asarray(Image.open(tmp_path / name).convert('RGB'))
                        for name in ('old.png', 'new.png'))
    assert np.array_equal(old_png, _pixels(overview_figure(*args, **kwargs))[
        ..., :3])
    assert np.array_equal(new_png, OverviewRaster(
        result.resampled, WINDOW, DEMO_MODEL_WARNING).render(findings))
    assert old._renderer_changes(old.CHANGES['overview drawn as pixels'])
    assert not old._renderer_changes(
        old.CHANGES["PNGs at zlib level 1 (matplotlib's)"])
    assert old.other_renderer(dict(old.NEW, overview=True))
    assert not old.other_renderer(old.NEW)


def test_old_code_encodes_the_pngs_by_pillow_with_the_same_pixels(tmp_path):
    """``old_code(png_encoder=True)`` (the ``pillow_png`` and
    ``before_evening`` schedules) writes the pictures drawn as pixels
    through Pillow, as before OpenCV's unfiltered rows: another file, the
    same pixels; not a change of renderer."""
    from mmlesion.visualization import pixel_drawing
    old = _old()
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3),
                                               dtype=np.uint8)
    with old.old_code(**dict(old.NEW, png_encoder=True)):
        assert pixel_drawing.PNG_ENCODER == 'pillow'
        pixel_drawing.save_pixels_png(pixels, tmp_path / 'old.png')
    assert pixel_drawing.PNG_ENCODER == 'opencv'
    pixel_drawing.save_pixels_png(pixels, tmp_path / 'new.png')
    files = [(tmp_path / name).read_bytes() for name in ('old.png',
                                                         'new.png')]
    assert files[0] != files[1]
    for name in ('old.png', 'new.png'):
        assert np.array_equal(np.asarray(Image.open(tmp_path / name)), pixels)
    change = old.CHANGES['PNGs encoded by OpenCV, rows unfiltered']
    assert not old._renderer_changes(change)
    assert not old.other_renderer(dict(old.NEW, png_encoder=True))
