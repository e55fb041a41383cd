# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the planned config's text
(:mod:`mmlesion.apps.own_data.plan_config`).

The comment wrapping (77 columns, no break at hyphens or inside long words,
an empty header line as a bare ``#``), each choice as a commented variable
(``pprint`` at 70 columns, dict keys in their order, the detector with its
base), the 2.5D / 3D tails with and without a val split, and the scans of
each split (none where the split is missing) (docs/mutation_testing.md).
"""
from mmlesion.apps.own_data.dataset_plan import Choice, DatasetPlan
from mmlesion.apps.own_data.plan_config import (_NAMES, _NO_VAL, _SCHEDULE,
                                                _TAIL_2D,
                                                _TAIL_3D, _VAL_2D, _VAL_3D,
                                                PlanConfigSettings, _comment,
                                                format_plan_config)


def test_comment_wrapping():
    assert _comment('') == []
    assert _comment('a b') == ['# a b']
    # 77 characters fit on one line, 78 do not
    assert _comment('x' * 74 + ' yy') == ['# ' + 'x' * 74 + ' yy']
    assert _comment('x' * 75 + ' yy') == ['# ' + 'x' * 75, '# yy']
    # no break at a hyphen, nor inside a word longer than the line
    assert _comment('x' * 70 + ' abc-defghij') == ['# ' + 'x' * 70,
                                                   '# abc-defghij']
    assert _comment('y' * 90 + ' z') == ['# ' + 'y' * 90, '# z']


# dicts of 70 and 71 characters: one line at 70 columns, the second wraps;
# keys not in sorted order
_GEN = dict(type='', strides=[4, 8], ratios=[0.5], scales=[2.0, 3.0])
_GEN_LONG = dict(_GEN, type='G')


def _plan_2d():
    return DatasetPlan('2.5d', 'elixirnet/x.py', [
        Choice('detector', '2.5d', 'why'),
        Choice('anchor_generator', _GEN, 'how'),
        Choice('long_one', _GEN_LONG, 'x' * 66 + ' yy'),
    ])


def test_2d_text():
    text = format_plan_config(_plan_2d(), PlanConfigSettings(
        'b.py', 'r/', ['made by x', '']))
    head = '\n'.join([
        '# made by x',
        '#',
        "_base_ = 'b.py'",
        '',
        '# detector: why',
        "detector = '2.5d (elixirnet/x.py)'",
        '',
        '# anchor_generator: how',
        "anchor_generator = {'type': '', 'strides': [4, 8], 'ratios': [0.5], "
        "'scales': [2.0, 3.0]}",
        '',
        '# long_one: ' + 'x' * 66,
        '# yy',
        "long_one = {'type': 'G',",
        " 'strides': [4, 8],",
        " 'ratios': [0.5],",
        " 'scales': [2.0, 3.0]}",
        '',
        "data_root = 'r/'",
    ])
    names = "planned_names = ['anchor_generator', 'long_one']\n"
    assert text == head + '\n' + _TAIL_2D + _VAL_2D + _SCHEDULE.format(
        best='') + _NAMES + names
    # without a val split, and without a header
    text = format_plan_config(_plan_2d(), PlanConfigSettings(
        'b.py', 'r/', has_val=False))
    assert text.startswith("_base_ = 'b.py'\n\n# detector: why\n")
    assert text.endswith("data_root = 'r/'\n" + _TAIL_2D + _NO_VAL +
                         _SCHEDULE.format(best=', save_best=None') +
                         _NAMES + names)
    # a derived value: its expression, the planned value in a comment
    plan = DatasetPlan('2.5d', 'x.py', [Choice('a', 2, 'why', expr='b + 1')])
    assert "# a: why\n# (a = 2 as planned)\na = b + 1\n" in \
        format_plan_config(plan, PlanConfigSettings('b.py', 'r/'))


def test_3d_text():
    plan = DatasetPlan('3d', 'aggregated3d/y.py', [
        Choice('detector', '3d', 'all hold'),
        Choice('crop', (96, 128, 128), 'fits')])
    text = format_plan_config(plan, PlanConfigSettings(
        'b.py', 'data/', ['a'], True, 'x.json',
        dict(train=(0, 2), val=[3], test=[1])))
    head = '\n'.join([
        '# a',
        "_base_ = 'b.py'",
        '',
        '# detector: all hold',
        "detector = '3d (aggregated3d/y.py)'",
        '',
        '# crop: fits',
        'crop = (96, 128, 128)',
        '',
        "data_root = 'data/'",
        "ann_file = 'x.json'",
        'train_scans = [0, 2]',
        'val_scans = [3]',
        'test_scans = [1]',
    ])
    names = "planned_names = ['crop']\n"
    assert text == head + '\n' + _TAIL_3D + _VAL_3D + _SCHEDULE.format(
        best='') + _NAMES + names
    # no val split: no val scans, no validation
    text = format_plan_config(plan, PlanConfigSettings(
        'b.py', 'data/', (), False, 'x.json', dict(train=[0], test=[1])))
    assert ("ann_file = 'x.json'\ntrain_scans = [0]\nval_scans = []\n"
            'test_scans = [1]\n' + _TAIL_3D + _NO_VAL) in text
    assert text.endswith(_SCHEDULE.format(best=', save_best=None') +
                         _NAMES + names)
