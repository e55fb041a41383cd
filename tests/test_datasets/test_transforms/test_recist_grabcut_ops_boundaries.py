# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the RECIST -> GrabCut mask operations
(:mod:`mmlesion.datasets.transforms.recist_grabcut_ops`).

Pinned, on tiny synthetic images (no real data):

* the pixel range of a box: centres on the box edges are in, the 1e-6
  tolerance on both sides, the clip to the image, one-pixel and empty
  boxes;
* the RECIST quadrilateral in both orientations, the convex hull when a
  vertex is collinear or the diameters do not cross, the shoelace area;
* the sub-pixel rasterisation of polygons and ellipses (extents, angle,
  offset, the 1 px / 0.5 px floors of the semi-axes);
* the uint8 key slice: the middle channel, the HU window and its inverse,
  a flat slice, rounding;
* :func:`recist_grabcut_mask`: the fallbacks at exactly ``min_quad_area``
  and ``min_diameter``, the context margin (px floor and ratio of the
  longer side, rounded up, clipped to the image), the initial GrabCut
  labels (definite background outside the box, definite foreground on the
  quadrilateral, probable fore/background inside the box), the seed,
  iterations and mode given to OpenCV, what is kept of GrabCut's labels
  (a fake GrabCut returns a chosen labelling), the connected component
  and hole filling steps, a GrabCut error;
* :func:`paste_crop`.

