# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :mod:`mmlesion.structures.ct_geometry`.

Integer input and numbers still as text (a ``.mhd`` header's
``ElementSpacing``, a CSV row) come out as float64, and the exact
messages of the shape check: the cases a small change of the code would
get wrong while ``test_ct_geometry.py`` still passes
(docs/mutation_testing.md).
"""
import re

import numpy as np
import pytest

from mmlesion.structures.ct_geometry import (as_points, direction_matrix,
                                             voxel_to_world, world_to_voxel)


def test_integer_and_text_points_become_float64():
    for points in ([[1, 2, 3]], [['1', '2', '3']], (1, 2, 3)):
        pts = as_points(points, 'p')
        assert pts.dtype == np.float64
        assert pts.tolist() == [[1., 2., 3.]]


@pytest.mark.parametrize('points,shape', [([[1., 2.]], (1, 2)),
                                          ([1., 2., 3., 4.], (4, )),
                                          (np.zeros((2, 3, 1)), (2, 3, 1))])
def test_the_message_names_the_argument_and_its_shape(points, shape):
    msg = f'points_zyx must be an (N, 3) array, got shape {shape}'
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        voxel_to_world(points, (1., 1., 1.), (0., 0., 0.))
    msg = f'p must be an (N, 3) array, got shape {shape}'
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        as_points(points, 'p')


def test_direction_matrix_is_float64():
    for direction in (np.eye(3, dtype=np.int64), [1, 0, 0, 0, 1, 0, 0, 0, 1],
                      '1 0 0 0 1 0 0 0 1'.split()):
        d = direction_matrix(direction)
        assert d.dtype == np.float64 and d.tolist() == np.eye(3).tolist()


def test_spacing_and_origin_as_text_are_parsed():
    # voxel (z, y, x) = (15, 20, 10) at spacing (2, 1, 1) from (1, 2, 3)
    spacing, origin = '2 1 1'.split(), '1 2 3'.split()
    world = voxel_to_world([['15', '20', '10']], spacing, origin)
    assert world.dtype == np.float64
    assert world.tolist() == [[11., 22., 33.]]
    voxel = world_to_voxel([['11', '22', '33']], spacing, origin,
                           '1 0 0 0 1 0 0 0 1'.split())
    assert voxel.dtype == np.float64
    assert voxel.tolist() == [[15., 20., 10.]]
