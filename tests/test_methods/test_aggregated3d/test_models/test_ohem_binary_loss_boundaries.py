# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`OHEMBinaryLoss`: the default numbers of hard
negatives (3 per positive, 16 without positives) and ignored anchors never
picked as hard negatives (docs/mutation_testing.md)."""
import math

import pytest
import torch

from mmlesion.methods.aggregated3d.models import OHEMBinaryLoss


def _neg_bce(z: float) -> float:
    """Binary cross-entropy of logit ``z`` against label 0."""
    return math.log1p(math.exp(z))


def _pos_bce(z: float) -> float:
    """Binary cross-entropy of logit ``z`` against label 1."""
    return math.log1p(math.exp(-z))


NEG = [float(i) / 10 for i in range(30)]  # 30 negatives, distinct logits


def test_16_hardest_negatives_by_default_without_positives():
    value = OHEMBinaryLoss()(torch.tensor(NEG), torch.zeros(30,
                                                            dtype=torch.long))
    hardest = sorted(NEG)[-16:]
    assert value.item() == pytest.approx(
        sum(map(_neg_bce, hardest)) / 16, rel=1e-6)


def test_3_hardest_negatives_per_positive_by_default():
    pos = [1.] * 6  # 6 positives: 18 hard negatives (> 16)
    logits = torch.tensor(pos + NEG)
    labels = torch.tensor([1] * 6 + [0] * 30)
    hardest = sorted(NEG)[-18:]
    expected = _pos_bce(1.) + sum(map(_neg_bce, hardest)) / 18
    assert OHEMBinaryLoss()(logits, labels).item() == pytest.approx(
        expected, rel=1e-6)


def test_ignored_anchors_are_never_hard_negatives():
    logits = torch.tensor([1., 5., -1., -2.])
    labels = torch.tensor([1, 0, 0, 0])
    weight = torch.tensor([1., 0., 1., 1.])  # the hardest one is ignored
    loss = OHEMBinaryLoss(neg_pos_ratio=1, min_neg=1)
    expected = _pos_bce(1.) + _neg_bce(-1.)
    assert loss(logits, labels, weight).item() == pytest.approx(
        expected, rel=1e-6)
