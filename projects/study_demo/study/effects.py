# Copyright (c) mmlesion contributors. All rights reserved.
"""The one rule by which every study judges a step: paired by seed.

A step compares two rows that share data and seed (``after`` extends
``before``). For each seed both rows have, ``d_s = after_s - before_s``;
the effect is ``mean(d)``, its spread the sample standard deviation
(ddof 1) of the ``d_s``, and the step is *shown* when
``|mean(d)| > 2 std(d)`` with at least 3 paired seeds (fewer: no verdict).
``2 std(d)`` is also the smallest effect the design could have shown.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from .runner import StudyResult
from .test_set import StudyTestSet

#: |mean| must exceed this many standard deviations of the differences.
FACTOR = 2.0
#: Fewer paired seeds than this give no verdict.
MIN_SEEDS = 3


@dataclass(frozen=True)
class StudyStep:
    """One comparison of a study: row ``after`` against row ``before``.

    Args:
        before (str): key of the row the step starts from.
        after (str): key of the row with the step.
        label (str): what the step is (for tables).
    """
    before: str
    after: str
    label: str


def _per_seed(result: StudyResult, key: str, metric: str) -> dict:
    for r in result.rows:
        if r.row.key == key:
            return {s: m[metric] for s, m in r.metrics.items()
                    if metric in m}
    return {}


def paired_effects(result: StudyResult, steps: Sequence[StudyStep],
                   metric: str, factor: float = FACTOR,
                   min_seeds: int = MIN_SEEDS,
                   test_set: Optional[StudyTestSet] = None) -> List[dict]:
    """Each step's effect on ``metric``, paired by seed (the module rule).

    Args:
        result (StudyResult): from :func:`~.runner.run_study`.
        steps (sequence[StudyStep]): the comparisons.
        metric (str): the metric key compared.
        factor (float): the rule's factor. Defaults to 2.
        min_seeds (int): paired seeds needed for a verdict. Defaults to 3.
        test_set (StudyTestSet, optional): what the rows were tested on;
            below its minimum no step gets a verdict.

    Returns:
        list[dict]: per step ``before``, ``after``, ``step`` (label),
        ``metric``, ``seeds``, ``diffs`` (per seed), ``mean`` and ``std``
        (NaN when undefined), ``smallest_shown`` (``factor * std``) and
        ``shown`` (bool, or None with fewer than ``min_seeds`` seeds or a
        test set below its minimum; then ``no_verdict`` says why).
    """
    small = test_set is not None and not test_set.large_enough
    out = []
    for step in steps:
        b = _per_seed(result, step.before, metric)
        a = _per_seed(result, step.after, metric)
        seeds = sorted(set(a) & set(b))
        diffs = [float(a[s] - b[s]) for s in seeds]
        mean = float(np.mean(diffs)) if diffs else math.nan
        std = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan
        shown = (bool(abs(mean) > factor * std)
                 if len(diffs) >= min_seeds and not small else None)
        why = None
        if len(diffs) < min_seeds:
            why = f'{len(diffs)} paired seeds < {min_seeds}'
        elif small:
            why = (f'{test_set.lesions} test {test_set.unit} < '
                   f'{test_set.minimum}')
        out.append(dict(before=step.before, after=step.after,
                        step=step.label, metric=metric, seeds=seeds,
                        diffs=diffs, mean=mean, std=std,
                        smallest_shown=factor * std, shown=shown,
                        no_verdict=why))
    return out


def verdict(effect: dict) -> str:
    """``'shown, up'``, ``'shown, down'``, ``'not shown'`` or ``'-'`` (too
    few seeds)."""
    if effect['shown'] is None:
        why = effect.get('no_verdict')
        return f'no verdict ({why})' if why else '-'
    if not effect['shown']:
        return 'not shown'
    return 'shown, up' if effect['mean'] > 0 else 'shown, down'


def effects_markdown(effects: Sequence[dict], scale: float = 100.0,
                     factor: float = FACTOR) -> str:
    """The step table: paired mean ± std, per-seed differences, the
    smallest effect the design could show, and the verdict.

    Args:
        effects (sequence[dict]): from :func:`paired_effects`.
        scale (float): display factor (100: points of a percentage).
        factor (float): the rule's factor (for the header).

    Returns:
        str: a markdown table.
    """

    def num(x: float, sign: bool = False) -> str:
        if math.isnan(x):
            return '-'
        return f'{scale * x:+.2f}' if sign else f'{scale * x:.2f}'

    lines = [
        '| step | rows | seeds | mean difference | std of the differences '
        f'| smallest shown ({factor:g} std) | per seed | verdict |',
        '|---|---|---:|---:|---:|---:|---|---|'
    ]
    for e in effects:
        per = ', '.join(f'{scale * d:+.1f}' for d in e['diffs']) or '-'
        lines.append(
            f"| {e['step']} | {e['before']} -> {e['after']} | "
            f"{len(e['seeds'])} | {num(e['mean'], True)} | {num(e['std'])} "
            f"| {num(e['smallest_shown'])} | {per} | {verdict(e)} |")
    return '\n'.join(lines) + '\n'
