# Copyright (c) mmlesion contributors. All rights reserved.
import math

import torch

from mmdet.registry import MODELS
import mmlesion.methods.aggregated3d  # noqa: F401  (registers the losses)


def _bce(z, y):
    p = 1 / (1 + math.exp(-z))
    return -math.log(p) if y else -math.log(1 - p)


def test_hardest_negatives_only():
    loss_fn = MODELS.build(dict(type='OHEMBinaryLoss', neg_pos_ratio=2,
                                min_neg=1))
    logits = torch.tensor([1.0, -4.0, 2.0, -1.0, 0.5, -3.0],
                          requires_grad=True)
    labels = torch.tensor([1, 0, 0, 0, 0, 0])
    # one positive -> the 2 hardest negatives: logits 2.0 and 0.5
    expected = _bce(1.0, 1) + (_bce(2.0, 0) + _bce(0.5, 0)) / 2
    value = loss_fn(logits, labels)
    assert math.isclose(value.item(), expected, rel_tol=1e-6)
    value.backward()
    assert logits.grad[1] == 0 and logits.grad[3] == 0 and logits.grad[2] > 0
    # no positives: min_neg hardest negatives
    value = loss_fn(logits.detach(), torch.zeros(6, dtype=torch.long))
    assert math.isclose(value.item(), _bce(2.0, 0), rel_tol=1e-6)