These are the cases a small change of the code would get wrong while
``test_recist_grabcut.py`` passes (docs/mutation_testing.md).
"""
import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from mmlesion.datasets.transforms import recist_grabcut_ops as ops
from mmlesion.datasets.transforms.recist_grabcut_ops import (
    _components_touching, _fill_holes, box_ellipse, box_pixel_mask,
    box_pixel_range, key_slice_uint8, paste_crop, polygon_area,
    GrabCutSettings, rasterize_ellipse, rasterize_polygon, recist_ellipse,
    recist_grabcut_mask, recist_polygon)

# a RECIST cross centred at (20, 20): long axis 12 px, short axis 8 px
RECIST = np.array([[14, 20], [26, 20], [20, 16], [20, 24]], float)
BOX = np.array([10, 12, 30, 28], float)  # 21 x 17 pixels


def _extent(mask):
    rows, cols = np.nonzero(mask)
    return cols.min(), rows.min(), cols.max(), rows.max()


# -------------------------------------------------------------- geometry
def test_box_pixel_range_includes_centres_on_the_edges():
    assert box_pixel_range([1, 2, 3, 4], (10, 10)) == (1, 2, 3, 4)
    assert box_pixel_range(np.array([1.5, 2.5, 3.5, 4.5]),
                           (10, 10)) == (2, 3, 3, 4)


@pytest.mark.parametrize('delta,inside', [(5e-7, True), (2e-6, False)])
def test_box_pixel_range_tolerance(delta, inside):
    # edges just past a centre (within 1e-6) keep it; further they drop it
    got = box_pixel_range([2 + delta, 3 + delta, 6 - delta, 7 - delta],
                          (10, 10))
    assert got == ((2, 3, 6, 7) if inside else (3, 4, 5, 6))


def test_box_pixel_range_is_clipped_to_the_image():
    assert box_pixel_range([-3, -2, 20, 30], (8, 10)) == (0, 0, 9, 7)
    assert box_pixel_range([0, 0, 9, 7], (8, 10)) == (0, 0, 9, 7)
    assert box_pixel_range([-0.5, -0.5, 9.5, 7.5], (8, 10)) == (0, 0, 9, 7)


def test_box_pixel_mask_single_pixel_and_empty():
    one = box_pixel_mask([3, 2, 3, 2], (5, 6))
    assert one.dtype == bool and one.shape == (5, 6)
    assert one.sum() == 1 and one[2, 3]
    row = box_pixel_mask([1, 2, 4, 2], (5, 6))
    assert row.sum() == 4 and row[2, 1:5].all()
    col = box_pixel_mask([1, 1, 1, 3], (5, 6))
    assert col.sum() == 3 and col[1:4, 1].all()
    assert not box_pixel_mask([3.2, 2, 3.8, 2], (5, 6)).any()  # no column
    assert not box_pixel_mask([3, 2.2, 3, 2.8], (5, 6)).any()  # no row
    assert not box_pixel_mask([3.2, 2.2, 3.8, 2.8], (5, 6)).any()


def test_recist_polygon_in_both_orientations():
    poly = recist_polygon(RECIST.ravel().tolist())
    assert poly.dtype == np.float64
    np.testing.assert_array_equal(poly, RECIST[[0, 2, 1, 3]])
    flipped = RECIST[[0, 1, 3, 2]]  # p3, p4 swapped: the other orientation
    np.testing.assert_array_equal(recist_polygon(flipped),
                                  flipped[[0, 2, 1, 3]])


def test_recist_polygon_with_a_collinear_vertex_is_the_hull():
    # p3 on the long axis: p1, p3, p2 collinear, not strictly convex
    rec = np.array([[0, 0], [10, 0], [5, 0], [5, 5]], float)
    hull = recist_polygon(rec)
    assert hull.dtype == np.float64
    assert sorted(map(tuple, hull.tolist())) == [(0, 0), (5, 5), (10, 0)]


def test_recist_polygon_of_a_kite_and_of_a_dart():
    # a convex kite (short axis crossing near one end) stays the quad
    kite = np.array([[0, 0], [10, 0], [2, -3], [2, 3]], float)
    np.testing.assert_array_equal(recist_polygon(kite), kite[[0, 2, 1, 3]])
    # short axis not reaching the long axis: a dart (non-convex) -> hull
    dart = np.array([[0, 0], [10, 0], [5, 1], [5, 6]], float)
    hull = recist_polygon(dart)
    assert sorted(map(tuple, hull.tolist())) == [(0, 0), (5, 6), (10, 0)]


def test_polygon_area():
    square = [[0, 0], [2, 0], [2, 2], [0, 2]]
    assert polygon_area(square) == 4.0
    assert polygon_area(square[::-1]) == 4.0
    assert polygon_area(np.ravel(square)) == 4.0
    assert polygon_area([[0, 0], [4, 0], [0, 3]]) == 6.0  # three vertices
    assert polygon_area([[0, 0], [4, 0]]) == 0.0
    assert polygon_area(np.zeros((0, 2))) == 0.0
    # shoelace of a non-axis-aligned quad (the RECIST cross: d1 * d2 / 2)
    assert polygon_area(recist_polygon(RECIST)) == 48.0


# ----------------------------------------------------------- rasterising
def test_rasterize_polygon_with_sub_pixel_vertices_and_offset():
    sq = [[1, 1], [3, 1], [3, 3], [1, 3]]
    full = rasterize_polygon(sq, (5, 5))
    assert full.dtype == bool
    assert _extent(full) == (1, 1, 3, 3) and full.sum() == 9
    np.testing.assert_array_equal(
        rasterize_polygon(sq, (3, 3), (1, 1)), np.ones((3, 3), bool))
    np.testing.assert_array_equal(
        rasterize_polygon(sq, (4, 4), (0, 1)), full[1:, :4])
    inner = rasterize_polygon([[.6, .6], [2.4, .6], [2.4, 2.4], [.6, 2.4]],
                              (4, 4))
    assert _extent(inner) == (1, 1, 2, 2) and inner.sum() == 4
    # a vertex 0.4 px short of a centre still reaches it (rounding to 1/256
    # px would not, but 0.4 px is far from both)
    tri = rasterize_polygon([[0, 0], [6, 0], [0, 6]], (8, 8))
    assert tri[0, :7].all() and tri[:7, 0].all() and not tri[1, 6]


def test_rasterize_ellipse_extents_and_angle():
    e = rasterize_ellipse((5, 5), (4, 2), 0, (11, 11))
    assert e.dtype == bool
    assert _extent(e) == (1, 3, 9, 7)
    np.testing.assert_array_equal(e, e[::-1])
    np.testing.assert_array_equal(e, e[:, ::-1])
    r = rasterize_ellipse((5, 5), (4, 2), 90, (11, 11))
    assert _extent(r) == (3, 1, 7, 9)
    np.testing.assert_array_equal(r, e.T)
    # the offset moves the ellipse, the sub-pixel centre is kept
    np.testing.assert_array_equal(
        rasterize_ellipse((7, 8), (4, 2), 0, (11, 11), (2, 3)), e)
    half = rasterize_ellipse((5.5, 5), (4, 2), 0, (11, 11))
    assert not np.array_equal(half, e)
    assert _extent(half)[0] == 2


def test_recist_ellipse():
    rec = np.array([[1, 5], [9, 5], [5, 3], [5, 7]], float)
    e = recist_ellipse(rec, (11, 11), (0, 0))
    np.testing.assert_array_equal(
        e, rasterize_ellipse((5, 5), (4, 2), 0, (11, 11)))
    # the angle follows p1 -> p2
    vertical = rec[:, ::-1]
    np.testing.assert_array_equal(recist_ellipse(vertical, (11, 11), (0, 0)),
                                  e.T)
    diagonal = np.array([[2, 2], [8, 8], [3, 7], [7, 3]], float)
    d = recist_ellipse(diagonal, (11, 11), (0, 0))
    np.testing.assert_array_equal(
        d, rasterize_ellipse((5, 5), (math.hypot(6, 6) / 2,
                                      math.hypot(4, 4) / 2), 45, (11, 11)))
    assert d[2, 2] and d[8, 8] and not d[2, 8] and not d[8, 2]


def test_recist_ellipse_semi_axes_are_at_least_one_pixel():
    flat = np.array([[1, 5], [9, 5], [5, 5], [5, 5]], float)
    e = recist_ellipse(flat, (11, 11), (0, 0))
    np.testing.assert_array_equal(
        e, rasterize_ellipse((5, 5), (4, 1), 0, (11, 11)))
    assert _extent(e) == (1, 4, 9, 6)
    dot = np.array([[5, 5], [5.5, 5], [5, 5], [5, 5]], float)
    np.testing.assert_array_equal(
        recist_ellipse(dot, (11, 11), (0, 0)),
        rasterize_ellipse((5.25, 5), (1, 1), 0, (11, 11)))
    # just above the floors the axes are used as they are
    wide = np.array([[1, 5], [9, 5], [5, 3.8], [5, 6.2]], float)
    np.testing.assert_array_equal(
        recist_ellipse(wide, (11, 11), (0, 0)),
        rasterize_ellipse((5, 5), (4, 1.2), 0, (11, 11)))


def test_box_ellipse():
    e = box_ellipse([1, 3, 9, 7], (11, 11), (0, 0))
    np.testing.assert_array_equal(
        e, rasterize_ellipse((5, 5), (4, 2), 0, (11, 11)))
    np.testing.assert_array_equal(
        box_ellipse([3, 5, 11, 9], (11, 11), (2, 2)), e)
    # a zero-width box: semi-axis 0.5 px
    line = box_ellipse([5, 1, 5, 9], (11, 11), (0, 0))
    np.testing.assert_array_equal(
        line, rasterize_ellipse((5, 5), (0.5, 4), 0, (11, 11)))
    np.testing.assert_array_equal(
        box_ellipse([1, 5, 9, 5], (11, 11), (0, 0)),
        rasterize_ellipse((5, 5), (4, 0.5), 0, (11, 11)))
    np.testing.assert_array_equal(
        box_ellipse([1, 5, 9, 6.2], (11, 11), (0, 0)),
        rasterize_ellipse((5, 5.6), (4, 0.6), 0, (11, 11)))


def test_fill_holes_and_components():
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[3, 3] = False
    filled = _fill_holes(ring)
    assert filled.dtype == bool and filled[1:6, 1:6].all()
    assert filled.sum() == 25
    # a one-pixel line has no inside: kept as it is
    line = np.zeros((5, 5), bool)
    line[2, :] = True
    np.testing.assert_array_equal(_fill_holes(line), line)

    two = np.zeros((6, 6), bool)
    two[0:2, 0:2] = True
    two[4:6, 4:6] = True
    seed = np.zeros_like(two)
    seed[0, 0] = True
    kept = _components_touching(two, seed)
    assert kept.dtype == bool and kept.sum() == 4 and kept[0:2, 0:2].all()
    # diagonal neighbours are one component (8-connectivity)
    diag = two.copy()
    diag[2, 2] = diag[3, 3] = True
    np.testing.assert_array_equal(_components_touching(diag, seed), diag)
    # a seed outside the mask keeps nothing of two components ...
    off = np.zeros_like(two)
    off[0, 5] = True
    assert not _components_touching(two, off).any()
    # ... but a single component is returned as it is
    one = np.zeros_like(two)
    one[0:2, 0:2] = True
    np.testing.assert_array_equal(_components_touching(one, off), one)
    # both components touched: both kept
    both = seed.copy()
    both[5, 5] = True
    np.testing.assert_array_equal(_components_touching(two, both), two)


# ------------------------------------------------------------ key slice
def test_key_slice_is_the_middle_channel():
    img = np.stack([np.full((2, 3), v, np.float32) for v in
                    (-1000., 40., 1000., 2000.)], axis=-1)
    out = key_slice_uint8(img[..., :3], (-160., 240.))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert (out == round(200 * 255 / 400)).all()
    # four channels: channel 2
    assert (key_slice_uint8(img, (-160., 240.)) == 255).all()
    # a 2-D image is the key slice itself
    assert (key_slice_uint8(img[..., 1], (-160., 240.)) == 128).all()


def test_key_slice_window_and_rounding():
    hu = np.array([[-161., -160., 40., 240., 241., -160 + 400 / 255 * 0.6]])
    out = key_slice_uint8(hu, (-160., 240.))[..., 0]
    assert out.tolist() == [[0, 0, 128, 255, 255, 1]]
    # the three channels are equal
    full = key_slice_uint8(hu, (-160., 240.))
    assert (full == full[..., :1]).all()


def test_key_slice_converts_back_to_hu():
    # WindowHU mapped -1000..1000 HU to 0..1; 0.55 is 100 HU
    img = np.array([[0.0, 0.55, 1.0]], np.float32)
    out = key_slice_uint8(img, (-100., 300.), (-1000., 1000.), (0., 1.))
    assert out[..., 0].tolist() == [[0, 128, 255]]
    # a reversed output range is inverted too (0.45 -> 100 HU)
    rev = np.array([[1.0, 0.45, 0.0]], np.float32)
    out = key_slice_uint8(rev, (-100., 300.), (-1000., 1000.), (1., 0.))
    assert out[..., 0].tolist() == [[0, 128, 255]]
    # without both, the image is taken as HU
    plain = np.array([[100.0, 300.0]], np.float32)
    for hu_window, out_range in (((-1000., 1000.), None),
                                 (None, (0., 1.))):
        out = key_slice_uint8(plain, (-100., 300.), hu_window, out_range)
        assert out[..., 0].tolist() == [[128, 255]]


def test_key_slice_without_window():
    img = np.array([[-1.0, 0.0, 1.0]], np.float32)
    # the pipeline's window, in either order
    for out_range in ((-1., 3.), (3., -1.)):
        out = key_slice_uint8(img, None, (-1000., 1000.), out_range)
        assert out[..., 0].tolist() == [[0, 64, 128]]
    # else the slice's own range
    out = key_slice_uint8(np.array([[2.0, 3.0, 6.0]]), None)
    assert out[..., 0].tolist() == [[0, 64, 255]]


def test_key_slice_of_an_empty_range():
    # a flat slice: all 0 (the range is widened to 1)
    assert (key_slice_uint8(np.full((2, 2), 7.0), None) == 0).all()
    # an empty output range: lo .. lo + 1
    img = np.array([[0.0, 0.5, 1.0]])
    out = key_slice_uint8(img, None, None, (0., 0.))
    assert out[..., 0].tolist() == [[0, 128, 255]]


# ---------------------------------------------------------------- masks
def _image(size=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (size, size, 3), dtype=np.uint8)


class FakeGrabCut:
    """Records GrabCut's inputs and writes a chosen labelling."""

    def __init__(self, labels=None, error=False):
        self.labels, self.error, self.calls = labels, error, []

    def __call__(self, img, mask, rect, bgd, fgd, iterations, mode):
        self.calls.append(
            dict(img=img.copy(), mask=mask.copy(), rect=rect,
                 bgd=bgd.shape, fgd=fgd.shape, iterations=iterations,
                 mode=mode))
        if self.error:
            raise cv2.error('fake failure')
        if self.labels is not None:
            mask[...] = self.labels(mask)
        return mask, bgd, fgd


