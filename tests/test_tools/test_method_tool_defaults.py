# Copyright (c) mmlesion contributors. All rights reserved.
"""The method tools show the defaults of the library's settings objects,
read from one place (the ``tool_defaults.json`` beside the module that
defines them), not copies: what a tool runs with by default is what the
library function does when called without settings."""
from dataclasses import fields

import pytest

from mmlesion.datasets.deeplesion.as_3d import As3DSettings
from mmlesion.evaluation.functional.hard_regions import HardRegionSettings
from mmlesion.evaluation.functional.luna16_merge import (MERGE_MODES,
                                                         merge_candidates)
from mmlesion.methods.lens.mining import MATCHERS, MiningSettings
from mmlesion.methods.lens.mining.calibration import (
    MIN_MATCH_PRECISION, calibrate_delta_on_training_split)
from tests.helpers.tool_modules import load_tool

#: tool, its required arguments, the settings and their options' names
#: (field -> argparse dest where they differ; None: not an option).
CASES = [
    ('analysis_tools/find_hard_regions.py', ['c.py', 'k.pth', '--out', 'o'],
     HardRegionSettings, {}),
    ('lens_mine_annotations.py', ['c.py', 'k.pth', '--out', 'o'],
     MiningSettings, {'dist_thr': None}),  # the tool calibrates delta
    ('dataset_converters/deeplesion_to_3d.py', ['a.csv', 'png', 'out'],
     As3DSettings, {'merge': None, 'drop_noisy': None}),
]


@pytest.mark.parametrize('tool, argv, settings, dests', CASES,
                         ids=[c[0] for c in CASES])
def test_a_tool_defaults_to_its_settings(tool, argv, settings, dests):
    args = vars(load_tool(tool).parse_args(argv))
    defaults = settings()
    shown = {f.name: getattr(defaults, f.name) for f in fields(settings)
             if dests.get(f.name, f.name) is not None}
    assert shown and {k: args[dests.get(k, k)] for k in shown} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in shown.items()}


def test_the_tools_choices_and_plain_defaults_are_the_librarys():
    deeplesion = vars(load_tool('dataset_converters/deeplesion_to_3d.py')
                      .parse_args(['a.csv', 'png', 'out']))
    assert deeplesion['keep_noisy'] is not As3DSettings().drop_noisy
    merge = load_tool('analysis_tools/merge_luna16_candidates.py')
    args = merge.parse_args(['a.csv', 'b.csv', '--out', 'o'])
    defaults = dict(zip(('mode', 'max_distance_mm'),
                        merge_candidates.__defaults__))
    assert (args.mode, args.max_distance) == (defaults['mode'],
                                              defaults['max_distance_mm'])
    mine = load_tool('lens_mine_annotations.py')
    args = mine.parse_args(['c.py', 'k.pth', '--out', 'o'])
    assert args.min_match_precision == MIN_MATCH_PRECISION == (
        calibrate_delta_on_training_split.__defaults__[0])
    with pytest.raises(SystemExit):
        mine.parse_args(['c.py', 'k.pth', '--out', 'o', '--matcher', 'x'])
    assert {mine.parse_args(['c.py', 'k.pth', '--out', 'o', '--matcher', m])
            .matcher for m in MATCHERS} == set(MATCHERS)
    assert {merge.parse_args(['a', 'b', '--out', 'o', '--mode', m]).mode
            for m in MERGE_MODES} == set(MERGE_MODES)
