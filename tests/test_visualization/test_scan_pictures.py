# Copyright (c) mmlesion contributors. All rights reserved.
"""The whole-scan pictures read at a glance at their size (issue 50, item
11): ``overview.png``'s box numbers big enough and apart in a dense
cluster, its colours explained by a score scale, the demo-weights warning
on the pictures themselves, no text under 12 px in any PNG, and voxel
indices (not box edges such as -0.5) in ``report.html``.

Thresholds: the pictures are shown at their natural size (one PNG pixel
per CSS pixel, ``test_report_in_browser.py``), so a text's size in the PNG
is its size on screen. 12 px is the smallest text of ``report.html`` too:
below it short labels in DejaVu Sans (matplotlib's font) stop reading at a
glance on an ordinary (device pixel ratio 1) screen; the old pictures drew
their box numbers at 7.8 px and their legends at 8.75 px.
"""
import math
import re

from mmlesion.apis.whole_scan.model import DEMO_MODEL_WARNING
from mmlesion.apis.whole_scan.write import write_volume_results
from mmlesion.visualization.volume_report import draw_overview
from tests.helpers.scan_pictures import (crowded_scan_result, drawn_over,
                                         record_saved_pictures)

#: The smallest text in a picture, pixels of the PNG (module doc).
MIN_TEXT_PX = 12.
WINDOW = (-1024., 1050.)


def _overview(tmp_path, monkeypatch, max_findings=20):
    result = crowded_scan_result()
    findings = [f.to_dict() for f in result.findings]
    with record_saved_pictures(monkeypatch) as saved:
        draw_overview(result.resampled, findings, tmp_path / 'overview.png',
                      WINDOW, max_findings=max_findings)
    return findings, saved['overview.png']


def test_overview_numbers_are_readable_and_apart_in_a_dense_cluster(
        tmp_path, monkeypatch):
    """Every one of the 20 best findings is numbered on both projections,
    in numbers of at least 12 px, none covering another although 16 boxes
    crowd the middle of the scan."""
    findings, picture = _overview(tmp_path, monkeypatch)
    numbers = [t for t in picture.texts if t.text.isdigit()]
    assert sorted(int(t.text) for t in numbers) == sorted(
        [f['id'] for f in findings[:20]] * 2)
    assert min(t.px for t in numbers) >= MIN_TEXT_PX, [
        (t.text, round(t.px, 1)) for t in numbers]
    # their extents in the PNG (as matplotlib's Text.get_window_extent:
    # advance width, the line's ascent and descent), touching counting
    extents = [(t.text, t.box) for t in numbers]
    clashes = [(a, b) for i, (a, ea) in enumerate(extents)
               for b, eb in extents[i + 1:]
               if ea[0] <= eb[2] and eb[0] <= ea[2] and ea[1] <= eb[3]
               and eb[1] <= ea[3]]
    assert not clashes


def test_overview_colours_are_explained_by_a_score_scale(
        tmp_path, monkeypatch):
    """A colour scale named ``score`` beside the projections maps each
    drawn finding's score to the colour of its boxes."""
    import numpy as np

    from mmlesion.visualization.overview_raster import SCORE_RANGE
    findings, picture = _overview(tmp_path, monkeypatch)
    raster, pixels = picture.drawer, picture.pixels
    # the scale: a strip right of the projections, one colour a row,
    # ticked and named
    scale = raster.scale
    (w, h), x, y = scale.size, scale.left, scale.top
    assert x > max(p.view.left + p.view.size[0] for p in raster.panels)
    strip = pixels[y + 1:y + h, x + 1:x + w].astype(int)
    assert (strip == strip[:, :1]).all()
    assert len(np.unique(strip[:, 0], axis=0)) > 100  # not one colour
    assert any(t.text.strip().lower() == 'score' for t in picture.texts)
    ticks = {t.text: t for t in picture.texts}
    assert {'0.00', '0.50', '1.00'} <= set(ticks)

    def row(score: float) -> int:
        """The strip's row of a score (by its ticks' heights)."""
        top = (ticks['1.00'].box[1] + ticks['1.00'].box[3]) / 2.
        bottom = (ticks['0.00'].box[1] + ticks['0.00'].box[3]) / 2.
        return int(round(bottom - (bottom - top) * score)) - y - 1

    assert len(raster.panels) == 2
    background = type(raster)(raster.volume, raster.window).render([])
    for panel in raster.panels:
        assert len(panel.boxes) == 20
        for f, color, box in zip(findings, panel.colors, panel.boxes):
            # the strip's colour at the box's score, within a row
            near = strip[max(row(f['score']) - 1, 0):row(f['score']) + 2, 0]
            assert np.abs(near - color).max(-1).min() <= 1, (f['id'], color)
            # drawn: some of its outline shows that colour over the
            # projection (in the cluster, later boxes cross it)
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            outline = (slice(y1 - 1, y2 + 2), slice(x1 - 1, x2 + 2))
            a, left = drawn_over(pixels[outline], background[outline],
                                 color)
            assert ((a > .6) & (left <= 2.)).any(), f['id']
    # the scale is the scores' own, 0 to 1: the same colour means the same
    # score in every scan
    assert SCORE_RANGE == (0., 1.)
    assert abs(row(1.) + 1) <= 1 and abs(row(0.) - (h - 1)) <= 1


