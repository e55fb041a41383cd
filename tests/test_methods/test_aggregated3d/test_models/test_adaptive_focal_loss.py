# Copyright (c) mmlesion contributors. All rights reserved.
import math

import torch
from mmengine.logging import MessageHub

from mmdet.registry import MODELS
import mmlesion.methods.aggregated3d  # noqa: F401  (registers the losses)


def _hand_eq3(logits, labels, t, alpha=0.8, gamma=5.0):
    """Eq. 3 by hand, one anchor at a time."""
    pos_terms, neg_terms, n_tn = [], [], 0
    for z, y in zip(logits, labels):
        p = 1 / (1 + math.exp(-z))
        if y == 1:
            pos_terms.append(-math.log(p))
        else:
            neg_terms.append(-(1 - alpha) * p**gamma * math.log(1 - p))
            n_tn += p < 0.5
    n_tn = max(n_tn, 2)
    pos = sum(pos_terms) / len(pos_terms) if pos_terms else 0.
    return t * math.log(n_tn) / n_tn * sum(neg_terms) + pos


def test_eq3_hand_worked_and_t_growth():
    loss_fn = MODELS.build(dict(type='AdaptiveFocalLoss', t_start=1.,
                                t_end=5.))
    logits = torch.tensor([2.0, -1.0, -3.0, 0.5, -0.2, 1.0, -2.0])
    labels = torch.tensor([1, 0, 0, 0, 0, 1, 0])
    # worked case: negatives p = .269, .047, .622, .450, .119 -> N_TN = 4
    hub = MessageHub.get_instance('test_adaptive_focal_eq3')
    hub.update_info('max_iters', 100)
    values = []
    for it, t in [(0, 1.), (50, 3.), (100, 5.)]:
        hub.update_info('iter', it)
        assert loss_fn.current_t() == t
        value = loss_fn(logits, labels).item()
        assert math.isclose(value, _hand_eq3(logits.tolist(),
                                             labels.tolist(), t),
                            rel_tol=1e-5)
        values.append(value)
    # only the negative term grows, linearly in T
    pos_only = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.))) / 2
    neg_terms = [v - pos_only for v in values]
    assert math.isclose(neg_terms[1], 3 * neg_terms[0], rel_tol=1e-5)
    assert math.isclose(neg_terms[2], 5 * neg_terms[0], rel_tol=1e-5)


def test_ignored_anchors_and_no_positives():
    loss_fn = MODELS.build(dict(type='AdaptiveFocalLoss'))
    logits = torch.tensor([3.0, -1.0, 0.0], requires_grad=True)
    labels = torch.tensor([1, 0, 0])
    weight = torch.tensor([0., 1., 1.])  # the positive is ignored
    value = loss_fn(logits, labels, weight=weight)
    expected = _hand_eq3([-1.0, 0.0], [0, 0], loss_fn.current_t())
    assert math.isclose(value.item(), expected, rel_tol=1e-5)
    value.backward()
    assert logits.grad[0] == 0 and logits.grad[2] > 0


def test_terms_sum_to_the_loss_and_the_start_prior():
    """``terms`` splits Eq. 3; at a 0.01 prior the negative term is ~1e-11
    (no early focus on the negatives), at 0.5 it is of the positive term's
    order."""
    loss_fn = MODELS.build(dict(type='AdaptiveFocalLoss', loss_weight=2.))
    labels = torch.zeros(75000, dtype=torch.long)
    labels[:20] = 1
    for prior, lo, hi in [(0.01, 1e-13, 1e-10), (0.5, 0.02, 0.2)]:
        logits = torch.full((75000, ), math.log(prior / (1 - prior)))
        if prior == 0.5:  # an untrained head scatters around 0
            logits = logits + torch.linspace(-0.1, 0.1, 75000)
        terms = loss_fn.terms(logits, labels)
        neg = (terms['neg'] / terms['t']).item()  # at T = 1
        assert lo < neg < hi, (prior, neg)
        assert math.isclose(terms['pos'].item(), -math.log(prior),
                            rel_tol=0.1)
        assert math.isclose(loss_fn(logits, labels).item(),
                            2 * (terms['neg'] + terms['pos']).item(),
                            rel_tol=1e-6)
        assert terms['n_pos'] == 20 and terms['n_neg'] == 74980
