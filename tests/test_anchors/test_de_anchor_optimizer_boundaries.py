# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the differential-evolution anchor search
(:mod:`mmlesion.anchors.de_anchor_optimizer`).

The search is stochastic, so it is pinned through its pure parts and
through what it hands to scipy, never through timing: the objective (one
candidate or a population, the chunks of candidates, the count of
evaluated candidates, the ratio layout ``1/r, 1, r``), the bounds, the
search vector -> anchors mapping and the rounding, every argument check at
its limit with its message, the defaults, the settings given to
:func:`scipy.optimize.differential_evolution` (a recording stand-in
returns a chosen optimum), the per-generation callback and log, and the
result (docs/mutation_testing.md).
"""
import types

import numpy as np
import pytest

from mmlesion.anchors import de_anchor_optimizer as deo
from mmlesion.anchors.de_anchor_optimizer import (
    PAPER_RATIO_BOUNDS, PAPER_SCALE_BOUNDS, AnchorConfig, DEAnchorOptimizer,
    _DEObjective, anchor_shapes, best_anchor_iou, evaluate_anchors,
    objective_from_iou)

BOXES = np.array([[32., 32.], [20., 45.], [60., 30.], [100., 250.]])


def _reference(x, sizes, num_ratio_values, objective):
    r = np.asarray(x[:num_ratio_values])
    ratios = list(1 / r) + [1.0] + list(r)
    best = best_anchor_iou(BOXES, anchor_shapes(sizes, ratios,
                                                x[num_ratio_values:]))
    return float(objective_from_iou(best, objective))


# ------------------------------------------------------------ objective
def test_objective_of_one_candidate_and_of_a_population():
    sizes = [16, 32, 64]
    func = _DEObjective(BOXES, sizes, 2, 'ce')
    x = np.array([1.5, 3.0, 0.5, 0.8, 1.2])
    value = func(x)
    assert isinstance(value, float)
    assert value == pytest.approx(_reference(x, sizes, 2, 'ce'), abs=1e-12)
    pop = np.stack([x, x * [1, 1, 2, 1, 1], x * [1.2, 1, 1, 1, 0.5]], 1)
    values = func(pop)
    assert values.shape == (3, )
    for s in range(3):
        assert values[s] == pytest.approx(
            _reference(pop[:, s], sizes, 2, 'ce'), abs=1e-12)
    assert func.num_candidates == 4
    assert func.sizes.dtype == np.float64


def test_ratio_layout():
    func = _DEObjective(BOXES, [32], 2, 'iou')
    ratios, scales = func.ratios_scales(np.array([[2.0, 4.0, 0.5, 1.0]]))
    np.testing.assert_allclose(ratios, [[0.5, 0.25, 1.0, 2.0, 4.0]])
    np.testing.assert_allclose(scales, [[0.5, 1.0]])
    one = _DEObjective(BOXES, [32], 1, 'iou')
    ratios, scales = one.ratios_scales(np.array([[2.0, 0.7], [3.0, 0.9]]))
    np.testing.assert_allclose(ratios, [[0.5, 1.0, 2.0], [1 / 3, 1.0, 3.0]])
    np.testing.assert_allclose(scales, [[0.7], [0.9]])


@pytest.mark.parametrize('chunk_elements', [1, 4 * 2 * 4, 4 * 2 * 4 * 2 + 1])
def test_objective_chunks(monkeypatch, chunk_elements):
    # per candidate 4 * K * N = 4 * 2 * 4 elements
    rng = np.random.default_rng(0)
    pop = np.concatenate([rng.uniform(1, 4, (1, 5)),
                          rng.uniform(0.4, 1.6, (2, 5))])
    full = _DEObjective(BOXES, [16, 64], 1, 'focal')(pop)
    monkeypatch.setattr(deo, '_CHUNK_ELEMENTS', chunk_elements)
    calls = []
    real = deo.best_anchor_iou_batched

    def spy(box_wh, sizes, ratios, scales):
        calls.append(len(ratios))
        return real(box_wh, sizes, ratios, scales)

    monkeypatch.setattr(deo, 'best_anchor_iou_batched', spy)
    func = _DEObjective(BOXES, [16, 64], 1, 'focal')
    np.testing.assert_allclose(func(pop), full, rtol=0, atol=1e-15)
    expected = {1: [1] * 5, 32: [1] * 5, 65: [2, 2, 1]}[chunk_elements]
    assert calls == expected
    assert func.num_candidates == 5


# ------------------------------------------------------ bounds, vectors
def test_defaults():
    opt = DEAnchorOptimizer()
    assert opt.sizes == (32.0, 64.0, 128.0, 256.0, 512.0)
    assert opt.strides == (8, 16, 32, 64, 128)
    assert opt.objective == 'focal'
    assert opt.ratio_bounds == ((1.0, 2.0), (2.0, 4.0)) == PAPER_RATIO_BOUNDS
    assert opt.num_scales == 3
    assert opt.scale_bounds == (0.4, 1.6) == PAPER_SCALE_BOUNDS
    assert (opt.popsize, opt.maxiter, opt.tol) == (15, 1000, 0.01)
    assert opt.seed is None and opt.workers == 1 and opt.polish is True
    assert (opt.decimals, opt.log_interval, opt.callback) == (4, 10, None)
    assert opt.bounds == [(1.0, 2.0), (2.0, 4.0), (0.4, 1.6), (0.4, 1.6),
                          (0.4, 1.6)]


def test_settings_are_normalised():
    opt = DEAnchorOptimizer(sizes=[16, 32], strides=[4.0, 8.0],
                            ratio_bounds=[[1, 3]], num_scales=2.0,
                            scale_bounds=[1, 2], popsize=5.0, maxiter=7.0,
                            tol=1, workers=-1.0, polish=0, decimals=2.0,
                            log_interval=3.0, seed=5)
    assert opt.sizes == (16.0, 32.0) and type(opt.sizes[0]) is float
    assert opt.strides == (4, 8) and type(opt.strides[0]) is int
    assert opt.ratio_bounds == ((1.0, 3.0), )
    assert type(opt.ratio_bounds[0][0]) is float
    assert opt.scale_bounds == (1.0, 2.0)
    assert type(opt.scale_bounds[1]) is float
    for name in ('num_scales', 'popsize', 'maxiter', 'workers', 'decimals',
                 'log_interval'):
        assert type(getattr(opt, name)) is int, name
    assert type(opt.tol) is float and opt.polish is False and opt.seed == 5
    assert opt.bounds == [(1.0, 3.0), (1.0, 2.0), (1.0, 2.0)]


@pytest.mark.parametrize('kwargs', [
    dict(ratio_bounds=((1.0, 1.0001), )),  # low exactly 1
    dict(scale_bounds=(1e-9, 1e-8)),
    dict(num_scales=1),
    dict(workers=-1),
    dict(objective='iou'),
    dict(objective='ce'),
])
def test_limits_accepted(kwargs):
    DEAnchorOptimizer(**kwargs)


@pytest.mark.parametrize('kwargs,message', [
    (dict(objective='dice'),
     "Unknown objective 'dice'; expected one of ('iou', 'ce', 'focal')"),
    (dict(sizes=(32, 64), strides=(8, )), '2 sizes but 1 strides'),
    (dict(ratio_bounds=((0.99, 2.0), )),
     'ratio bounds must satisfy 1 <= low < high (the pair is r and 1/r), '
     'got (0.99, 2.0)'),
    (dict(ratio_bounds=((1.0, 2.0), (2.0, 2.0))),
     'ratio bounds must satisfy 1 <= low < high (the pair is r and 1/r), '
     'got (2.0, 2.0)'),
    (dict(scale_bounds=(0.0, 1.0)),
     'scale bounds must satisfy 0 < low < high, got (0.0, 1.0)'),
    (dict(scale_bounds=(1.0, 1.0)),
     'scale bounds must satisfy 0 < low < high, got (1.0, 1.0)'),
    (dict(num_scales=0), 'num_scales must be >= 1, got 0'),
    (dict(workers=0), 'workers must be >= 1 or -1 (all cores)'),
])
def test_limits_refused(kwargs, message):
    with pytest.raises(ValueError) as err:
        DEAnchorOptimizer(**kwargs)
    assert str(err.value) == message


def test_anchors_from_x_and_round_x():
    opt = DEAnchorOptimizer(sizes=[16, 32], strides=[4, 8])
    anchors = opt.anchors_from_x([[3.0, 1.5, 0.9, 0.5, 0.7]])
    assert anchors == AnchorConfig((4, 8), (16.0, 32.0),
                                   (1 / 3, 1 / 1.5, 1.0, 1.5, 3.0),
                                   (0.5, 0.7, 0.9))
    assert all(type(s) is float for s in anchors.scales)
    for bad in ([1.5, 3.0, 0.5, 0.7], [1.5, 3.0, 0.5, 0.7, 0.9, 1.0]):
        with pytest.raises(ValueError) as err:
            opt.anchors_from_x(bad)
        assert str(err.value) == f'expected 5 values, got {len(bad)}'
    x = opt.round_x([1.23456, 2.5, 0.11115])
    assert x.dtype == np.float64
    assert x.tolist() == [1.2346, 2.5, np.round(0.11115, 4)]
    assert DEAnchorOptimizer(decimals=1).round_x([1.25, 1.35]).tolist() == \
        [1.2, 1.4]


# ------------------------------------------------------------- the search
class FakeDE:
    """Records the settings; walks ``generations`` candidates, then
    returns the last one."""

    def __init__(self, generations, nfev=17, message='done'):
        self.generations, self.nfev, self.message = generations, nfev, message
        self.calls = []

    def __call__(self, func, **kwargs):
        self.calls.append(kwargs)
        pop = np.stack(self.generations, 1)
        if kwargs['vectorized']:
            func(pop)
        else:
            for x in self.generations:
                func(x)
        x = self.generations[-1]
        for gen, cand in enumerate(self.generations):
            r = types.SimpleNamespace(x=cand, fun=func(cand))
            if kwargs['callback'](r):
                x = cand
                break
        return types.SimpleNamespace(x=np.asarray(x), nit=len(
            self.generations), nfev=self.nfev, success=True,
            message=self.message)


GENERATIONS = [np.array([1.5, 3.0, 0.5, 0.8, 1.2]),
               np.array([1.4, 2.9, 0.45, 0.75, 1.1]),
               np.array([1.23456, 2.34567, 0.61234, 0.51234, 1.55555])]


def test_settings_given_to_scipy(monkeypatch):
    fake = FakeDE(GENERATIONS)
    monkeypatch.setattr(deo, 'differential_evolution', fake)
    opt = DEAnchorOptimizer(seed=3, popsize=6, maxiter=9, tol=0.5,
                            polish=False, log_interval=0)
    res = opt.optimize(BOXES)
    kwargs = dict(fake.calls[0])
    callback = kwargs.pop('callback')
    assert callable(callback)
    assert kwargs == dict(bounds=opt.bounds, strategy='best1bin',
                          maxiter=9, popsize=6, tol=0.5, rng=3,
                          polish=False, init='latinhypercube',
                          updating='deferred', workers=1, vectorized=True)
    # the result: rounded anchors, their statistics, the raw optimum
    np.testing.assert_array_equal(res.x, GENERATIONS[-1])
    assert res.x.dtype == np.float64
    assert res.anchors == opt.anchors_from_x(
        [1.2346, 2.3457, 0.6123, 0.5123, 1.5556])
    assert res.stats == evaluate_anchors(BOXES, res.anchors)
    assert res.objective == 'focal'
    assert res.fun == res.stats.objectives['focal']
    assert res.nit == 3
    # the vectorised population (3) and the 3 callback evaluations
    assert res.nfev == 6 and type(res.nfev) is int
    assert res.success is True and res.message == 'done'
    assert res.history == [pytest.approx(opt_fun(opt, g))
                           for g in GENERATIONS]
    assert res.time_s >= 0


def opt_fun(opt, x):
    func = _DEObjective(BOXES, opt.sizes, len(opt.ratio_bounds),
                        opt.objective)
    return func(np.asarray(x, float))


def test_process_pool_counts_scipy_evaluations(monkeypatch):
    fake = FakeDE(GENERATIONS, nfev=41)
    monkeypatch.setattr(deo, 'differential_evolution', fake)
    res = DEAnchorOptimizer(workers=2, log_interval=0).optimize(BOXES)
    assert fake.calls[0]['vectorized'] is False
    assert fake.calls[0]['workers'] == 2
    assert fake.calls[0]['polish'] is True and fake.calls[0]['rng'] is None
    assert res.nfev == 41


def test_callback_and_log(monkeypatch):
    fake = FakeDE(GENERATIONS * 2)
    monkeypatch.setattr(deo, 'differential_evolution', fake)
    logs = []
    monkeypatch.setattr(deo, 'print_log',
                        lambda msg, **kw: logs.append((msg, kw)))
    seen = []

    def callback(gen, x, fun):
        seen.append((gen, x.tolist(), fun))
        return True if gen == 4 else None

    opt = DEAnchorOptimizer(log_interval=2, maxiter=50, callback=callback,
                            objective='iou')
    res = opt.optimize(BOXES)
    assert [g for g, _, _ in seen] == [1, 2, 3, 4]
    assert seen[3][1] == GENERATIONS[0].tolist()
    assert len(res.history) == 4
    assert [s[2] for s in seen] == res.history
    # generations 2 and 4 are logged
    assert len(logs) == 2 and all(kw == dict(logger='current')
                                  for _, kw in logs)
    anchors = opt.anchors_from_x(GENERATIONS[1])
    stats = evaluate_anchors(BOXES, anchors)
    assert logs[0][0] == (
        f'[anchor DE] generation 2/50: iou={res.history[1]:.5f}, '
        f'{stats.summary()}; ratios {deo._fmt(anchors.ratios)}, scales '
        f'{deo._fmt(anchors.scales)}')
    assert logs[1][0].startswith('[anchor DE] generation 4/50: ')
    # a callback returning a false value does not stop
    fake = FakeDE(GENERATIONS)
    monkeypatch.setattr(deo, 'differential_evolution', fake)
    res = DEAnchorOptimizer(log_interval=0,
                            callback=lambda *a: 0).optimize(BOXES)
    assert len(res.history) == 3
    assert logs[2:] == []


def test_boxes_are_checked():
    opt = DEAnchorOptimizer(log_interval=0)
    with pytest.raises(ValueError) as err:
        opt.optimize(np.zeros((0, 2)))
    assert str(err.value) == 'No boxes to optimise the anchors on'
    for bad in ([[10.0, 0.0]], [[10.0, -1.0]], [[np.inf, 5.0]],
                [[np.nan, 5.0]]):
        with pytest.raises(ValueError) as err:
            opt.optimize(bad)
        assert str(err.value) == \
            'Box widths and heights must be finite and > 0'


def test_a_small_seeded_search_is_reproducible():
    boxes = np.array([[16., 32.], [32., 16.], [24., 24.], [40., 120.]])
    kwargs = dict(sizes=[16, 64], strides=[4, 16], ratio_bounds=[(1, 4)],
                  num_scales=1, popsize=4, maxiter=3, polish=False,
                  log_interval=0, seed=1)
    a = DEAnchorOptimizer(**kwargs).optimize(boxes)
    b = DEAnchorOptimizer(**kwargs).optimize(boxes.ravel().tolist())
    np.testing.assert_array_equal(a.x, b.x)
    assert a.anchors == b.anchors and a.fun == b.fun
    assert a.nfev >= 4 * 2  # at least the initial population (popsize * D)
    assert 1 <= a.x[0] <= 4 and 0.4 <= a.x[1] <= 1.6


def test_sub_pixel_boxes_and_wall_time(monkeypatch):
    fake = FakeDE(GENERATIONS)
    monkeypatch.setattr(deo, 'differential_evolution', fake)
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(deo.time, 'perf_counter', lambda: next(clock))
    res = DEAnchorOptimizer(log_interval=0).optimize([[0.5, 0.25]])
    assert res.time_s == 2.5


def test_round_x_is_float():
    assert DEAnchorOptimizer().round_x([1, 2]).dtype == np.float64
