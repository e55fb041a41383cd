# Copyright (c) mmlesion contributors. All rights reserved.
import argparse

import pytest

from projects.benchmarks.benchmark_timing import (add_timing_arguments,
                                                  check_timing, median_ratio,
                                                  time_interleaved)


def test_warmup_then_interleaved_repeats():
    calls = []
    times = time_interleaved(
        {
            'a': lambda: calls.append('a'),
            'b': lambda: calls.append('b')
        },
        warmup=1,
        repeats=3,
        device='cpu')
    # one untimed round, then a, b, a, b, a, b
    assert calls == ['a', 'b'] * 4
    assert {k: len(v) for k, v in times.items()} == {'a': 3, 'b': 3}


@pytest.mark.parametrize('warmup,repeats,match', [(0, 5, 'warms up'),
                                                  (1, 1, 'a ratio needs')])
def test_unfair_settings_refused(warmup, repeats, match):
    with pytest.raises(ValueError, match=match):
        check_timing(warmup, repeats)
    with pytest.raises(ValueError, match=match):
        time_interleaved({'a': lambda: None}, warmup, repeats, 'cpu')


def test_median_ratio():
    assert median_ratio([2., 4., 100.], [1., 2., 3.]) == 2.
    with pytest.raises(ValueError, match='numerator has 1 timed call'):
        median_ratio([1.], [1., 2.])
    with pytest.raises(ValueError, match='denominator has 0'):
        median_ratio([1., 2.], [])


def test_arguments_have_help_and_defaults():
    parser = argparse.ArgumentParser()
    add_timing_arguments(parser, warmup=2, repeats=7)
    args = parser.parse_args([])
    assert (args.warmup, args.repeats) == (2, 7)
    assert '>= 2' in parser.format_help()