@pytest.fixture
def fake(monkeypatch):
    def install(**kwargs):
        f = FakeGrabCut(**kwargs)
        monkeypatch.setattr(ops.cv2, 'grabCut', f)
        return f

    return install


def test_initial_labels_and_context(fake, monkeypatch):
    seeds = []
    real_seed = cv2.setRNGSeed
    monkeypatch.setattr(ops.cv2, 'setRNGSeed',
                        lambda s: (seeds.append(s), real_seed(s)))
    f = fake()
    img = _image(80)
    crop, offset, method = recist_grabcut_mask(
        img, BOX + 20, RECIST + 20, GrabCutSettings(
            iterations=3, context_px=4, context_ratio=0.5, seed=9))
    assert method == 'grabcut' and offset == (30, 32)
    assert seeds == [9]
    call = f.calls[0]
    assert call['iterations'] == 3 and call['mode'] == cv2.GC_INIT_WITH_MASK
    assert call['rect'] is None
    assert call['bgd'] == (1, 65) and call['fgd'] == (1, 65)
    # margin ceil(0.5 * 21) = 11 (the longer side, rounded up) > 4 px
    gc = call['mask']
    assert gc.shape == (17 + 22, 21 + 22)
    np.testing.assert_array_equal(call['img'], img[21:60, 19:62])
    in_box = np.zeros(gc.shape, bool)
    in_box[11:28, 11:32] = True
    assert (gc[~in_box] == cv2.GC_BGD).all()
    box = gc[in_box].reshape(17, 21)
    quad = rasterize_polygon(recist_polygon(RECIST), (17, 21), (10, 12))
    ell = box_ellipse(BOX, (17, 21), (10, 12))
    assert (box[quad] == cv2.GC_FGD).all()
    assert (box[ell & ~quad] == cv2.GC_PR_FGD).all()
    assert (box[~ell & ~quad] == cv2.GC_PR_BGD).all()
    assert (~ell).any() and (ell & ~quad).any()
    # the fake left the labels as they were: the probable foreground is kept
    np.testing.assert_array_equal(crop, _fill_holes(ell | quad))


