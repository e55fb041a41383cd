# Copyright (c) mmlesion contributors. All rights reserved.
"""2D -> 3D box stacking (docs/protocols.md §2) on hand-made tracks."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mmlesion.evaluation.functional.box_stacking import (StackSettings,
                                                         stack_slice_boxes)


def _box(x, y, w=10., h=10.):
    return [x, y, x + w, y + h]


def test_one_track_score_weighted_xy_and_z_extent():
    zs = [5, 6, 7]
    boxes = [np.array([_box(10, 10)]), np.array([_box(12, 10)]),
             np.array([_box(11, 11)])]
    scores = [np.array([.2]), np.array([.6]), np.array([.2])]
    (f, ) = stack_slice_boxes(zs, boxes, scores)
    # x1 = (.2 * 10 + .6 * 12 + .2 * 11) / 1.0 = 11.4
    assert f.bbox_3d == pytest.approx([11.4, 10.2, 4.5, 21.4, 20.2, 7.5])
    assert f.score == pytest.approx(.6)
    assert f.slice_range == (5, 7) and f.key_slice == 6
    assert [b[0] for b in f.boxes_2d] == [5, 6, 7]
    assert f.boxes_2d[1][1] == _box(12, 10)
    (g, ) = stack_slice_boxes(zs, boxes, scores,
                              StackSettings(score_mode='mean'))
    assert g.score == pytest.approx(1. / 3.)
    # order of the inputs does not matter
    (h, ) = stack_slice_boxes(zs[::-1], boxes[::-1], scores[::-1])
    assert h.bbox_3d == pytest.approx(f.bbox_3d)


def test_iou_threshold_is_strict_and_splits_drifting_tracks():
    # IoU of [0, 0, 10, 10] and [5, 0, 15, 10] is 50 / 150 = 1/3
    zs = [0, 1]
    boxes = [np.array([_box(0, 0)]), np.array([_box(5, 0)])]
    scores = [np.array([.9]), np.array([.8])]
    assert len(stack_slice_boxes(zs, boxes, scores, StackSettings(.5))) == 2
    assert len(stack_slice_boxes(zs, boxes, scores, StackSettings(.3))) == 1
    assert len(stack_slice_boxes(zs, boxes, scores,
                                 StackSettings(1. / 3))) == 2


def test_gap_splits_unless_bridged():
    zs = [0, 1, 3, 4]  # slice 2 has no detection
    boxes = [np.array([_box(0, 0)])] * 4
    scores = [np.array([.5])] * 4
    split = stack_slice_boxes(zs, boxes, scores)
    assert sorted(f.slice_range for f in split) == [(0, 1), (3, 4)]
    (bridged, ) = stack_slice_boxes(zs, boxes, scores,
                                    StackSettings(max_gap=1))
    assert bridged.slice_range == (0, 4)
    assert len(bridged.boxes_2d) == 4
    # an empty slice entry is the same as no entry
    zs2 = [0, 1, 2, 3, 4]
    boxes2 = boxes[:2] + [np.zeros((0, 4))] + boxes[2:]
    scores2 = scores[:2] + [np.zeros(0)] + scores[2:]
    assert len(stack_slice_boxes(zs2, boxes2, scores2)) == 2
    # a low-score box removed by score_thr also splits
    scores3 = [np.array([.5]), np.array([.5]), np.array([.05]),
               np.array([.5]), np.array([.5])]
    boxes3 = [np.array([_box(0, 0)])] * 5
    assert len(stack_slice_boxes(zs2, boxes3, scores3)) == 1
    assert len(stack_slice_boxes(zs2, boxes3, scores3,
                                 StackSettings(score_thr=.1))) == 2


def test_two_lesions_on_the_same_slices_stay_apart():
    zs = list(range(4))
    boxes, scores = [], []
    for z in zs:
        # listed in a different order on each slice
        pair = [_box(0, 0), _box(40, 40, 20, 20)]
        sc = [.9, .4]
        if z % 2:
            pair, sc = pair[::-1], sc[::-1]
        boxes.append(np.array(pair))
        scores.append(np.array(sc))
    out = stack_slice_boxes(zs, boxes, scores)
    assert len(out) == 2
    assert out[0].score == pytest.approx(.9)
    assert out[0].bbox_3d == pytest.approx([0, 0, -.5, 10, 10, 3.5])
    assert out[1].bbox_3d == pytest.approx([40, 40, -.5, 60, 60, 3.5])


def test_one_box_extends_one_chain_best_iou_first():
    # two chains end on slice 0 near each other; one box on slice 1 goes to
    # the chain it overlaps most, the other chain ends
    zs = [0, 1]
    boxes = [np.array([_box(0, 0), _box(2, 0)]), np.array([_box(2.5, 0)])]
    scores = [np.array([.9, .3]), np.array([.5])]
    out = stack_slice_boxes(zs, boxes, scores, StackSettings(iou_thr=.5))
    assert len(out) == 2
    two = [f for f in out if f.slice_range == (0, 1)]
    assert len(two) == 1 and two[0].boxes_2d[0][1] == _box(2, 0)


def test_min_slices_and_arrays():
    zs = [0, 1, 5]
    boxes = [np.array([_box(0, 0)])] * 2 + [np.array([_box(50, 50)])]
    scores = [np.array([.5]), np.array([.5]), np.array([.95])]
    out = stack_slice_boxes(zs, boxes, scores, StackSettings(min_slices=2))
    assert len(out) == 1 and out[0].slice_range == (0, 1)
    out = stack_slice_boxes(zs, boxes, scores)
    assert [f.score for f in out] == pytest.approx([.95, .5])


def test_many_random_tracks_are_recovered():
    rng = np.random.default_rng(0)
    truth = []
    per_slice = {z: ([], []) for z in range(60)}
    for i in range(60):
        # tracks in separate 40 px cells, two per cell at different z
        z0 = int(rng.integers(0, 25)) + 30 * (i // 30)
        n = int(rng.integers(1, 6))
        x, y = 40. * (i % 30 % 6), 40. * (i % 30 // 6)
        w = rng.uniform(8, 30)
        truth.append((z0, z0 + n - 1, x, y))
        for z in range(z0, z0 + n):
            jitter = rng.uniform(-.5, .5, 2)
            per_slice[z][0].append(_box(x + jitter[0], y + jitter[1], w, w))
            per_slice[z][1].append(rng.uniform(.1, 1.))
    zs = sorted(per_slice)
    out = stack_slice_boxes(zs, [np.array(per_slice[z][0]) for z in zs],
                            [np.array(per_slice[z][1]) for z in zs])
    assert len(out) == len(truth)
    found = sorted((f.slice_range[0], f.slice_range[1],
                    round(f.bbox_3d[0] / 40.) * 40.,
                    round(f.bbox_3d[1] / 40.) * 40.) for f in out)
    assert found == sorted(truth)
    assert all(a.score >= b.score for a, b in zip(out, out[1:]))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='same length'):
        stack_slice_boxes([0, 1], [np.zeros((0, 4))], [np.zeros(0)])
    with pytest.raises(ValueError, match='entry 0 .slice 3. has 1 boxes'):
        stack_slice_boxes([3], [np.array([_box(0, 0)])], [np.zeros(2)])
    with pytest.raises(ValueError, match='non-finite'):
        stack_slice_boxes([3], [np.array([[0, 0, np.nan, 1]])], [[.5]])
    with pytest.raises(ValueError, match='score_mode'):
        stack_slice_boxes([], [], [], StackSettings(score_mode='sum'))


# --- equivalence with the straightforward algorithm ---------------------


def _load_reference_tool():
    """The benchmark tool, which carries the first implementation of
    stack_slice_boxes (the reference of these tests and the baseline of the
    benchmark: written once)."""
    tool = (Path(__file__).parents[3] / 'projects' / 'benchmarks' / 'benchmark_box_stacking.py')
    spec = importlib.util.spec_from_file_location('benchmark_box_stacking',
                                                  tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_REFERENCE = _load_reference_tool()
_reference_greedy_match = _REFERENCE.reference_greedy_match
_reference_stack = _REFERENCE.reference_stack_slice_boxes


def _dicts(findings):
    """The findings as the reference's dicts."""
    return [f.to_dict() for f in findings]


