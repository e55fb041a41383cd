# Copyright (c) mmlesion contributors. All rights reserved.
"""Differential-evolution anchor optimisation (Zlocha et al. 2019, 2.1)."""
import math

import numpy as np
import pytest
from mmengine.config import Config
from mmdet.registry import TASK_UTILS

from mmlesion.anchors.de_anchor_optimizer import (
    OBJECTIVES, PAPER_RATIOS, PAPER_SCALES, RETINANET_SIZES, AnchorConfig,
    DEAnchorOptimizer, anchor_shapes, best_anchor_iou,
    best_anchor_iou_batched, boxes_to_wh, centered_iou, evaluate_anchors,
    format_anchor_config, objective_from_iou, ratios_from_pairs)
from mmlesion.testing import shared_data_root

P3_P7 = (8, 16, 32, 64, 128)


def mmdet_wh(gen_cfg: dict) -> np.ndarray:
    """(w, h) of the base anchors mmdet's AnchorGenerator builds."""
    gen = TASK_UTILS.build(dict(gen_cfg))
    base = np.concatenate([a.numpy() for a in gen.gen_base_anchors()])
    return np.stack([base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]], 1)


# ------------------------------------------------------------ geometry
def test_centered_iou_hand_values():
    boxes = np.array([[10., 10.], [10., 20.]])
    anchors = np.array([[10., 10.], [20., 20.], [20., 10.]])
    iou = centered_iou(boxes, anchors)
    expected = np.array([[1.0, 100 / 400, 100 / 200],
                         [100 / 200, 200 / 400, 100 / 300]])
    np.testing.assert_allclose(iou, expected)
    # batched anchors (S, A, 2) -> (S, N, A)
    batched = centered_iou(boxes, np.stack([anchors, anchors * 2]))
    assert batched.shape == (2, 2, 3)
    np.testing.assert_allclose(batched[0], expected)
    np.testing.assert_allclose(best_anchor_iou(boxes, anchors), [1.0, 0.5])


def test_ratios_and_shapes_follow_mmdet_conventions():
    assert ratios_from_pairs([3.0, 1.5]) == pytest.approx(
        [1 / 3, 1 / 1.5, 1.0, 1.5, 3.0])
    wh = anchor_shapes([32], [4.0], [1.0])
    # mmdet: ratio = h / w
    np.testing.assert_allclose(wh, [[16., 64.]])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_batched_best_iou_equals_all_pairs(seed):
    """The pruned evaluation (4 anchors per box and scale) is exact."""
    rng = np.random.default_rng(seed)
    boxes = np.exp(rng.uniform(np.log(1.0), np.log(3000.), (3000, 2)))
    sizes = np.sort(rng.uniform(4, 700, 6))  # not a geometric series
    num_cand = 7
    ratios = np.sort(np.exp(rng.uniform(-1.8, 1.8, (num_cand, 5))), 1)
    scales = rng.uniform(0.2, 3.0, (num_cand, 3))
    fast = best_anchor_iou_batched(boxes, sizes, ratios, scales)
    for s in range(num_cand):
        ref = best_anchor_iou(boxes, anchor_shapes(sizes, ratios[s],
                                                   scales[s]))
        np.testing.assert_allclose(fast[s], ref, rtol=0, atol=1e-12)


def test_objective_values():
    u = np.array([1.0, 0.5, 0.25])
    assert objective_from_iou(u, 'iou') == pytest.approx(1 - 1.75 / 3)
    assert objective_from_iou(u, 'ce') == pytest.approx(math.log(8) / 3)
    focal = (0.25 * math.log(2) + 0.5625 * math.log(4)) / 3
    assert objective_from_iou(u, 'focal') == pytest.approx(focal)
    assert focal == pytest.approx(0.3176925, abs=1e-6)
    # a box without any overlap is finite (clipped), not inf
    assert np.isfinite(objective_from_iou(np.array([0.0]), 'ce'))
    with pytest.raises(ValueError, match='objective'):
        objective_from_iou(u, 'dice')