@pytest.mark.parametrize('unknown,label', [('fg', cv2.GC_PR_FGD),
                                           ('bg', cv2.GC_PR_BGD)])
def test_initial_labels_of_one_kind(fake, unknown, label):
    f = fake()
    recist_grabcut_mask(_image(80), BOX + 20, RECIST + 20,
                        GrabCutSettings(unknown=unknown, context_px=4))
    box = f.calls[0]['mask'][11:28, 11:32]
    quad = rasterize_polygon(recist_polygon(RECIST), (17, 21), (10, 12))
    assert (box[quad] == cv2.GC_FGD).all()
    assert (box[~quad] == label).all()


@pytest.mark.parametrize('context_px,context_ratio,margin', [
    (16, 0.5, 16),   # the pixel floor
    (11, 0.5, 11),   # both equal
    (4, 0.3, 7),     # ceil(6.3): the ratio of the longer side
    (0, 0.0, 0),     # no context
])
def test_context_margin(fake, context_px, context_ratio, margin):
    f = fake()
    recist_grabcut_mask(_image(100), BOX + 30, RECIST + 30,
                        GrabCutSettings(context_px=context_px,
                                        context_ratio=context_ratio,
                                        unknown='bg'))
    assert f.calls[0]['mask'].shape == (17 + 2 * margin, 21 + 2 * margin)


