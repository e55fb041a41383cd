# Copyright (c) mmlesion contributors. All rights reserved.
"""The lesion steps of the stacking (StackSettings.contain_thr, join_gap,
merge_iou, merge_inside, and min_slices after them): each joins or keeps what it should,
and is off by default (the paper tables' rule)."""
import numpy as np
import pytest

from mmlesion.evaluation.functional.box_stacking import (StackSettings,
                                                         fuse_findings,
                                                         stack_slice_boxes)


def _stack(per_slice, **settings):
    zs = sorted(per_slice)
    return stack_slice_boxes(
        zs, [np.array([b for b, _ in per_slice[z]]).reshape(-1, 4)
             for z in zs],
        [np.array([s for _, s in per_slice[z]]) for z in zs],
        StackSettings(**settings))


def test_a_box_inside_the_last_links_with_contain_thr():
    big, small = [0, 0, 10, 10], [3, 3, 7, 7]  # IoU 0.16, inside: 1.0
    boxes = {0: [(big, .9)], 1: [(big, .8)], 2: [(small, .7)]}
    assert len(_stack(boxes)) == 2
    (one, ) = _stack(boxes, contain_thr=.7)
    assert one.slice_range == (0, 2)
    # half outside: no link
    boxes[2] = [([5, 5, 15, 15], .7)]
    assert len(_stack(boxes, contain_thr=.7)) == 2


@pytest.mark.parametrize('gap,joined', [(None, False), (1, False),
                                        (2, True), (3, True)])
def test_fragments_along_z_join_within_join_gap(gap, joined):
    box = [0, 0, 10, 10]
    boxes = {z: [(box, .5 + z / 100)] for z in (0, 1, 2, 5, 6, 7)}
    found = _stack(boxes, join_gap=gap)
    if joined:
        (one, ) = found
        assert one.slice_range == (0, 7)
        assert [z for z, _, _ in one.boxes_2d] == [0, 1, 2, 5, 6, 7]
        assert one.score == pytest.approx(.57)
        assert one.key_slice == 7
    else:
        assert sorted(f.slice_range for f in found) == [(0, 2), (5, 7)]
    # boxes that do not overlap are never joined
    far = {**boxes, **{z: [([50, 50, 60, 60], .5)] for z in (5, 6, 7)}}
    assert len(_stack(far, join_gap=3)) == 2


def test_parallel_chains_merge_into_one_by_3d_nms():
    a, b = [0, 0, 10, 10], [4, 0, 14, 10]  # IoU 0.43: two chains
    boxes = {z: [(a, .9), (b, .6)] for z in range(4)}
    assert len(_stack(boxes)) == 2
    (one, ) = _stack(boxes, merge_iou=.1)
    # one box a slice, the best of the two (a's), a's extent
    assert [(z, box) for z, box, _ in one.boxes_2d] == [(z, a)
                                                        for z in range(4)]
    assert one.bbox_3d == pytest.approx([0, 0, -.5, 10, 10, 3.5])
    assert one.score == .9
    # apart in 3D: both kept
    far = {z: [(a, .9), ([40, 40, 50, 50], .6)] for z in range(4)}
    assert len(_stack(far, merge_iou=.1)) == 2


def test_a_short_chain_inside_a_lesion_merges_with_merge_inside():
    """A chain of 2 slices beside a lesion's chain of 10, half inside it:
    3D IoU 0.09 (not merged at 0.1), half its volume inside (merged at
    0.3); one a fifth inside stays apart."""
    a, b = [0, 0, 10, 10], [5, 0, 15, 10]  # 2D IoU 0.33: two chains
    boxes = {z: [(a, .9)] + ([(b, .6)] if z in (4, 5) else [])
             for z in range(10)}
    assert len(_stack(boxes, merge_iou=.1)) == 2
    (one, ) = _stack(boxes, merge_inside=.3)
    assert [box for _, box, _ in one.boxes_2d] == [a] * 10
    assert one.slice_range == (0, 9) and one.score == .9
    boxes = {z: [(a, .9)] + ([([8, 0, 18, 10], .6)] if z in (4, 5) else [])
             for z in range(10)}
    assert len(_stack(boxes, merge_inside=.3)) == 2