def test_evaluate_anchors_counts_boxes_below_threshold():
    anchors = AnchorConfig((8, ), (32., ), (1.0, ), (1.0, ))
    boxes = np.array([[32., 32.], [16., 16.], [32., 16.], [100., 100.]])
    stats = evaluate_anchors(boxes, anchors)
    # IoUs 1, 0.25, 0.5, 0.1024
    assert stats.num_boxes == 4
    assert stats.num_below == 2
    assert stats.frac_below == 0.5
    assert stats.mean_iou == pytest.approx((1 + .25 + .5 + .1024) / 4)
    assert set(stats.objectives) == set(OBJECTIVES)
    assert '2 / 4 (50.00 %)' in stats.summary()


def test_boxes_to_wh_rejects_degenerate_boxes():
    np.testing.assert_allclose(boxes_to_wh([[1, 2, 11, 32]]), [[10., 30.]])
    with pytest.raises(ValueError, match='index 1'):
        boxes_to_wh([[0, 0, 5, 5], [3, 3, 3, 9]])


# ------------------------------------------------ mmdet AnchorGenerator
def test_from_generator_cfg_reproduces_mmdet_retinanet():
    retina = dict(
        type='AnchorGenerator',
        octave_base_scale=4,
        scales_per_octave=3,
        ratios=[0.5, 1.0, 2.0],
        strides=list(P3_P7))
    cfg = AnchorConfig.from_generator_cfg(retina)
    assert cfg.sizes == (32., 64., 128., 256., 512.)
    np.testing.assert_allclose(cfg.shapes(), mmdet_wh(retina), rtol=1e-5)
    default = AnchorConfig.retinanet_default()
    np.testing.assert_allclose(default.shapes(), cfg.shapes(), rtol=1e-12)


def test_config_round_trip_with_mmdet_anchor_generator(tmp_path):
    """The written config builds exactly the optimised anchors, also
    merged by mmengine into a RetinaNet head that sets
    ``octave_base_scale`` / ``scales_per_octave``."""
    anchors = AnchorConfig(
        strides=(4, 8, 16, 32, 64),
        sizes=(32., 64., 128., 256., 512.),
        ratios=tuple(ratios_from_pairs([1.2345, 3.0001])),
        scales=(0.4157, 0.5234, 0.6609))
    (tmp_path / 'retina.py').write_text(
        'model = dict(bbox_head=dict(anchor_generator=dict('
        "type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3, "
        'ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128])))\n')
    text = format_anchor_config(anchors, 'retina.py', header=['header line'],
                                decimals=4)
    assert text.startswith('# header line')
    (tmp_path / 'anchors.py').write_text(text)
    gen = Config.fromfile(str(tmp_path / 'anchors.py')).model.bbox_head[
        'anchor_generator']
    # the floats survive exactly (reciprocals written as 1 / r)
    assert tuple(gen['ratios']) == anchors.ratios
    assert tuple(gen['scales']) == anchors.scales
    assert gen['octave_base_scale'] is None
    np.testing.assert_allclose(mmdet_wh(gen), anchors.shapes(), rtol=1e-6)


# ------------------------------------------------------------- the search
def synthetic_boxes(ratio_values, scales, jitter=0.0, copies=1, seed=0):
    """Boxes that are exactly (or nearly) anchors of a known config."""
    wh = anchor_shapes(RETINANET_SIZES, ratios_from_pairs(ratio_values),
                       scales)
    wh = np.repeat(wh, copies, axis=0)
    if jitter:
        rng = np.random.default_rng(seed)
        wh = wh * np.exp(rng.uniform(-jitter, jitter, wh.shape))
    return wh


def test_recovers_known_optimum():
    true_r, true_s = (1.5, 3.0), (0.5, 0.7, 0.95)
    boxes = synthetic_boxes(true_r, true_s, jitter=0.01, copies=8)
    opt = DEAnchorOptimizer(
        objective='iou', seed=3, popsize=15, log_interval=0)
    res = opt.optimize(boxes)
    r = sorted(v for v in res.anchors.ratios if v > 1)
    np.testing.assert_allclose(r, true_r, rtol=0.005)
    np.testing.assert_allclose(res.anchors.scales, true_s, rtol=0.005)
    assert res.stats.mean_iou > 0.98
    assert res.stats.num_below == 0
    # ... and the default anchors are clearly worse on these boxes
    base = evaluate_anchors(boxes, AnchorConfig.retinanet_default())
    assert base.mean_iou < res.stats.mean_iou - 0.05
    assert res.nit >= 1 and res.nfev >= res.nit
    assert res.history == sorted(res.history, reverse=True)


