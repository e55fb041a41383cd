# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the cube box coder (:mod:`...coders.delta_zyxd_bbox_coder`).

Non-zero means, both ends of the ``log(d / ad)`` clamp, batched anchors,
and the exact messages of the shape checks: the cases a small change of
the code would get wrong while the round trip of
``test_cube_anchors_and_coder.py`` still passes (docs/mutation_testing.md).
"""
import math
import re

import pytest
import torch

from mmlesion.methods.aggregated3d.models import DeltaZYXDBBoxCoder

# centre (z, y, x) = (2, 2, 2), side 4
ANCHOR = [0., 0., 0., 4., 4., 4.]
# centre (z, y, x) = (1.5, 3, 3.5), side 5: raw deltas
# (dz, dy, dx, dd) = (-0.125, 0.25, 0.375, log 1.25)
GT = [1., 0.5, -1., 6., 5.5, 4.]
MEANS = (0.1, -0.2, 0.3, -0.4)
STDS = (0.5, 0.25, 2., 4.)
# ((-0.125 - 0.1) / 0.5, (0.25 + 0.2) / 0.25, (0.375 - 0.3) / 2,
#  (log 1.25 + 0.4) / 4)
NORMALISED = [-0.45, 1.8, 0.0375, (0.22314355 + 0.4) / 4]
INIT_MSG = 'DeltaZYXDBBoxCoder: means and stds need 4 values (z, y, x, d)'


def t(rows) -> torch.Tensor:
    """A float tensor of ``rows``."""
    return torch.tensor(rows, dtype=torch.float32)


@pytest.mark.parametrize('means,stds', [((0., 0., 0.), (1., 1., 1., 1.)),
                                        ((0., 0., 0., 0.), (1., 1., 1.)),
                                        ((0., ) * 5, (1., ) * 5)])
def test_means_or_stds_of_other_length_are_rejected(means, stds):
    with pytest.raises(ValueError, match=re.escape(INIT_MSG) + '$'):
        DeltaZYXDBBoxCoder(means=means, stds=stds)


def test_encode_subtracts_the_means_and_divides_by_the_stds():
    coder = DeltaZYXDBBoxCoder(means=MEANS, stds=STDS)
    deltas = coder.encode(t([ANCHOR]), t([GT]))
    assert deltas.shape == (1, 4)
    assert torch.allclose(deltas, t([NORMALISED]), atol=1e-6)


def test_decode_adds_the_means_back():
    coder = DeltaZYXDBBoxCoder(means=MEANS, stds=STDS)
    assert torch.allclose(
        coder.decode(t([ANCHOR]), t([NORMALISED])), t([GT]), atol=1e-5)
    # zero deltas decode to the means: z moves by 0.5 sides, d by e^-0.5
    coder = DeltaZYXDBBoxCoder(means=(0.5, 0., 0., -0.5))
    side = 4 * math.exp(-0.5)
    expected = [2 - side / 2] * 2 + [4 - side / 2] + [2 + side / 2] * 2 + [
        4 + side / 2
    ]
    assert torch.allclose(
        coder.decode(t([ANCHOR]), t([[0., 0., 0., 0.]])),
        t([expected]),
        atol=1e-5)


@pytest.mark.parametrize('dd,side', [(10., 1000.), (-10., 0.256),
                                     (math.log(62.5), 1000.),
                                     (-math.log(62.5), 0.256), (0., 16.)])
def test_decode_clamps_the_log_ratio_at_both_ends_by_default(dd, side):
    coder = DeltaZYXDBBoxCoder()
    box = coder.decode(t([[0., 0., 0., 16., 16., 16.]]), t([[0., 0., 0., dd]]))
    h = side / 2
    assert torch.allclose(
        box, t([[8 - h] * 3 + [8 + h] * 3]), rtol=1e-5, atol=1e-5)


def test_decode_clamps_at_a_given_max_log_ratio():
    coder = DeltaZYXDBBoxCoder(max_log_ratio=1.)
    box = coder.decode(t([ANCHOR] * 3), t([[0., 0., 0., 5.],
                                           [0., 0., 0., -5.],
                                           [0., 0., 0., 0.5]]))
    sides = box[:, 3] - box[:, 0]
    assert torch.allclose(
        sides, t([4 * math.e, 4 / math.e, 4 * math.exp(0.5)]), atol=1e-5)


def test_decode_keeps_leading_batch_dimensions():
    coder = DeltaZYXDBBoxCoder(means=MEANS, stds=STDS)
    anchors = torch.rand(2, 3, 6) * 10
    anchors[..., 3:] += anchors[..., :3] + 1
    deltas = torch.randn(2, 3, 4)
    flat = coder.decode(anchors.reshape(6, 6), deltas.reshape(6, 4))
    batched = coder.decode(anchors, deltas)
    assert batched.shape == (2, 3, 6)
    assert torch.allclose(batched.reshape(6, 6), flat, atol=1e-5)
    # a batch of 6 anchors of 6 columns is not read as (N=6, 6) anchors
    anchors6 = torch.rand(2, 6, 6)
    anchors6[..., 3:] += 1
    assert coder.decode(anchors6, torch.zeros(2, 6, 4)).shape == (2, 6, 6)


@pytest.mark.parametrize('shape1,shape2', [((2, 6), (3, 6)), ((2, 5), (2, 5)),
                                           ((2, 6, 6), (2, 6, 6)),
                                           ((2, 6, 5), (2, 6, 5))])
def test_encode_needs_two_n_by_6_tensors(shape1, shape2):
    msg = (f'encode needs two (N, 6) tensors, got {shape1} and {shape2}')
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        DeltaZYXDBBoxCoder().encode(torch.ones(shape1), torch.ones(shape2))


@pytest.mark.parametrize('shape1,shape2', [((2, 6), (3, 4)), ((2, 5), (2, 4)),
                                           ((2, 6), (2, 3)),
                                           ((2, 6, 5), (2, 6, 4)),
                                           ((2, 4, 6), (2, 4, 3)),
                                           ((2, 3, 6), (2, 4, 4)),
                                           ((3, 2, 6), (2, 2, 4))])
def test_decode_needs_matching_anchors_and_deltas(shape1, shape2):
    msg = (f'decode needs (N, 6) anchors and (N, 4) deltas, got {shape1} '
           f'and {shape2}')
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        DeltaZYXDBBoxCoder().decode(torch.ones(shape1), torch.ones(shape2))
