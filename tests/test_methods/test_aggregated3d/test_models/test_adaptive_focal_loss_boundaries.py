# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`AdaptiveFocalLoss` (Eq. 3).

Both ends of the valid ``alpha`` and ``T`` ranges, the default T schedule
(1 -> 10) including iterations past ``max_iters`` and no Runner, a negative
exactly at ``tn_thr`` (not a true negative), inputs without negatives and
the exact messages: the cases a small change of the code would get wrong
while ``test_adaptive_focal_loss.py`` still passes
(docs/mutation_testing.md).
"""
import math
import re

import pytest
import torch
from mmengine.logging import MessageHub

from mmlesion.methods.aggregated3d.models import AdaptiveFocalLoss


@pytest.fixture
def hub():
    """The current message hub without ``max_iters`` (as outside a
    Runner); its ``max_iters`` and ``iter`` are restored afterwards.

    No new hub is created: ``MessageHub.get_instance`` of an existing name
    does not make it current again, so a new one would shadow the hubs of
    other tests run later in the same process.
    """
    hub = MessageHub.get_current_instance()
    saved = {key: hub.get_info(key) for key in ('max_iters', 'iter')}
    hub.update_info('max_iters', None)
    yield hub
    for key, value in saved.items():
        hub.update_info(key, value)


@pytest.mark.parametrize('alpha', [0., 1., 0.5])
def test_alpha_at_both_ends_is_accepted(alpha):
    assert AdaptiveFocalLoss(alpha=alpha).alpha == alpha


@pytest.mark.parametrize('alpha', [-0.01, 1.01, 1.5, 2.])
def test_alpha_outside_zero_one_is_rejected(alpha):
    msg = f'alpha must be in [0, 1], got {alpha}'
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        AdaptiveFocalLoss(alpha=alpha)


@pytest.mark.parametrize('t_start,t_end', [(0., 0.), (0., 10.), (.5, .5),
                                           (1., 0.)])
def test_t_from_zero_is_accepted(t_start, t_end, hub):
    loss = AdaptiveFocalLoss(t_start=t_start, t_end=t_end)
    assert loss.current_t() == t_start


@pytest.mark.parametrize('t_start,t_end', [(-.1, 1.), (1., -.1),
                                           (-1., -1.)])
def test_negative_t_is_rejected(t_start, t_end):
    with pytest.raises(ValueError,
                       match='^t_start and t_end must be >= 0$'):
        AdaptiveFocalLoss(t_start=t_start, t_end=t_end)


def test_default_t_grows_from_1_to_10_and_stays(hub):
    loss = AdaptiveFocalLoss()
    assert loss.current_t() == 1.  # no Runner: no max_iters
    hub.update_info('max_iters', 200)
    for it, t in [(0, 1.), (100, 5.5), (200, 10.), (300, 10.), (-50, 1.)]:
        hub.update_info('iter', it)
        assert loss.current_t() == t, it


def test_a_negative_exactly_at_tn_thr_is_not_a_true_negative(hub):
    loss = AdaptiveFocalLoss()
    # three negatives at p = 0.5 (logit 0), three at p = sigmoid(-5)
    logits = torch.tensor([0., 0., 0., -5., -5., -5.])
    terms = loss.terms(logits, torch.zeros(6, dtype=torch.long))
    assert terms['n_tn'].item() == 3.
    p = [.5] * 3 + [1 / (1 + math.exp(5.))] * 3
    focal = sum(-.2 * q**5 * math.log(1 - q) for q in p)
    assert terms['neg'].item() == pytest.approx(
        math.log(3) / 3 * focal, rel=1e-5)
    # a threshold above 0.5 counts them
    labels = torch.zeros(6, dtype=torch.long)
    terms = AdaptiveFocalLoss(tn_thr=.6).terms(logits, labels)
    assert terms['n_tn'].item() == 6.


def test_no_negatives_gives_a_zero_negative_term(hub):
    loss = AdaptiveFocalLoss(loss_weight=2.)
    logits = torch.tensor([1., -1.], requires_grad=True)
    labels = torch.ones(2, dtype=torch.long)
    terms = loss.terms(logits, labels)
    assert terms['neg'].item() == 0. and terms['n_tn'].item() == 0.
    assert terms['n_neg'].item() == 0. and terms['n_pos'].item() == 2.
    expected = (math.log1p(math.exp(-1.)) + math.log1p(math.exp(1.))) / 2
    value = loss(logits, labels)
    assert value.item() == pytest.approx(2 * expected, rel=1e-6)
    value.backward()
    assert logits.grad is not None
    # nothing valid at all: both terms 0, still a graph
    ignored = loss.terms(logits, labels, weight=torch.zeros(2))
    assert ignored['neg'].item() == 0. and ignored['pos'].item() == 0.
    assert ignored['n_tn'].item() == 0.


def test_score_and_label_counts_must_match():
    with pytest.raises(ValueError, match='^3 scores but 2 labels$'):
        AdaptiveFocalLoss()(torch.zeros(3), torch.zeros(2, dtype=torch.long))