def test_context_is_clipped_to_the_image(fake):
    f = fake()
    img = _image(40)
    # box at the top-left corner: margin 11 clipped at 0; image 40 px
    crop, offset, _ = recist_grabcut_mask(img, BOX - 10, RECIST - 10,
                                          GrabCutSettings(context_px=4))
    assert offset == (0, 2)
    gc = f.calls[0]['mask']
    assert gc.shape == (17 + 2 + 11, 21 + 11)
    np.testing.assert_array_equal(f.calls[0]['img'], img[0:30, 0:32])
    assert crop.shape == (17, 21)
    # at the bottom-right corner: the box is cut to columns 20..39 (20 px),
    # margin ceil(0.5 * 20) = 10, clipped at 39
    crop, offset, _ = recist_grabcut_mask(img, BOX + 10, RECIST + 10,
                                          GrabCutSettings(context_px=4))
    assert offset == (20, 22) and crop.shape == (17, 20)
    gc = f.calls[1]['mask']
    assert gc.shape == (10 + 17 + 1, 10 + 20)
    np.testing.assert_array_equal(f.calls[1]['img'], img[12:40, 10:40])


def test_what_is_kept_of_grabcut_labels(fake):
    quad = rasterize_polygon(recist_polygon(RECIST), (17, 21), (10, 12))

    def labels(gc):
        out = np.full(gc.shape, cv2.GC_BGD, np.uint8)
        box = np.full((17, 21), cv2.GC_PR_BGD, np.uint8)
        box[2:15, 3:18] = cv2.GC_PR_FGD  # the lesion
        box[2:15, 3] = cv2.GC_FGD
        box[4, 5] = cv2.GC_PR_BGD  # a hole in it
        box[5, 6] = cv2.GC_BGD  # another one
        box[0, 20] = cv2.GC_PR_FGD  # a separate speck
        out[11:28, 11:32] = box
        return out

    lesion = np.zeros((17, 21), bool)
    lesion[2:15, 3:18] = True
    speck = np.zeros((17, 21), bool)
    speck[0, 20] = True
    img = _image(80)
    run = dict(image_u8=img, bbox=BOX + 20, recist=RECIST + 20)
    grab = GrabCutSettings(context_px=4)
    fake(labels=labels)
    crop, _, method = recist_grabcut_mask(**run, settings=grab)
    assert method == 'grabcut'
    np.testing.assert_array_equal(crop, lesion)
    crop, _, _ = recist_grabcut_mask(
        **run, settings=replace(grab, keep_connected=False))
    np.testing.assert_array_equal(crop, lesion | speck)
    holes = lesion.copy()
    holes[4, 5] = holes[5, 6] = False
    crop, _, _ = recist_grabcut_mask(
        **run, settings=replace(grab, fill_holes=False))
    np.testing.assert_array_equal(crop, holes)
    crop, _, _ = recist_grabcut_mask(**run, settings=replace(
        grab, fill_holes=False, keep_connected=False))
    np.testing.assert_array_equal(crop, holes | speck)

    # GrabCut calling everything background: the quadrilateral remains
    fake(labels=lambda gc: np.zeros_like(gc))
    crop, _, method = recist_grabcut_mask(**run, settings=grab)
    assert method == 'grabcut'
    np.testing.assert_array_equal(crop, quad)


