# Copyright (c) mmlesion contributors. All rights reserved.
"""The overview drawn as pixels
(:class:`~mmlesion.visualization.overview_raster.OverviewRaster`) shows
what matplotlib's overview (``overview_figure`` of the benchmarks, the
code before) showed: the same texts at the same sizes and places (within
2.5 px: the fonts' hinting), most pixels alike, all 20 best findings
numbered on both projections on tags apart, each box in its score's
colour, the projections windowed, resized and turned as before (head up),
the score scale's colours, and the warning only with a warning."""
import collections
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from mmlesion.apis.whole_scan.model import DEMO_MODEL_WARNING
from mmlesion.datasets.transforms.windowing import window_hu
from mmlesion.datasets.volumes import CTVolume
from mmlesion.visualization.label_layout import overlaps, text_size
from mmlesion.visualization.overview_raster import (NUMBER_PX,
                                                    OVERVIEW_SIZE_PX,
                                                    TAG_PAD_PT,
                                                    OverviewRaster,
                                                    draw_overview,
                                                    score_colors)
from mmlesion.visualization.pixel_drawing import WARNING_RGB, font, font_pt
from projects.benchmarks.matplotlib_pictures import overview_figure
from tests.helpers.scan_pictures import (crowded_scan_result, drawn_over,
                                         record_saved_pictures)

WINDOW = (-1024., 1050.)
#: The smallest text of a picture, px (``test_scan_pictures.py``).
MIN_TEXT_PX = 12.
#: A small volume: air, a body of soft tissue, a bright block near the
#: head (high z) and the front (low y), whose voxels a box encloses.
SHAPE = (20, 40, 50)
BLOCK = (slice(16, 19), slice(5, 9), slice(10, 15))  # z, y, x


def _volume() -> CTVolume:
    array = np.full(SHAPE, -1000., np.float32)
    array[:, 12:36, 4:46] = 40.
    array[BLOCK] = 1000.
    return CTVolume(array, (2.5, .8, .8), (0., 0., 0.))


def _finding(i: int, score: float, x, y, z) -> dict:
    """A finding of box ``x``, ``y``, ``z`` (voxel ranges, edges at
    half voxels)."""
    return dict(id=i, score=score, bbox_voxel_resampled=[
        x[0] - .5, y[0] - .5, z[0] - .5, x[1] + .5, y[1] + .5, z[1] + .5])


#: Boxes apart in both projections, of scores far apart.
APART = [_finding(1, .95, (3, 9), (3, 9), (2, 5)),
         _finding(2, .7, (20, 27), (16, 22), (8, 11)),
         _finding(3, .45, (36, 44), (28, 35), (13, 16)),
         _finding(4, .1, (5, 11), (30, 36), (14, 17))]


def _matplotlib(volume, findings, warning):
    """matplotlib's overview: its RGB pixels and its texts (text, px,
    extent in pixels from the top left; the pasted warning without)."""
    from matplotlib.text import Text
    fig = overview_figure(volume, findings, WINDOW, warning=warning)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=fig.dpi)
    buffer.seek(0)
    renderer = fig.canvas.get_renderer()
    height = fig.bbox.height
    texts = []
    for t in fig.findobj(Text):
        if t.get_text().strip():
            e = t.get_window_extent(renderer)
            texts.append((t.get_text(), t.get_fontsize() * fig.dpi / 72.,
                          (e.x0, height - e.y1, e.x1, height - e.y0)))
    return np.asarray(Image.open(buffer).convert('RGB')), texts


