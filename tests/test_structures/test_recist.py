# Copyright (c) mmlesion contributors. All rights reserved.
"""RECIST 1.1 long and short axis of a mask (mmlesion.structures.recist)."""
import cv2
import numpy as np
import pytest

from mmlesion.structures.recist import max_feret_diameter, recist_diameters


def _ellipse(size, centre, axes, angle):
    mask = np.zeros(size, np.uint8)
    cv2.ellipse(mask, (centre, axes, angle), 1, -1)
    return mask.astype(bool)


@pytest.mark.parametrize('angle', [0., 30., 90., 135.])
def test_ellipse_axes_at_any_angle(angle):
    # full axes 80 x 30 px at 0.5 mm/px: 40 x 15 mm (+ up to ~1.5 px of
    # pixel rectangles at the ends)
    d = recist_diameters(_ellipse((200, 200), (100, 100), (80, 30), angle),
                         (.5, .5))
    assert 40. <= d.long_mm <= 41.
    assert 15. <= d.short_mm <= 16.5  # + a pixel diagonal, rasterisation
    # the long axis lies along the ellipse's major axis
    v = d.long_axis[1] - d.long_axis[0]
    direction = np.degrees(np.arctan2(v[1], v[0])) % 180
    assert min(abs(direction - angle % 180),
               180 - abs(direction - angle % 180)) < 5  # flat ends
    # the short axis is perpendicular and crosses the long one
    w = d.short_axis[1] - d.short_axis[0]
    assert abs(np.dot(v, w)) / np.linalg.norm(v) / np.linalg.norm(w) < 1e-6
    assert np.linalg.norm(w) * .5 == pytest.approx(d.short_mm, rel=1e-6)
    assert np.linalg.norm(v) * .5 == pytest.approx(d.long_mm, rel=1e-6)


def test_anisotropic_pixels_and_exact_small_cases():
    # a 10 x 4 px rectangle, 0.5 x 2 mm pixels: 5 x 8 mm, the diagonal is
    # the long axis (RECIST measures the longest line, not a side)
    mask = np.zeros((20, 20), bool)
    mask[5:9, 5:15] = True
    d = recist_diameters(mask, (.5, 2.))
    assert d.long_mm == pytest.approx(np.hypot(5., 8.))
    assert d.area_px == 40
    one = np.zeros((3, 3), bool)
    one[1, 1] = True
    d = recist_diameters(one, (1., 1.))
    assert d.long_mm == pytest.approx(np.sqrt(2))
    line = np.zeros((5, 12), bool)
    line[2, 1:11] = True  # 10 px horizontal line: 10 x 1 px
    d = recist_diameters(line, (1., 1.))
    assert d.long_mm == pytest.approx(np.hypot(10, 1))
    assert 1. <= d.short_mm <= 1.2


def test_max_feret_diameter_of_points():
    pts = np.array([[0, 0], [3, 4], [1, 1], [0, 4]], float)
    dist, i, j = max_feret_diameter(pts)
    assert dist == pytest.approx(5.)
    assert {i, j} == {0, 1}
    assert max_feret_diameter(pts[:1])[0] == 0.


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match='empty'):
        recist_diameters(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match='2D'):
        recist_diameters(np.ones((2, 4, 4), bool))
    with pytest.raises(ValueError, match='spacing'):
        recist_diameters(np.ones((4, 4), bool), (0., 1.))
