# Copyright (c) mmlesion contributors. All rights reserved.
"""RECIST axes of detected lesions (mmlesion.apis.whole_scan.measure)."""
import cv2
import numpy as np
import pytest

from mmlesion.apis.whole_scan.measure import (box_seed_points,
                                              grow_mask_in_box,
                                              measure_findings,
                                              measure_lesion,
                                              model_mask_in_box)
from mmlesion.datasets.volumes import CTVolume, resample_volume
from tests.helpers.volume_demo import finding_of_boxes


def _slice_with_lesion(centre=(60, 50), axes=(36, 20), angle=25.,
                       size=(110, 120)):
    """Soft tissue (60 HU, noise) with a hypodense (-10 HU) ellipse."""
    rng = np.random.default_rng(0)
    img = 60. + rng.normal(0, 8, size)
    mask = np.zeros(size, np.uint8)
    cv2.ellipse(mask, (centre, axes, angle), 1, -1)
    img[mask > 0] = -10. + rng.normal(0, 8, int(mask.sum()))
    ys, xs = np.nonzero(mask)
    box = [xs.min() - 5., ys.min() - 5., xs.max() + 5., ys.max() + 5.]
    return img.astype(np.float32), mask.astype(bool), box


def test_box_seed_is_inside_the_inscribed_ellipse():
    pts = box_seed_points([10, 20, 40, 30])
    # along the longer side first, a third of each side, centred
    assert np.allclose(pts, [[20, 25], [30, 25], [25, 23.3333], [25, 26.6667]],
                       atol=1e-3)
    with pytest.raises(ValueError, match='seed_fraction'):
        box_seed_points([0, 0, 1, 1], .6)


def test_grabcut_from_a_box_recovers_the_lesion():
    img, truth, box = _slice_with_lesion()
    grown = grow_mask_in_box(img, box)
    mask, source = grown.mask, grown.source
    assert source == 'grabcut'
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > .9
    # a box too small for GrabCut gets the inscribed ellipse
    grown = grow_mask_in_box(img, [10, 10, 13, 12])
    assert grown.source == 'box_ellipse' and 1 <= grown.mask.sum() <= 12
    # a box outside the slice: nothing
    assert not grow_mask_in_box(img, [500, 500, 520, 520]).mask.any()


def test_model_mask_is_its_largest_component_in_the_box():
    lmap = np.zeros((40, 40), bool)
    lmap[5:15, 5:15] = True  # 100 px
    lmap[7:9, 7:9] = False  # a hole
    lmap[20:23, 5:8] = True  # 9 px, also in the box
    lmap[30:40, 30:40] = True  # outside the box
    mask = model_mask_in_box(lmap, [2, 2, 25, 25])
    assert mask.sum() == 100 and mask[8, 8]
    assert model_mask_in_box(lmap, [16, 16, 19, 19]) is None


def _volumes(spacing_zyx=(2., .8, .8)):
    img, truth, box = _slice_with_lesion()
    array = np.stack([np.full_like(img, 60.)] * 2 + [img] + [np.full_like(
        img, 60.)] * 2)
    original = CTVolume(array, (5., .7, .7), (-40., -30., 100.))
    resampled = resample_volume(original, spacing_zyx)
    return original, resampled


def test_findings_are_measured_on_their_largest_box_in_original_voxels():
    original, resampled = _volumes((5., .7, .7))  # same grid
    img, truth, box = _slice_with_lesion()
    findings = [finding_of_boxes(1, [
        dict(slice=1, bbox=[50, 40, 60, 50], score=.9),
        dict(slice=2, bbox=box, score=.8)])]
    masks = measure_findings(findings, resampled, original)
    rec = findings[0].recist
    assert rec.key_slice == rec.key_slice_original == 2
    assert rec.mask_source == 'grabcut'
    assert [(m.finding_id, m.slice) for m in masks] == [(1, 2)]
    # 36 x 20 px full axes at 0.7 mm/px, a pixel or so of rasterisation
    assert rec.long_axis_mm == pytest.approx(36 * .7, abs=1.5)
    assert rec.short_axis_mm == pytest.approx(20 * .7, abs=1.5)
    ends = np.array(rec.long_axis_voxel)
    assert np.linalg.norm(ends[1] - ends[0]) * .7 == pytest.approx(
        rec.long_axis_mm, rel=1e-3)
    outline = np.array(rec.outline_voxel)
    assert truth[np.round(outline[:, 1]).astype(int),
                 np.round(outline[:, 0]).astype(int)].mean() > .8

    # the model's map wins where it has pixels in the box
    maps = [np.zeros(img.shape, bool) for _ in range(5)]
    maps[2][45:55, 55:75] = True
    findings[0].recist = None
    measure_findings(findings, resampled, original, maps)
    rec = findings[0].recist
    assert rec.mask_source == 'model'
    assert rec.long_axis_mm == pytest.approx(np.hypot(20, 10) * .7, abs=.01)