def _random_case(rng, num_slices, lesions, noise, grid, seen=.8, skip=.1,
                 jitter=1. / 8):
    """Entries (z, boxes, scores) with chains of jittered boxes around a few
    centres (many overlaps), exact duplicates, boxes on an integer grid
    (equal IoUs), equal and zero scores, empty and missing slices, several
    entries on one slice, in shuffled order."""
    zs, boxes, scores = [], [], []
    centres = rng.uniform(0, 60, (lesions, 2))
    sizes = rng.uniform(4, 30, lesions)
    for z in range(num_slices):
        if rng.random() < skip:
            continue  # a slice without an entry
        b = []
        for c, w in zip(centres, sizes):
            if rng.random() < seen:
                b.append([c[0] - w / 2, c[1] - w / 2, c[0] + w / 2,
                          c[1] + w / 2] + rng.normal(0, w * jitter, 4))
        for _ in range(rng.integers(0, noise + 1)):
            x, y = rng.uniform(0, 60, 2)
            b.append([x, y, x + rng.uniform(2, 30), y + rng.uniform(2, 30)])
        b = np.array(b).reshape(-1, 4)
        if grid:
            b = np.round(b / 2) * 2
        if len(b) and rng.random() < .3:  # duplicates
            b = np.concatenate([b, b[rng.integers(0, len(b), 2)]])
        b = b[rng.permutation(len(b))]
        s = rng.choice([0., .05, .3, .5, .5, .9, 1.], len(b)) if rng.random(
        ) < .5 else rng.random(len(b))
        if rng.random() < skip:
            b, s = b[:0], s[:0]  # an empty entry
        cut = int(rng.integers(0, len(b) + 1))
        if rng.random() < .3:  # two entries for this slice
            zs += [z, z]
            boxes += [b[:cut].astype(np.float32), b[cut:]]
            scores += [s[:cut], s[cut:].tolist()]
        else:
            zs.append(z)
            boxes.append(b.astype(np.float32) if z % 2 else b)
            scores.append(s)
    order = rng.permutation(len(zs))
    return ([zs[i] for i in order], [boxes[i] for i in order],
            [scores[i] for i in order])


