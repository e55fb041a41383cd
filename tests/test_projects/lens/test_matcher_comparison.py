# Copyright (c) mmlesion contributors. All rights reserved.
"""The paired rule of the matcher comparison (projects/lens/RESULTS.md): a
set without a test lesion has no F1 and is left out; a difference is shown
only with >= 3 sets and |mean| > 2 std (ddof 1)."""
import pytest

from projects.lens.matcher_comparison import paired


def _set(f1_a, f1_b, missing=3):
    return dict(a=dict(f1=f1_a, followup_missing=missing),
                b=dict(f1=f1_b, followup_missing=missing))


def test_shown_with_three_sets_beyond_two_std():
    out = paired([_set(.5, .2), _set(.6, .2), _set(.55, .2)], 'a', 'b')
    assert out['per_set'] == [.3, .4, .35] and out['num_sets'] == 3
    assert out['mean'] == pytest.approx(.35) and out['std'] == .05
    assert out['shown'] and out['test_lesions'] == 9


def test_not_shown_within_two_std():
    out = paired([_set(.5, .2), _set(.2, .3), _set(.4, .2)], 'a', 'b')
    assert not out['shown']


def test_a_set_without_test_lesions_is_left_out():
    """Its F1 (0 by convention) would pull the mean to 0; with it left
    out, two sets remain: fewer than the rule's three, no verdict."""
    out = paired([_set(.5, .2), _set(.6, .2), _set(0., 0., missing=0)],
                 'a', 'b')
    assert out['per_set'] == [.3, .4, None]
    assert out['num_sets'] == 2 and out['test_lesions'] == 6
    assert out['mean'] == pytest.approx(.35) and not out['shown']