def test_threads_measure_the_same_as_one_after_another():
    """Findings measured in 4 threads get the measurements and masks of
    one thread, bit for bit (each GrabCut seeds its own thread's RNG)."""
    original, resampled = _volumes((5., .7, .7))
    _, _, box = _slice_with_lesion()
    rng = np.random.default_rng(0)

    def findings():
        return [finding_of_boxes(i + 1, [dict(
            slice=2, bbox=[float(v) for v in np.asarray(box) + rng.uniform(
                -3, 3, 4)], score=.9)]) for i in range(12)]

    one, four = findings(), None
    rng = np.random.default_rng(0)
    four = findings()
    masks_one = measure_findings(one, resampled, original, workers=1)
    masks_four = measure_findings(four, resampled, original, workers=4)
    assert [f.recist for f in one] == [f.recist for f in four]
    assert {f.recist.mask_source for f in one} == {'grabcut'}
    assert [(m.finding_id, m.slice) for m in masks_one] == [
        (m.finding_id, m.slice) for m in masks_four]
    for m_one, m_four in zip(masks_one, masks_four):
        assert np.array_equal(m_four.mask, m_one.mask)


def test_axes_map_to_the_original_scan_through_world_coordinates():
    original, resampled = _volumes((2., .9, .9))
    img, truth, box = _slice_with_lesion()
    z = int(round(resampled.world_to_voxel(original.voxel_to_world(
        [[2., 0., 0.]]))[0, 0]))
    scale = .7 / .9
    box_rs = [(v + .5) * scale - .5 for v in box]
    findings = [finding_of_boxes(3, [dict(slice=z, bbox=box_rs, score=1.)])]
    measure_findings(findings, resampled, original)
    rec = findings[0].recist
    assert rec.key_slice_original == 2
    # the outline (0.9 mm pixels) lies on the lesion's border: within a
    # (0.7 mm) pixel of it
    outline = np.array(rec.outline_voxel)
    near = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8))
    assert near[np.round(outline[:, 1]).astype(int),
                np.round(outline[:, 0]).astype(int)].all()
    assert rec.long_axis_mm == pytest.approx(36 * .7, abs=2.)


def test_measuring_many_findings_shows_its_progress(monkeypatch, capsys):
    """From ``PROGRESS_MIN_FINDINGS`` findings on, measuring reports its
    progress (plain lines where the output is no terminal); below it, or
    without ``show_progress``, nothing."""
    from mmlesion.apis.whole_scan import measure
    monkeypatch.setattr(measure, 'PROGRESS_MIN_FINDINGS', 3)
    original, resampled = _volumes((5., .7, .7))
    _, _, box = _slice_with_lesion()

    def findings(n):
        return [finding_of_boxes(i + 1, [dict(
            slice=2, bbox=[float(v) for v in box], score=.9)])
            for i in range(n)]

    measure_findings(findings(2), resampled, original, show_progress=True)
    measure_findings(findings(3), resampled, original)
    assert capsys.readouterr().out == ''
    measure_findings(findings(3), resampled, original, workers=2,
                     show_progress=True)
    out = capsys.readouterr().out
    assert 'RECIST measuring, findings: 3/3 (100 %)' in out


def _box_sides_mm(box, spacing):
    x1, y1, x2, y2 = box
    return (x2 - x1) * spacing, (y2 - y1) * spacing


def test_long_axis_lies_within_the_box_inscribed_ellipse():
    """A lesion GrabCut cannot tell from its box (a uniform bright block
    filling the box) is measured within the box's inscribed ellipse: its
    long axis is at most the box's longer side (plus one pixel), not the
    block's diagonal (50 px for 40 x 30)."""
    rng = np.random.default_rng(0)
    img = (60. + rng.normal(0, 8, (100, 110))).astype(np.float32)
    img[30:60, 30:70] = 200.  # 40 x 30 px
    box = [29.5, 29.5, 69.5, 59.5]  # its edges
    spacing = .7
    lesion = measure_lesion(img, box, (spacing, spacing))
    longer = max(_box_sides_mm(box, spacing))
    assert lesion.source in ('grabcut', 'box_ellipse')
    assert lesion.diameters.long_mm <= longer + spacing * np.sqrt(2)
    assert lesion.diameters.long_mm >= .9 * longer
    # on noise, any box: the bound holds
    noise = (60. + rng.normal(0, 40, (100, 110))).astype(np.float32)
    for _ in range(8):
        x1, y1 = rng.uniform(5, 50, 2)
        box = [x1, y1, x1 + rng.uniform(4, 45), y1 + rng.uniform(4, 45)]
        d = measure_lesion(noise, box, (spacing, spacing)).diameters
        assert d.long_mm <= max(_box_sides_mm(box, spacing)) + (
            spacing * np.sqrt(2)), box


def test_model_mask_long_axis_is_at_most_the_box_diagonal():
    """The model's mask counts inside the box only: a map spilling far
    beyond the box gives at most the box's diagonal."""
    img = np.zeros((80, 80), np.float32)
    lmap = np.zeros((80, 80), bool)
    lmap[5:75, 5:75] = True
    box = [19.5, 24.5, 49.5, 44.5]  # 30 x 20 px
    lesion = measure_lesion(img, box, (1., 1.), lmap)
    assert lesion.source == 'model'
    assert lesion.diameters.long_mm == pytest.approx(np.hypot(30, 20),
                                                     abs=1e-6)
