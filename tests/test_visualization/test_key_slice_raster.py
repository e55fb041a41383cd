# Copyright (c) mmlesion contributors. All rights reserved.
"""Key slices drawn as pixels
(:class:`~mmlesion.visualization.key_slice_raster.KeySliceRaster`) show
what the matplotlib pictures before them showed: the same panels, the same
slice in each, the box and the RECIST axes at the same places (the outer
edges of the box's lines within 2 px, the axes' centres within 1.5 px),
the same texts at the same size, and black beyond the slice's edge. The
matplotlib pictures are drawn by the code kept beside the benchmark
(``projects/benchmarks/infer_scans_changes.py``,
``MatplotlibKeySlices``)."""
import copy
import io

import numpy as np
import pytest
from PIL import Image

from mmlesion.apis.whole_scan.model import DEMO_MODEL_WARNING
from mmlesion.visualization.key_slice_raster import (KEY_SLICE_TEXT_PX,
                                                     KeySliceRaster,
                                                     title_lines)
from tests.helpers.scan_pictures import crowded_scan_result
from tests.helpers.tool_modules import load_tool

WINDOW = (-1024., 1050.)
#: The smallest text of a picture, px (``test_scan_pictures.py``).
MIN_TEXT_PX = 12.


def _matplotlib(result, finding, warning) -> np.ndarray:
    old = load_tool('projects/benchmarks/infer_scans_changes.py')
    fig = old.MatplotlibKeySlices(result.resampled, WINDOW,
                                  warning).show(finding)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=fig.dpi)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert('RGB'))


def _findings(result) -> list:
    """With RECIST axes (the first), without, and a box sticking out of
    the slice's corner (the magnified panel then shows air beyond it)."""
    findings = [f.to_dict() for f in result.findings[:3]]
    out = copy.deepcopy(findings[2])
    for box in out['boxes_2d']:
        box['bbox'] = [-6., -4., 20., 15.]
    return findings + [out]


#: The pixels of the box (lime), the long (red) and the short axis
#: (deepskyblue), anti-aliased over grey or black included.
COLOURS = {
    'box': lambda p: (p[..., 1] > 120) & (p[..., 0] < 100)
    & (p[..., 2] < 100),
    'long': lambda p: (p[..., 0] > 100) & (p[..., 1] < 80) & (p[..., 2] < 80),
    'short': lambda p: (p[..., 0] < 80) & (p[..., 1] > 60)
    & (p[..., 2] > 120),
}