def test_grabcut_error_falls_back(fake):
    fake(error=True)
    crop, offset, method = recist_grabcut_mask(_image(80), BOX + 20,
                                               RECIST + 20)
    assert method == 'failed' and offset == (30, 32)
    quad = rasterize_polygon(recist_polygon(RECIST), (17, 21), (10, 12))
    ell = recist_ellipse(RECIST + 20, (17, 21), (30, 32))
    np.testing.assert_array_equal(crop, quad | ell)


def test_no_background_falls_back_and_one_background_pixel_does_not(fake):
    f = fake()
    img = _image(17)[:, :17]
    box = [0, 0, 16, 16]
    rec = np.array([[2, 8], [14, 8], [8, 3], [8, 13]], float)
    crop, offset, method = recist_grabcut_mask(img, box, rec,
                                               GrabCutSettings(unknown='fg'))
    assert method == 'failed' and offset == (0, 0) and not f.calls
    quad = rasterize_polygon(recist_polygon(rec), (17, 17))
    np.testing.assert_array_equal(
        crop, quad | recist_ellipse(rec, (17, 17), (0, 0)))
    # one column outside the box: background to model, GrabCut runs
    crop, _, method = recist_grabcut_mask(img, [0, 0, 15, 16], rec,
                                          GrabCutSettings(unknown='fg'))
    assert method == 'grabcut' and len(f.calls) == 1
    # the same box with probable background inside: GrabCut runs
    _, _, method = recist_grabcut_mask(img, box, rec,
                                       GrabCutSettings(unknown='bg'))
    assert method == 'grabcut' and len(f.calls) == 2


@pytest.mark.parametrize('min_quad_area,method', [(48.0, 'grabcut'),
                                                  (48.001, 'degenerate')])
def test_min_quad_area_is_exclusive(fake, min_quad_area, method):
    fake()
    img = _image(80)
    crop, offset, got = recist_grabcut_mask(
        img, BOX + 20, RECIST + 20,
        GrabCutSettings(min_quad_area=min_quad_area))
    assert got == method
    if method == 'degenerate':
        quad = rasterize_polygon(recist_polygon(RECIST), (17, 21), (10, 12))
        ell = recist_ellipse(RECIST + 20, (17, 21), (30, 32))
        np.testing.assert_array_equal(crop, quad | ell)