@pytest.mark.parametrize('warning', [DEMO_MODEL_WARNING, None])
def test_the_overview_shows_what_matplotlib_showed(warning):
    result = crowded_scan_result(warning)
    findings = [f.to_dict() for f in result.findings]
    raster = OverviewRaster(result.resampled, WINDOW, warning)
    now = raster.render(findings)
    before, texts = _matplotlib(result.resampled, findings, warning)
    assert now.shape == before.shape == OVERVIEW_SIZE_PX[::-1] + (3, )
    assert now.dtype == np.uint8
    agree = (np.abs(now.astype(int) - before).max(-1) <= 32).mean()
    assert agree > .95, agree
    # the same texts, at the same sizes, at the same places
    drawn = [t for t in raster.texts if not t.text.startswith('WARNING')]
    assert sorted((t.text, t.px) for t in drawn) == sorted(
        (text, px) for text, px, _ in texts)
    places = collections.defaultdict(list)
    for text, _, box in texts:
        places[text].append(np.array(box))
    for t in drawn:
        off = min(np.abs(np.array(t.box) - box).max()
                  for box in places[t.text])
        assert off < 2.5, (t.text, t.box, places[t.text])


def test_the_best_20_are_numbered_on_both_panels_on_tags_apart():
    result = crowded_scan_result()
    findings = [f.to_dict() for f in result.findings]
    assert len(findings) > 20
    raster = OverviewRaster(result.resampled, WINDOW)
    pixels = raster.render(findings)
    best = [f['id'] for f in findings[:20]]
    numbers = [t for t in raster.texts if t.text.isdigit()]
    assert sorted(int(t.text) for t in numbers) == sorted(best * 2)
    assert {t.px for t in numbers} == {NUMBER_PX}
    tags = [(panel, i, rect, color) for panel in raster.panels
            for i, rect, color in zip(panel.ids, panel.tags, panel.colors)]
    assert [i for _, i, _, _ in tags] == best * 2
    assert all(rect is not None for _, _, rect, _ in tags)
    clashes = [(a[1], b[1]) for k, a in enumerate(tags)
               for b in tags[k + 1:] if overlaps(a[2], b[2])]
    assert not clashes
    for (panel, i, rect, color), text in zip(tags, numbers):
        assert text.text == str(i)
        x1, y1, x2, y2 = rect
        # the number on its tag, the tag in its slot and of its colour
        tx1, ty1, tx2, ty2 = text.box
        assert x1 <= tx1 and tx2 <= x2 and y1 <= ty1 and ty2 <= y2, (
            i, rect, text.box)
        sx, sy, sw, sh = raster.slots[raster.panels.index(panel)]
        assert sx <= x1 and x2 <= sx + sw and sy <= y1 and y2 <= sy + sh
        corner = pixels[int(round(y1)) + 1, int(round(x1)) + 1]
        assert (np.abs(corner.astype(int) - color) <= 1).all(), (i, corner)
    # the tags' sizes (label_layout.text_size) hold the drawn numbers
    digits = font(NUMBER_PX)
    pad = TAG_PAD_PT * 100. / 72.
    for n in (1, 8, 20, 88, 100, 888):
        w, h = text_size(str(n), font_pt(NUMBER_PX), 100., TAG_PAD_PT)
        left, top, right, bottom = digits.getbbox(str(n), anchor='ls')
        assert right - left <= w - 2 * pad and bottom - top <= h - 2 * pad


def test_every_box_is_drawn_in_its_score_colour_around_its_voxels():
    volume = _volume()
    raster = OverviewRaster(volume, WINDOW)
    background = raster.render([])
    pixels = raster.render(APART)
    colors = score_colors([f['score'] for f in APART])
    for panel in raster.panels:
        assert np.array_equal(panel.colors, colors)
        for (x1, y1, x2, y2), color in zip(panel.boxes, colors):
            # across each side at its middle, 3 px either way: its colour
            # over the projection alone, most of it on the line
            cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
            for across in ((slice(int(y1) - 3, int(y1) + 4), cx),
                           (slice(int(y2) - 3, int(y2) + 4), cx),
                           (cy, slice(int(x1) - 3, int(x1) + 4)),
                           (cy, slice(int(x2) - 3, int(x2) + 4))):
                a, left = drawn_over(pixels[across], background[across],
                                     color)
                assert a.max() > .6 and left.max() <= 2., (color, a, left)
    # a box around the bright block's voxels holds its pixels on both
    # projections (the coronal one head up)
    z, y, x = BLOCK
    block = _finding(1, .9, (x.start, x.stop - 1), (y.start, y.stop - 1),
                     (z.start, z.stop - 1))
    pixels = raster.render([block])
    for panel in raster.panels:
        (w, h), left, top = panel.view.size, panel.view.left, panel.view.top
        bright = pixels[top + 2:top + h - 1, left + 2:left + w - 1].min(-1)
        ys, xs = np.nonzero(bright > 200)
        x1, y1, x2, y2 = panel.boxes[0]
        assert len(xs) > 20
        assert x1 - 1 <= xs.min() + left + 2 and xs.max() + left + 2 <= x2
        assert y1 - 1 <= ys.min() + top + 2 and ys.max() + top + 2 <= y2
        assert ys.mean() < h / 2  # near the head, near the front


