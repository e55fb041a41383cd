# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the anchor config that ``tools/analysis_tools/
optimize_anchors.py`` writes (:mod:`mmlesion.anchors.anchor_snippet`).

Pinned: the exact text of an inheriting config (header lines, an empty
header line, indentation, closing brackets), reciprocal ratios written as
``1 / v`` only when that gives the very float (ratio 1, ratios above 1 and
inexact reciprocals as they are, the rounding ``decimals``), executing the
text back to the same floats, and the fixed-digit formatter
(docs/mutation_testing.md).
"""
import pytest

from mmlesion.anchors.anchor_config import AnchorConfig
from mmlesion.anchors.anchor_snippet import (_fmt, _ratio_expr,
                                             format_anchor_config)

ANCHORS = AnchorConfig((8, 16), (32.0, 40.5), (1 / 2.5, 1.0, 2.5),
                       (0.425, 0.54))


def test_config_text():
    text = format_anchor_config(ANCHORS, '../base.py', head='rpn_head',
                                header=['h'])
    assert text == '\n'.join([
        '# h',
        "_base_ = '../base.py'",
        '',
        'model = dict(',
        '    rpn_head=dict(',
        '        anchor_generator=dict(',
        "            type='AnchorGenerator',",
        '            strides=[8, 16],',
        '            base_sizes=[32, 40.5],',
        '            ratios=[1 / 2.5, 1.0, 2.5],',
        '            scales=[0.425, 0.54],',
        '            octave_base_scale=None,',
        '            scales_per_octave=None)))',
        '',
    ])
    scope = {}
    exec(text.replace("_base_ = '../base.py'", ''), {}, scope)
    gen = scope['model']['rpn_head']['anchor_generator']
    assert AnchorConfig.from_generator_cfg(gen) == ANCHORS
    assert "    bbox_head=dict(" in format_anchor_config(ANCHORS, 'b.py')
    assert format_anchor_config(ANCHORS, 'b.py').startswith("_base_ = 'b.py'")


def test_ratio_expressions():
    assert _ratio_expr(1 / 1.78, 4) == '1 / 1.78'
    assert _ratio_expr(1.0, 4) == '1.0'
    assert _ratio_expr(2, 4) == '2.0'
    assert _ratio_expr(0.3, 4) == '0.3'  # 1 / 3.3333 is not 0.3
    # 1 / 1.2346 rounded to 4 decimals is exact; to 3 it is not
    r = 1 / 1.2346
    assert _ratio_expr(r, 4) == '1 / 1.2346'
    assert _ratio_expr(r, 3) == repr(r)
    # the default of a config is 4 decimals
    text = format_anchor_config(
        AnchorConfig((8, ), (32., ), (r, ), (1., )), 'b.py', decimals=3)
    assert f'ratios=[{r!r}],' in text
    text = format_anchor_config(
        AnchorConfig((8, ), (32., ), (r, ), (1., )), 'b.py')
    assert 'ratios=[1 / 1.2346],' in text


def test_fmt():
    assert _fmt([1, 0.12345]) == '[1.000, 0.123]'
    assert _fmt([0.5], 1) == '[0.5]'
    assert _fmt([]) == '[]'


def test_default_decimals_are_four():
    r = 1 / 1.23456  # exact as 1 / v at 5 decimals, not at 4
    anchors = AnchorConfig((8, ), (32., ), (r, ), (1., ))
    assert f'ratios=[{r!r}],' in format_anchor_config(anchors, 'b.py')
    assert 'ratios=[1 / 1.23456],' in format_anchor_config(anchors, 'b.py',
                                                           decimals=5)


def test_config_header_with_an_empty_line():
    text = format_anchor_config(ANCHORS, 'b.py', header=['a', ''])
    assert text.startswith("# a\n#\n_base_ = 'b.py'\n")
