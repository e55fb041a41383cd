# Copyright (c) mmlesion contributors. All rights reserved.
"""The one type of a stacked 3D finding (:mod:`mmlesion.structures.
finding_3d`): its dict (the stacking's former dicts, key for key), read
back, and re-scored copies."""
import json

from mmlesion.evaluation.functional.box_stacking import stack_slice_boxes
from mmlesion.structures.finding_3d import Finding3D, findings_by_score


def _stacked():
    (f, ) = stack_slice_boxes([3, 4], [[[0, 0, 10, 10]], [[1, 0, 11, 10]]],
                              [[.5], [.7]])
    return f


def test_dict_is_the_stacking_record():
    f = _stacked()
    d = f.to_dict()
    assert list(d) == ['bbox_3d', 'score', 'slice_range', 'key_slice',
                       'boxes_2d']
    assert d['slice_range'] == (3, 4) and d['key_slice'] == 4
    assert d['boxes_2d'] == [(3, [0., 0., 10., 10.], .5),
                             (4, [1., 0., 11., 10.], .7)]
    back = Finding3D.from_dict(json.loads(json.dumps(d)))
    assert back == f


def test_rescored_is_a_copy_with_named_parts():
    f = _stacked()
    g = f.rescored(.6, s_lens=.7, s_fpr=.5)
    assert (g.score, f.score) == (.6, .7)
    assert f.score_parts == {} and g.score_parts == dict(s_lens=.7, s_fpr=.5)
    assert g.boxes_2d is f.boxes_2d and g.bbox_3d == f.bbox_3d
    d = g.to_dict()
    assert list(d)[-2:] == ['s_lens', 's_fpr'] and d['score'] == .6
    assert Finding3D.from_dict(d) == g
    # a second re-scoring replaces a part in its place
    h = g.rescored(.1, s_lens=.2, other=1.)
    assert list(h.score_parts.items()) == [('s_lens', .2), ('s_fpr', .5),
                                           ('other', 1.)]


def test_by_score_is_stable():
    a, b, c = (Finding3D([0] * 6, s, (0, 0), 0, []) for s in (.2, .5, .2))
    assert findings_by_score([a, b, c]) == [b, a, c]
    assert findings_by_score([c, b, a])[1] is c