def test_merging_repeats_until_no_two_findings_overlap():
    """A (z 0-3) overlaps B (z 2-9) at 3D IoU 0.11 and is fused with it; C
    (z 6-11) overlaps neither A nor, once B is taken, anything in that
    pass, but the fused A+B at IoU 0.12: a second pass fuses it too."""
    a, b, c = [0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]
    boxes = {z: [(box, s) for box, s, zs in (
        (a, .9, range(0, 4)), (b, .8, range(2, 10)), (c, .7, range(6, 12)))
        if z in zs] for z in range(12)}
    assert len(_stack(boxes)) == 3
    (one, ) = _stack(boxes, merge_iou=.1)
    assert one.slice_range == (0, 11) and one.score == .9
    assert [box for _, box, _ in one.boxes_2d] == [a] * 4 + [b] * 6 + [c] * 2


def test_min_slices_counts_the_joined_lesion():
    box = [0, 0, 10, 10]
    boxes = {0: [(box, .9)], 2: [(box, .8)], 9: [([30, 30, 40, 40], .7)]}
    found = _stack(boxes, join_gap=1, min_slices=2)
    assert [f.slice_range for f in found] == [(0, 2)]  # the stray dropped
    assert len(_stack(boxes, min_slices=2)) == 0


def test_fuse_findings_takes_the_best_box_a_slice():
    a = _stack({0: [([0, 0, 4, 4], .9)], 1: [([0, 0, 4, 4], .2)]})[0]
    b = _stack({1: [([1, 1, 5, 5], .5)], 2: [([1, 1, 5, 5], .4)]})[0]
    fused = fuse_findings([a, b], StackSettings())
    assert [(z, s) for z, _, s in fused.boxes_2d] == [(0, .9), (1, .5),
                                                      (2, .4)]
    assert fused.slice_range == (0, 2) and fused.key_slice == 0


def test_bad_lesion_steps_are_refused():
    for bad in (dict(contain_thr=1.5), dict(merge_iou=-.1),
                dict(merge_inside=1.1), dict(join_gap=-1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            _stack({0: [([0, 0, 1, 1], .5)]}, **bad)


def test_a_joined_finding_takes_the_next_fragment_too():
    """Three fragments of one lesion, each 2 slices from the next: the
    best joins the one beside it, and the lesion so grown the third."""
    box = [0, 0, 10, 10]
    boxes = {0: [(box, .5)], 1: [(box, .5)], 4: [(box, .9)], 5: [(box, .9)],
             8: [(box, .3)], 9: [(box, .3)]}
    (one, ) = _stack(boxes, join_gap=2)
    assert one.slice_range == (0, 9) and one.score == .9


def test_detection_settings_refuse_bad_lesion_steps():
    from mmlesion.apis.whole_scan.settings import DetectionSettings
    for bad in (dict(contain_thr=2.), dict(merge_iou=-1.),
                dict(merge_inside=-.3), dict(join_gap=-2)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DetectionSettings(**bad)
    assert DetectionSettings(join_gap=0, merge_iou=.1).merge_iou == .1



@pytest.mark.parametrize('seed', range(12))
def test_join_equals_one_pair_at_a_time(seed):
    """The join tests a finding's candidates all at once: the same
    findings, bit for bit, as one pair at a time (the benchmark's
    baseline), on fragments of many lesions with strays (hundreds of
    chains, many joins)."""
    from mmlesion.evaluation.functional.box_stacking import _join_along_z
    from mmlesion.structures.finding_3d import findings_by_score
    from tests.helpers.tool_modules import load_tool
    reference = load_tool('projects/benchmarks/benchmark_box_stacking.py'
                          ).reference_join_along_z
    rng = np.random.default_rng(seed)
    per_slice = {}
    for _ in range(int(rng.integers(5, 15))):  # lesions, seen on 60 %
        x, y, w = *rng.uniform(0, 80, 2), rng.uniform(4, 20)
        z0 = int(rng.integers(0, 50))
        for z in range(z0, z0 + int(rng.integers(2, 20))):
            if rng.random() < .6:
                box = np.array([x, y, x + w, y + w]) + rng.normal(0, 1, 4)
                per_slice.setdefault(z, []).append((box, rng.random()))
    for z in range(60):  # strays
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0, 90, 2)
            per_slice.setdefault(z, []).append(
                (np.array([x, y, x + 6, y + 6]), rng.random()))
    settings = StackSettings(join_gap=seed % 4,
                             contain_thr=(None, .7)[seed % 2])
    chains = findings_by_score(_stack(per_slice))
    fast = _join_along_z(list(chains), settings)
    assert repr([f.to_dict() for f in fast]) == repr(
        [f.to_dict() for f in reference(chains, settings)])
    assert settings.join_gap == 0 or len(fast) < len(chains)  # joined