def _where(name: str, mask: np.ndarray):
    """The box's extent (x0, y0, x1, y1), an axis' centroid (x, y)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    if name == 'box':
        return np.array([xs.min(), ys.min(), xs.max(), ys.max()])
    return np.array([xs.mean(), ys.mean()])


def _panel(picture: np.ndarray, view, inset: int = 0) -> np.ndarray:
    (w, h), x, y = view.size, view.left, view.top
    return picture[y + inset:y + h - inset, x + inset:x + w - inset]


@pytest.mark.parametrize('warning', [DEMO_MODEL_WARNING, None])
def test_the_pictures_show_what_matplotlib_showed(warning):
    result = crowded_scan_result(warning)
    raster = KeySliceRaster(result.resampled, WINDOW, warning)
    for finding in _findings(result):
        now = raster.render(finding)
        before = _matplotlib(result, finding, warning)
        assert now.shape == before.shape == (440, 720, 3)
        assert now.dtype == np.uint8
        agree = (np.abs(now.astype(int) - before).max(-1) <= 32).mean()
        assert agree > .9, (finding['id'], agree)
        for view in raster.views(finding):
            a, b = _panel(now, view), _panel(before, view)
            # the panels sit where matplotlib put its axes: both frames on
            # the panel's edge pixels
            (w, h), x, y = view.size, view.left, view.top
            for p in (now, before):
                for frame in (p[y:y + h, x], p[y:y + h, x + w], p[y, x:x + w],
                              p[y + h, x:x + w]):
                    assert (frame.max(-1) < 90).mean() > .9
            # the legend's corner apart (compared by its texts)
            h, w = a.shape[:2]
            corner = np.zeros((h, w), bool)
            corner[int(.75 * h):, int(.5 * w):] = True
            for name, colour in COLOURS.items():
                here = _where(name, colour(a) & ~corner)
                there = _where(name, colour(b) & ~corner)
                if name != 'box' and not finding.get('recist'):
                    assert here is None and there is None, name
                    continue
                assert here is not None and there is not None, name
                # a box's edges: lines 2 px wide, anti-aliased apart
                tolerance = 2.5 if name == 'box' else 1.5
                assert np.abs(here - there).max() < tolerance, (
                    finding['id'], name, here, there)
            # the slice: the same grey where both show plain slice (no
            # overlay near; the legend's corner left out)
            plain = ~corner
            for p in (a, b):
                plain &= (p.max(-1) - p.min(-1) <= 2)
            diff = np.abs(a[..., 0].astype(int) - b[..., 0])[plain]
            assert plain.mean() > .7 and diff.mean() < 4., (
                finding['id'], plain.mean(), diff.mean())


def test_beyond_the_slice_the_magnified_panel_is_air():
    result = crowded_scan_result()
    raster = KeySliceRaster(result.resampled, WINDOW)
    finding = _findings(result)[-1]
    zoom = raster.views(finding)[1]
    panel = _panel(raster.render(finding), zoom, inset=3)
    # the box's corner is at voxel (-6, -4): left of and above the slice
    x, y = (int(v) for v in zoom.to_panel(-1., -1.))
    assert x > 10 and y > 10
    air = panel[:y - 3, :x - 3]  # black, but the (green) box's edges
    assert (air[..., [0, 2]] == 0).all() and (air[..., 1] == 0).mean() > .9
    assert panel[y + 3:, x + 3:].max() > 0


def test_the_texts_are_the_titles_and_the_legend_at_12_px_or_more():
    result = crowded_scan_result(DEMO_MODEL_WARNING)
    raster = KeySliceRaster(result.resampled, WINDOW, DEMO_MODEL_WARNING)
    with_recist, without = _findings(result)[:2]
    picture = raster.render(with_recist)
    texts = [t.text for t in raster.texts]
    legend = [f"long {with_recist['recist']['long_axis_mm']:.1f} mm",
              f"short {with_recist['recist']['short_axis_mm']:.1f} mm"]
    assert texts == ([f'WARNING: model {DEMO_MODEL_WARNING}']
                     + title_lines(with_recist) + legend * 2)
    assert min(t.px for t in raster.texts) >= MIN_TEXT_PX
    assert KEY_SLICE_TEXT_PX >= MIN_TEXT_PX
    # the ink: the warning in red on the first rows, four lines of text
    # above the panels
    top = raster.views(with_recist)[0].top
    red = COLOURS['long'](picture[:22]).sum() + (
        (picture[:22, ..., 0] > 120) & (picture[:22, ..., 1] < 40)).sum()
    assert red > 200
    ink_rows = (picture[:top - 2].min(-1) < 100).any(-1)
    runs = np.flatnonzero(np.diff(ink_rows.astype(int)) == 1)
    assert len(runs) + int(ink_rows[0]) == 4
    raster.render(without)
    assert [t.text for t in raster.texts] == (
        [f'WARNING: model {DEMO_MODEL_WARNING}'] + title_lines(without))


def test_the_png_holds_the_rendered_pixels(tmp_path):
    result = crowded_scan_result()
    raster = KeySliceRaster(result.resampled, WINDOW)
    finding = result.findings[0].to_dict()
    raster.draw(finding, tmp_path / 'a.png')
    saved = np.asarray(Image.open(tmp_path / 'a.png'))
    assert Image.open(tmp_path / 'a.png').size == (720, 440)
    assert np.array_equal(saved, raster.render(finding))


def test_a_finding_without_a_box_on_its_key_slice_is_named():
    result = crowded_scan_result()
    finding = result.findings[1].to_dict()
    finding['boxes_2d'] = []
    with pytest.raises(ValueError, match='finding 2: no 2D box'):
        KeySliceRaster(result.resampled, WINDOW).render(finding)


def test_the_caption_names_the_scans_slice_and_the_findings_score():
    """One slice numbering, the scan's: a scan of 4 mm slices resampled to
    2 mm draws resampled slice z as the scan's slice z / 2; the only score
    is the finding's (not that of the 2D box drawn)."""
    from mmlesion.apis.whole_scan.results import ScanGeometry
    result = crowded_scan_result()
    rs = result.resampled
    original = ScanGeometry(
        [rs.shape_zyx[0] // 2, *rs.shape_zyx[1:]],
        [4., *rs.spacing_zyx[1:]],
        [rs.origin_xyz[0], rs.origin_xyz[1], rs.origin_xyz[2] + 1.],
        np.eye(3).ravel().tolist())
    raster = KeySliceRaster(rs, WINDOW, original=original)
    with_recist, without = (f.to_dict() for f in result.findings[:2])
    without['score'] = .992
    for box in without['boxes_2d']:
        box['score'] = .597
    raster.render(without)
    caption = [t.text for t in raster.texts]
    z = without['key_slice']
    assert caption[0].startswith(f"finding {without['id']}: score 0.992")
    assert caption[-1].endswith(
        f'; drawn: slice {int(np.floor(z / 2 + .5))} (its best box)')
    assert not any('0.597' in t or 'resampled' in t for t in caption)
    # with RECIST: the slice it was measured on, as findings.json names it
    with_recist['recist']['key_slice_original'] = 7
    raster.render(with_recist)
    assert [t.text for t in raster.texts if 'drawn' in t.text][0].endswith(
        '; drawn: slice 7 (its largest box, where RECIST is measured)')
    # the scan's slices as a range, or one slice
    assert title_lines(dict(with_recist, slice_range_original=[4, 4]))[
        -1].startswith('slice 4 of the scan; drawn')