@pytest.mark.parametrize('objective', ['ce', 'focal'])
def test_other_objectives_find_exact_boxes(objective):
    boxes = synthetic_boxes((1.25, 2.5), (0.45, 0.62, 0.85))
    res = DEAnchorOptimizer(
        objective=objective, seed=0, log_interval=0).optimize(boxes)
    assert res.objective == objective
    assert res.stats.mean_iou > 0.97
    assert res.fun == pytest.approx(res.stats.objectives[objective])


def test_seed_determinism_and_callback():
    boxes = synthetic_boxes((1.5, 3.0), (0.5, 0.7, 0.95),
                            jitter=0.2,
                            copies=4,
                            seed=1)
    calls = []

    def callback(gen, x, fun):
        calls.append((gen, fun))
        return gen >= 5  # stop early

    kwargs = dict(
        objective='focal',
        popsize=8,
        log_interval=0,
        polish=False,
        callback=callback)
    a = DEAnchorOptimizer(seed=11, **kwargs).optimize(boxes)
    n_calls = len(calls)
    b = DEAnchorOptimizer(seed=11, **kwargs).optimize(boxes)
    assert n_calls == 5 and len(calls) == 10
    np.testing.assert_array_equal(a.x, b.x)
    assert a.anchors == b.anchors
    c = DEAnchorOptimizer(seed=12, **kwargs).optimize(boxes)
    assert not np.array_equal(a.x, c.x)


def test_result_is_rounded_and_within_bounds():
    boxes = synthetic_boxes((1.5, 3.0), (0.5, 0.7, 0.95), jitter=0.3, copies=3)
    opt = DEAnchorOptimizer(
        seed=0, popsize=8, maxiter=30, decimals=3, log_interval=5)
    res = opt.optimize(boxes)
    r = [v for v in res.anchors.ratios if v > 1]
    assert 1.0 <= r[0] <= 2.0 and 2.0 <= r[1] <= 4.0
    assert all(0.4 <= s <= 1.6 for s in res.anchors.scales)
    assert all(round(v, 3) == v for v in r + list(res.anchors.scales))
    assert res.anchors.scales == tuple(sorted(res.anchors.scales))


def test_invalid_arguments():
    with pytest.raises(ValueError, match='objective'):
        DEAnchorOptimizer(objective='dice')
    with pytest.raises(ValueError, match='ratio bounds'):
        DEAnchorOptimizer(ratio_bounds=((0.5, 2.0), ))
    with pytest.raises(ValueError, match='sizes'):
        DEAnchorOptimizer(sizes=(32, 64), strides=(8, ))
    with pytest.raises(ValueError, match='No boxes'):
        DEAnchorOptimizer().optimize(np.zeros((0, 2)))


# ---------------------------------------------------------- real DeepLesion
def test_deeplesion_val_default_vs_paper_anchors():
    """The facts the paper's search starts from, on the real val boxes."""
    root = shared_data_root()
    csv = None if root is None else (root / 'deeplesion' / 'annotations' /
                                     'DL_info_val.csv')
    if csv is None or not csv.is_file():
        pytest.skip('shared DL_info_val.csv is not available')
    from mmlesion.anchors.box_sources import boxes_from_dl_info
    wh = boxes_to_wh(boxes_from_dl_info(str(csv)))
    assert len(wh) == 4889
    default = evaluate_anchors(wh, AnchorConfig.retinanet_default())
    paper = evaluate_anchors(
        wh, AnchorConfig(P3_P7, RETINANET_SIZES, PAPER_RATIOS, PAPER_SCALES))
    # about 30 % of the lesions have no default anchor at IoU 0.5
    assert 0.25 < default.frac_below < 0.35
    assert paper.num_below <= 5
    assert paper.mean_iou > default.mean_iou + 0.15
