# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the RECIST diameters (:mod:`mmlesion.structures.recist`).

The end points of both axes of one-pixel masks at several (anisotropic)
spacings, computed in closed form from the module's definitions, the
corners the long axis runs between on both diagonals, the Feret diameter
of one, two and narrow-integer points, and a zero spacing: the cases a
small change of the code would get wrong while ``test_recist.py`` still
passes (docs/mutation_testing.md).
"""
import math
import re

import numpy as np
import pytest

from mmlesion.structures.recist import max_feret_diameter, recist_diameters


def _one_pixel_axes(x: int, y: int, sx: float, sy: float):
    """Closed-form axes of the one-pixel mask at ``(x, y)``.

    The long axis is the pixel's diagonal from its corner ``(x - .5,
    y - .5)``; the pixel's centre lies half of it along the axis, in the
    band ``floor(L / 2 / band)`` of width ``band = min(sx, sy)``, whose
    centre line carries the short axis; across the diagonal the rectangle
    is ``2 sx sy / L`` wide.

    Returns:
        tuple: long and short axis (mm) and their (2, 2) end points in
        pixels.
    """
    length = math.hypot(sx, sy)
    u = np.array([sx, sy]) / length
    v = np.array([-u[1], u[0]])
    band = min(sx, sy)
    t = (math.floor(length / 2 / band) + .5) * band
    half = sx * sy / length
    mid = np.array([x * sx, y * sy]) + (t - length / 2) * u
    short_ends = np.stack([mid - half * v, mid + half * v]) / [sx, sy]
    long_ends = np.array([[x - .5, y - .5], [x + .5, y + .5]])
    return length, 2 * half, long_ends, short_ends


@pytest.mark.parametrize('spacing', [(1., 1.), (2., 1.), (.5, 1.), (1., 4.),
                                     (.7, .7), (.6, .9)])
def test_one_pixel_axes_in_closed_form(spacing):
    mask = np.zeros((3, 5), bool)
    mask[1, 3] = True  # x = 3, y = 1
    d = recist_diameters(mask, spacing)
    long_mm, short_mm, long_ends, short_ends = _one_pixel_axes(3, 1, *spacing)
    assert d.long_mm == pytest.approx(long_mm, abs=1e-9)
    assert d.short_mm == pytest.approx(short_mm, abs=1e-9)
    np.testing.assert_allclose(d.long_axis, long_ends, atol=1e-9)
    np.testing.assert_allclose(d.short_axis, short_ends, atol=1e-9)
    assert d.area_px == 1


@pytest.mark.parametrize('mask,ends', [
    ([[1, 0], [0, 1]], [[-.5, -.5], [1.5, 1.5]]),
    ([[0, 1], [1, 0]], [[-.5, 1.5], [1.5, -.5]]),
])
def test_the_long_axis_runs_between_the_far_corners(mask, ends):
    d = recist_diameters(np.array(mask, bool))
    assert d.long_mm == pytest.approx(2 * math.sqrt(2))
    assert sorted(d.long_axis.tolist()) == ends
    # across the diagonal the two pixels are one pixel diagonal wide
    assert d.short_mm == pytest.approx(math.sqrt(2))
    assert d.area_px == 2


def test_max_feret_diameter_of_one_and_two_points():
    assert max_feret_diameter(np.array([[3., 4.]])) == (0., 0, 0)
    assert max_feret_diameter(np.array([[0., 0.], [3., 4.]])) == (5., 0, 1)
    assert max_feret_diameter([0., 0., 3., 4.]) == (5., 0, 1)


def test_max_feret_diameter_of_narrow_integer_points_does_not_wrap():
    # in uint8, 30**2 + 40**2 would wrap to 132 + 64
    pts = np.array([[0, 0], [30, 40], [10, 10]], dtype=np.uint8)
    assert max_feret_diameter(pts) == (50., 0, 1)


@pytest.mark.parametrize('spacing', [(1., 0.), (0., 1.), (1., -1.),
                                     (1., float('nan')), (float('inf'), 1.)])
def test_a_spacing_that_is_not_positive_and_finite_is_refused(spacing):
    msg = ('recist_diameters: pixel spacing must be > 0 mm, got '
           f'{spacing}')
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        recist_diameters(np.ones((2, 2), bool), spacing)


def test_an_empty_mask_is_refused():
    with pytest.raises(ValueError,
                       match='^recist_diameters: the mask is empty$'):
        recist_diameters(np.zeros((2, 2), bool))