@pytest.mark.parametrize('min_diameter,method', [(12.0, 'grabcut'),
                                                 (12.001, 'tiny')])
def test_min_diameter_is_exclusive(fake, min_diameter, method):
    fake()
    crop, offset, got = recist_grabcut_mask(
        _image(80), BOX + 20, RECIST + 20,
        GrabCutSettings(min_diameter=min_diameter))
    assert got == method and offset == (30, 32)
    if method == 'tiny':
        quad = rasterize_polygon(recist_polygon(RECIST), (17, 21), (10, 12))
        ell = recist_ellipse(RECIST + 20, (17, 21), (30, 32))
        np.testing.assert_array_equal(crop, quad | ell)


def test_recist_outside_its_box_is_tiny(fake):
    f = fake()
    far = RECIST + [40, 0]  # the quadrilateral misses the box
    crop, offset, method = recist_grabcut_mask(_image(80), BOX, far)
    assert method == 'tiny' and offset == (10, 12) and not f.calls
    assert not crop.any() and crop.shape == (17, 21)


def test_non_finite_recist(fake):
    f = fake()
    ell = box_ellipse(BOX, (17, 21), (10, 12))
    for rec in (None, np.full((4, 2), np.nan), RECIST.copy()):
        if rec is not None and not np.isnan(rec).all():
            rec[2, 1] = np.inf  # one coordinate is enough
        crop, offset, method = recist_grabcut_mask(_image(80), BOX, rec)
        assert method == 'degenerate' and offset == (10, 12)
        np.testing.assert_array_equal(crop, ell)
    assert not f.calls


def test_empty_boxes():
    img = _image(40)
    crop, offset, method = recist_grabcut_mask(img, [50, 45, 60, 55], RECIST)
    assert method == 'empty' and offset == (50, 45)
    assert crop.shape == (0, 0) and crop.dtype == bool
    crop, offset, method = recist_grabcut_mask(img, [-9, -8, -2, -1], RECIST)
    assert method == 'empty' and offset == (0, 0)
    # a box between two pixel columns
    _, _, method = recist_grabcut_mask(img, [5.2, 5, 5.8, 20], RECIST)
    assert method == 'empty'


def test_unknown_must_be_one_of_three():
    with pytest.raises(ValueError) as err:
        recist_grabcut_mask(_image(40), BOX, RECIST,
                            GrabCutSettings(unknown='maybe'))
    assert str(err.value) == (
        "unknown must be 'ellipse', 'fg' or 'bg', got 'maybe'")


def test_paste_crop():
    crop = np.array([[1, 0], [1, 1]], bool)
    out = paste_crop(crop, (3, 1), (4, 6))
    assert out.dtype == np.uint8 and out.shape == (4, 6)
    expected = np.zeros((4, 6), np.uint8)
    expected[1:3, 3:5] = crop
    np.testing.assert_array_equal(out, expected)
    empty = paste_crop(np.zeros((0, 0), bool), (50, 50), (4, 6))
    assert empty.dtype == np.uint8 and not empty.any()


# ------------------------------------------------------ more boundaries
def test_box_above_or_left_of_the_image_is_empty():
    # the last row/column index is negative there: no wrap-around slice
    assert not box_pixel_mask([1, -5, 3, -3], (5, 6)).any()
    assert not box_pixel_mask([-5, 1, -3, 3], (5, 6)).any()


def test_recist_polygon_reads_integers_as_floats():
    poly = recist_polygon([[0, 5], [10, 5], [5, 0], [5, 10]])
    assert poly.dtype == np.float64
    hull = recist_polygon([[0, 0], [10, 0], [5, 1], [5, 6]])
    assert hull.dtype == np.float64


def test_recist_polygon_of_a_kite_crossing_near_one_end():
    # convex; its cross products are of very different sizes
    rec = np.array([[5.4, 9.4], [8.2, 0.0], [8.6, 0.3], [7.3, 1.8]])
    np.testing.assert_array_equal(recist_polygon(rec), rec[[0, 2, 1, 3]])


@pytest.mark.parametrize('order', [[0, 1, 2, 3], [0, 1, 3, 2], [1, 0, 2, 3]])
def test_recist_polygon_with_a_collinear_vertex_in_every_orientation(order):
    rec = np.array([[0, 0], [10, 0], [5, 0], [5, 5]], float)[order]
    hull = recist_polygon(rec)
    assert len(hull) == 3


