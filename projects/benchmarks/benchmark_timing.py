# Copyright (c) mmlesion contributors. All rights reserved.
"""Timing for the benchmarks of ``projects/benchmarks/``, and their
``--warmup`` and ``--repeats`` options (:func:`add_timing_arguments`).

Every benchmark compares a model with its mmdet baseline *in the same run*
and prints the ratio. Two rules make such a ratio worth printing:

- **Warm-up.** The first call of a model pays for memory allocation, lazy
  initialisation and (on a GPU) kernel selection; a benchmark without it
  once reported the 3D Aggregated Faster R-CNN at 0.46x the time of its own
  RPN. At least one untimed call per function comes first.
- **Repeats.** One timed call says nothing about its spread. A ratio is
  printed only from at least two timed calls of each side (the median of
  each), and calls of the compared functions are interleaved (a, b, a, b)
  so that a change of machine load hits both.
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List, Sequence

#: The least untimed calls per function (the first rule above).
MIN_WARMUP = 1
#: The least timed calls of each side of a ratio (the second rule).
MIN_REPEATS = 2


def add_timing_arguments(parser: argparse.ArgumentParser,
                         warmup: int = 1,
                         repeats: int = 5) -> None:
    """Add ``--warmup`` and ``--repeats`` (checked by :func:`check_timing`).

    Args:
        parser (ArgumentParser): the benchmark's parser.
        warmup (int): default number of untimed calls.
        repeats (int): default number of timed calls.
    """
    parser.add_argument(
        '--warmup',
        type=int,
        default=warmup,
        help=f'untimed calls of each function first (>= {MIN_WARMUP})')
    parser.add_argument(
        '--repeats',
        type=int,
        default=repeats,
        help=f'timed calls of each function, interleaved; times are their '
        f'median (>= {MIN_REPEATS})')


def check_timing(warmup: int, repeats: int) -> None:
    """Refuse a warm-up or repeat count that cannot give a fair ratio.

    (A benchmark refuses the same right after parsing; the limits are
    those :func:`add_timing_arguments` shows. This module's imports at
    module level stay the standard library's: a benchmark builds its
    parser before it imports torch.)

    Args:
        warmup (int): untimed calls per function.
        repeats (int): timed calls per function.

    Raises:
        ValueError: ``warmup < 1`` or ``repeats < 2``.
    """
    if warmup < MIN_WARMUP:
        raise ValueError(
            f'warmup={warmup}: a benchmark warms up with at least '
            f'{MIN_WARMUP} untimed call (the first call allocates memory '
            'and initialises lazily)')
    if repeats < MIN_REPEATS:
        raise ValueError(
            f'repeats={repeats}: a ratio needs at least {MIN_REPEATS} timed '
            'calls of each side (one call has no spread)')


def sync(device: str) -> None:
    """Wait for the device's queued work (a no-op on the CPU).

    Args:
        device (str): e.g. ``'cpu'``, ``'cuda'``, ``'cuda:1'``.
    """
    if str(device).startswith('cuda'):
        import torch
        torch.cuda.synchronize()


def time_interleaved(fns: Dict[str, Callable[[], None]], warmup: int,
                     repeats: int, device: str) -> Dict[str, List[float]]:
    """Time several functions fairly against each other.

    Each function runs ``warmup`` untimed times, then ``repeats`` timed
    times, interleaved (a, b, a, b, ...) so that both see the same load.

    Args:
        fns (dict): name -> function without arguments.
        warmup (int): untimed calls per function (>= 1).
        repeats (int): timed calls per function (>= 2).
        device (str): synchronised around each timed call.

    Returns:
        dict: name -> the ``repeats`` times in seconds.
    """
    check_timing(warmup, repeats)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync(device)
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(numerator: Sequence[float],
                 denominator: Sequence[float]) -> float:
    """``median(numerator) / median(denominator)`` of two sets of times.

    Args:
        numerator (Sequence[float]): timed calls of the measured model.
        denominator (Sequence[float]): timed calls of the baseline.

    Returns:
        float: the ratio.

    Raises:
        ValueError: fewer than two times on a side, or a zero baseline.
    """
    for name, values in (('numerator', numerator),
                         ('denominator', denominator)):
        if len(values) < MIN_REPEATS:
            raise ValueError(
                f'{name} has {len(values)} timed call(s); a ratio needs at '
                f'least {MIN_REPEATS}')
    base = statistics.median(denominator)
    if base <= 0:
        raise ValueError('the baseline took no measurable time')
    return statistics.median(numerator) / base