def test_the_panels_show_the_windowed_projections_resized():
    """At the spacing's aspect (a voxel 2.5 mm high, 0.8 mm wide), head up
    on the coronal one; the pixels inside each frame those of the windowed
    projection resized (area averaging where it shrinks, linear where it
    grows)."""
    volume = _volume()
    raster = OverviewRaster(volume, WINDOW)
    pixels = raster.render([])
    coronal = volume.array.max(axis=1)[::-1]  # z up
    axial = volume.array.max(axis=0)
    for panel, mip, aspect in zip(raster.panels, (coronal, axial),
                                  (2.5 / .8, 1.)):
        (w, h), left, top = panel.view.size, panel.view.left, panel.view.top
        rows, cols = mip.shape
        assert abs(h - w * rows * aspect / cols) <= 1.
        _, _, slot_w, slot_h = raster.slots[raster.panels.index(panel)]
        assert abs(w - slot_w) <= 1. or abs(h - slot_h) <= 1.  # fitted
        grey = np.rint(window_hu(mip, WINDOW, (0., 255.))).astype(np.uint8)
        shrink = w < cols or h < rows
        want = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA
                          if shrink else cv2.INTER_LINEAR)
        shown = pixels[top:top + h, left:left + w]
        assert (shown[..., 0] == shown[..., 2]).all()  # grey
        inside = np.abs(shown[1:, 1:, 0].astype(int) - want[1:, 1:])
        assert inside.max() <= 1
        # the frame: black on the pixels of its edges
        for edge in (pixels[top:top + h, left],
                     pixels[top:top + h, left + w],
                     pixels[top, left:left + w],
                     pixels[top + h, left:left + w]):
            assert edge.max() == 0


def test_the_score_strip_runs_down_the_colour_map_from_1_to_0():
    raster = OverviewRaster(_volume(), WINDOW)
    pixels = raster.render(APART)
    (w, h), x, y = raster.scale.size, raster.scale.left, raster.scale.top
    strip = pixels[y + 1:y + h, x + 1:x + w]
    assert (strip == strip[:, :1]).all()
    want = score_colors(np.linspace(1., 0., h))[1:]
    assert np.array_equal(strip[:, 0], want)
    # its name above it, its ticks' labels at their heights
    texts = {t.text: t for t in raster.texts}
    assert texts['score'].box[3] < y
    for value in (0., .25, .5, .75, 1.):
        box = texts[f'{value:.2f}'].box
        assert box[0] > x + w
        assert abs((box[1] + box[3]) / 2. - (y + (1. - value) * h)) < 2.


def test_the_warning_is_drawn_only_with_a_warning():
    volume = _volume()
    red = []
    for warning in (DEMO_MODEL_WARNING, None):
        raster = OverviewRaster(volume, WINDOW, warning)
        pixels = raster.render(APART)
        said = [t for t in raster.texts if 'demo data' in t.text]
        band = (pixels == WARNING_RGB).all(-1)
        red.append(band.sum())
        if warning is None:
            assert not said
            continue
        assert [t.text for t in said] == [f'WARNING: model {warning}']
        x1, y1, x2, y2 = (int(v) for v in said[0].box)
        # the band 5 px beyond the text's ink, the text white on it
        ys, xs = np.nonzero(band)
        assert (xs.min(), ys.min()) == (x1 - 5, y1 - 5)
        assert (xs.max(), ys.max()) == (x2 + 4, y2 + 4)
        ink = pixels[y1:y2, x1:x2]
        assert ((ink == 255).all(-1)).sum() > 300
        # the panels below it
        assert raster.slots[0][1] > y2 + 20
    assert red[0] > 10000 and red[1] == 0