@pytest.mark.parametrize('seed', range(60))
def test_same_findings_as_the_reference(seed):
    rng = np.random.default_rng(seed)
    zs, boxes, scores = _random_case(
        rng, num_slices=int(rng.integers(1, 25)),
        lesions=int(rng.integers(1, 6)), noise=int(rng.integers(0, 8)),
        grid=bool(seed % 2))
    for _ in range(4):
        opts = dict(
            iou_thr=float(rng.choice([.5, .3, 1. / 3, 0., .8])),
            max_gap=int(rng.integers(0, 3)),
            score_thr=float(rng.choice([0., 0., .2, .5])),
            min_slices=int(rng.integers(1, 4)),
            score_mode=str(rng.choice(['max', 'mean'])),
            slice_half_extent=[.5, 0, 1.25][int(rng.integers(0, 3))])
        fast = stack_slice_boxes(zs, boxes, scores, StackSettings(**opts))
        ref = _reference_stack(zs, boxes, scores, **opts)
        # repr: the same values, types and signs of zero, in the same order
        assert repr(_dicts(fast)) == repr(ref), opts


@pytest.mark.parametrize('max_gap', [0, 1, 2])
@pytest.mark.parametrize('score_mode', ['max', 'mean'])
def test_same_findings_as_the_reference_long_dense_chains(max_gap,
                                                          score_mode):
    # chains longer than numpy's pairwise-summation block (8 and 128),
    # dense overlaps, negative scores (score-weighted or plain means)
    rng = np.random.default_rng(max_gap)
    zs, boxes, scores = _random_case(rng, num_slices=150, lesions=6,
                                     noise=6, grid=False, seen=1., skip=0.,
                                     jitter=.01)
    scores = [np.asarray(s) - .3 * (z % 3 == 0)
              for z, s in zip(zs, scores)]
    for score_thr in (-1., 0.):
        fast = stack_slice_boxes(zs, boxes, scores, StackSettings(
            max_gap=max_gap, score_thr=score_thr, score_mode=score_mode))
        ref = _reference_stack(zs, boxes, scores, max_gap=max_gap,
                               score_thr=score_thr, score_mode=score_mode)
        assert repr(_dicts(fast)) == repr(ref)
        if score_thr < 0:
            assert max(len(f.boxes_2d) for f in fast) > 128


def test_iou_is_mmdet_bbox_overlaps_bit_for_bit():
    import torch
    from mmdet.structures.bbox import bbox_overlaps

    from mmlesion.evaluation.functional.box_stacking import _box_iou
    rng = np.random.default_rng(0)
    for scale in (1., 100., 1e6):
        a = rng.uniform(0, 1, (40, 4)) * scale
        b = np.concatenate([a[:10], rng.uniform(0, 1, (30, 4)) * scale,
                            np.round(a[:5] * 2) / 2, a[:3, [2, 3, 0, 1]]])
        a[:5, 2:] = a[:5, :2]  # zero area
        b[-5:, 2] = b[-5:, 0] - 1  # negative width
        ref = bbox_overlaps(torch.from_numpy(a), torch.from_numpy(b))

        def cols(x):
            x = np.ascontiguousarray(x.T)
            return x, (x[2] - x[0]) * (x[3] - x[1])

        iou = _box_iou(*cols(a), *cols(b))
        assert iou.dtype == np.float64
        np.testing.assert_array_equal(iou, ref.numpy())
        assert (iou.view(np.int64) == ref.numpy().view(np.int64)).all()


@pytest.mark.parametrize('seed', range(20))
def test_greedy_match_is_the_repeated_argmax(seed):
    from mmlesion.evaluation.functional.box_stacking import _greedy_match
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 30, 2))
    # few distinct values: many ties, many contested rows and columns
    iou = rng.choice([0., .2, .5, .6, .6, .75, 1.], shape)
    for thr in (.5, 0., .7):
        rows, cols = _greedy_match(iou.copy(), iou > thr)
        assert list(zip(rows.tolist(), cols.tolist())) == \
            _reference_greedy_match(iou, thr)