def test_pictures_carry_the_demo_weights_warning(tmp_path, monkeypatch):
    """Weights trained on the demo data: the warning is drawn on the
    overview and on every key slice (a picture shared alone still says
    it); other weights: no warning."""
    for warning in (DEMO_MODEL_WARNING, None):
        out = tmp_path / str(bool(warning))
        with record_saved_pictures(monkeypatch) as saved:
            write_volume_results(crowded_scan_result(warning), out,
                                 max_pictures=2)
        assert set(saved) == {'overview.png', 'finding_001.png',
                              'finding_002.png'}
        for name, picture in saved.items():
            said = [t for t in picture.texts if 'demo data' in t.text]
            if warning is None:
                assert not said, name
                continue
            assert len(said) == 1, name
            assert said[0].text == f'WARNING: model {DEMO_MODEL_WARNING}'
            assert said[0].px >= MIN_TEXT_PX


def test_no_text_under_12_px_in_the_pictures(tmp_path, monkeypatch):
    """Titles, numbers, the score scale's ticks and the key slice's RECIST
    legend: at least 12 px in the PNGs (at the size the report shows)."""
    result = crowded_scan_result(DEMO_MODEL_WARNING)
    assert result.findings[0].recist is not None  # a legend to read
    with record_saved_pictures(monkeypatch) as saved:
        write_volume_results(result, tmp_path / 'out', max_pictures=2)
    legend = [t.text for t in saved['finding_001.png'].texts
              if t.text.startswith(('long', 'short'))]
    assert len(legend) == 4  # both panels
    small = {name: [(t.text[:30], round(t.px, 1)) for t in p.texts
                    if t.px < MIN_TEXT_PX] for name, p in saved.items()}
    assert not any(small.values()), small


def test_report_names_voxels_not_box_edges(tmp_path):
    """A finding from the scan's first slice on: findings.json keeps its
    box's low z edge, -0.5 (voxel 0 spans -0.5 to 0.5); the report names
    the voxels it covers, from 0, and prints no -0.5."""
    result = crowded_scan_result()
    first = result.findings[0]
    assert first.slice_range_original[0] == 0
    assert first.bbox_voxel[2] == -.5
    write_volume_results(result, tmp_path / 'out', max_pictures=1)
    page = (tmp_path / 'out' / 'report.html').read_text()
    assert '-0.5' not in page
    (row, ) = re.findall(r'<tr><td>1</td>(.*?)</tr>', page)
    # the voxels holding the box's edges (voxel i: i - 0.5 to i + 0.5)
    x1, y1, _, x2, y2, _ = first.bbox_voxel
    xs = f'{math.floor(x1 + .5)}-{math.ceil(x2 - .5)}'
    ys = f'{math.floor(y1 + .5)}-{math.ceil(y2 - .5)}'
    assert row.endswith(f'<td>0-2</td><td>x {xs}, y {ys}</td>'), row


def test_voxel_range_names_the_voxels_holding_the_edges():
    from mmlesion.visualization.volume_report import voxel_range
    assert voxel_range(-.5, 3.5, 10) == (0, 3)  # the first four voxels
    assert voxel_range(2.3, 5.7, 10) == (2, 6)
    assert voxel_range(-.9, 12., 10) == (0, 9)  # clipped to the scan
    assert voxel_range(4.5, 4.5, 10) == (5, 5)