def test_the_texts_are_at_least_12_px():
    result = crowded_scan_result(DEMO_MODEL_WARNING)
    raster = OverviewRaster(result.resampled, WINDOW, DEMO_MODEL_WARNING)
    raster.render([f.to_dict() for f in result.findings])
    texts = [t.text for t in raster.texts]
    assert texts[:4] == [
        '23 findings (20 best drawn, numbered by rank; colour: score)',
        f'WARNING: model {DEMO_MODEL_WARNING}', 'coronal MIP (head up)',
        'axial MIP']
    assert texts[-6:] == ['score', '0.00', '0.25', '0.50', '0.75', '1.00']
    assert min(t.px for t in raster.texts) >= MIN_TEXT_PX


def test_draw_overview_writes_the_raster_s_picture(tmp_path, monkeypatch):
    volume = _volume()
    path = tmp_path / 'overview.png'
    with record_saved_pictures(monkeypatch) as saved:
        draw_overview(volume, APART, path, WINDOW)
    assert Image.open(path).size == OVERVIEW_SIZE_PX
    rendered = OverviewRaster(volume, WINDOW).render(APART)
    assert np.array_equal(np.asarray(Image.open(path)), rendered)
    assert np.array_equal(saved['overview.png'].pixels, rendered)
    assert saved['overview.png'].figure is None


def test_a_thin_series_coronal_panel_is_stretched_and_not_crowded():
    """A 6-slice series 2 mm thick across 100 mm: its coronal MIP is
    stretched along z to a third of its slot's height (the title says by
    how much), and its numbers sit next to their boxes only (no tag far
    out on a line): the crowded ones stay unnumbered there, all are
    numbered on the axial MIP. A tall scan is drawn at its aspect."""
    from mmlesion.visualization.label_layout import leader_line
    from mmlesion.visualization.overview_raster import MIN_HEIGHT_FRACTION
    array = np.full((6, 125, 125), -1000., np.float32)
    array[:, 20:105, 10:115] = 40.
    volume = CTVolume(array, (2., .8, .8), (0., 0., 0.))
    # 20 boxes a voxel apart along x on the same slices: a crowd coronally
    findings = [_finding(i + 1, 1. - i / 40., (40 + i, 43 + i),
                         (30 + 3 * (i % 5), 40 + 3 * (i % 5)), (2, 3))
                for i in range(20)]
    raster = OverviewRaster(volume, WINDOW)
    raster.render(findings)
    coronal, axial = raster.panels
    _, _, _, slot_h = raster.slots[0]
    stretch = coronal.view.size[1] / (coronal.view.size[0] * 6 * 2. / 100.)
    assert coronal.view.size[1] >= MIN_HEIGHT_FRACTION * slot_h - 1
    title = [t.text for t in raster.texts if t.text.startswith('coronal')]
    assert title == [f'coronal MIP (head up, z stretched x{stretch:.1f}; '
                     'numbers where room)']
    placed = [(box, rect) for box, rect in zip(coronal.boxes, coronal.tags)
              if rect is not None]
    assert 0 < len(placed) < 20
    assert all(leader_line(box, rect) is None for box, rect in placed)
    assert all(rect is not None for rect in axial.tags)
    # the 20-slice, 2.5 mm block volume is tall: drawn as it was
    tall = OverviewRaster(_volume(), WINDOW)
    tall.render(APART)
    assert 'coronal MIP (head up)' in [t.text for t in tall.texts]
    assert all(rect is not None for rect in tall.panels[0].tags)