@pytest.mark.parametrize('scale', [0.25, 1.0])
def test_recist_polygon_of_a_small_diamond_in_both_orientations(scale):
    # the cross products are 2 * a * b, below 1 for the small one
    rec = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], float) * scale + 5
    for r in (rec, rec[[0, 1, 3, 2]]):
        np.testing.assert_array_equal(recist_polygon(r), r[[0, 2, 1, 3]])


def test_polygon_area_of_narrow_integers():
    # in uint8 the products would wrap
    square = np.array([[0, 0], [200, 0], [200, 200], [0, 200]], np.uint8)
    assert polygon_area(square) == 40000.0


def test_key_slice_scale_is_255_over_the_window():
    hu = np.array([[-160 + 400 * 200 / 255, -160 + 400 * 100 / 255]])
    assert key_slice_uint8(hu, (-160., 240.))[0, :, 0].tolist() == [200, 100]


def test_fill_holes_of_two_rings():
    rings = np.zeros((12, 12), bool)
    rings[1:5, 1:5] = True
    rings[2:4, 2:4] = False
    rings[7:11, 7:11] = True
    rings[8:10, 8:10] = False
    filled = _fill_holes(rings)
    assert filled[1:5, 1:5].all() and filled[7:11, 7:11].all()
    assert filled.sum() == 32


def test_full_ellipse_pixel_count():
    # cv2's rasterisation of the whole ellipse (0..360 degrees; the pinned
    # opencv-python): a start angle of 1 degree drops 7 boundary pixels
    e = rasterize_ellipse((50, 50), (40, 20), 0, (101, 101))
    assert e.sum() == 2613


@pytest.mark.parametrize('long_dx,short_dy,method', [
    (6.0, 1 / 3, 'grabcut'),  # long axis exactly 6, area 2 (rounded)
    (5.999, 0.5, 'tiny'),
    (6.0, 0.33, 'degenerate'),
])
def test_default_limits(fake, long_dx, short_dy, method):
    f = fake()
    rec = np.array([[20 - long_dx / 2, 20], [20 + long_dx / 2, 20],
                    [20, 20 - short_dy], [20, 20 + short_dy]])
    _, _, got = recist_grabcut_mask(_image(80), BOX + 20, rec + 20)
    assert got == method
    if method == 'grabcut':
        call = f.calls[0]
        assert call['iterations'] == 5
        # margin: 16 px, more than ceil(0.5 * 21) = 11
        assert call['mask'].shape == (17 + 32, 21 + 32)


def test_default_seed(fake, monkeypatch):
    seeds = []
    monkeypatch.setattr(ops.cv2, 'setRNGSeed', seeds.append)
    fake()
    recist_grabcut_mask(_image(80), BOX + 20, RECIST + 20)
    assert seeds == [0]


def test_default_context_ratio(fake):
    f = fake()
    img = _image(200)
    box = np.array([50, 50, 129, 69], float)  # 80 x 20 pixels
    rec = np.array([[60, 60], [120, 60], [90, 55], [90, 65]], float)
    recist_grabcut_mask(img, box, rec)
    # margin ceil(0.5 * 80) = 40 > 16
    assert f.calls[0]['mask'].shape == (20 + 80, 80 + 80)


def test_one_pixel_wide_boxes_are_not_empty(fake):
    fake()
    img = _image(40)
    crop, offset, method = recist_grabcut_mask(img, [10, 5, 10, 30], RECIST)
    assert method != 'empty' and crop.shape == (26, 1) and offset == (10, 5)
    crop, offset, method = recist_grabcut_mask(img, [5, 10, 30, 10], RECIST)
    assert method != 'empty' and crop.shape == (1, 26) and offset == (5, 10)


def test_a_box_given_as_one_row(fake):
    fake()
    crop, offset, method = recist_grabcut_mask(_image(80), [BOX + 20],
                                               RECIST + 20)
    assert method == 'grabcut' and offset == (30, 32)


def test_missing_recist_values_are_not_finite(fake):
    fake()
    rec = RECIST.tolist()
    rec[1][0] = None
    crop, offset, method = recist_grabcut_mask(_image(80), BOX, rec)
    assert method == 'degenerate'
    np.testing.assert_array_equal(crop, box_ellipse(BOX, (17, 21), (10, 12)))
