# Copyright (c) mmlesion contributors. All rights reserved.
"""A study's report: a text table, a markdown table (mean ± std over seeds,
``not run`` where a row has no result), a JSON file and one FROC picture
with every row, written atomically into the study folder."""
import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

from mmlesion.utils.writing.atomic import atomic_write_json, atomic_write_text
from mmlesion.visualization.study_froc import plot_study_froc
from .effects import StudyStep, effects_markdown, paired_effects
from .row_run import TIME_KEY
from .rows import StudyMetric
from .runner import StudyResult
from .test_set import StudyTestSet

#: reference rows: label -> one value (already in display units) per
#: column of :meth:`StudyMetric.all_columns`, None where not reported.
Reference = Dict[str, Sequence[Optional[float]]]


def _cell(value: Optional[float], width: int, scale: float = 1.0) -> str:
    if value is None or value != value:  # None or NaN
        return f'{"-":>{width}}'
    return f'{scale * value:{width}.2f}'


def format_text_table(results: Dict[str, Dict[str, float]],
                      columns: Sequence[Tuple[str, str]],
                      title: str = '',
                      reference: Optional[Reference] = None,
                      reference_title: str = '',
                      scale: float = 100.0,
                      label_width: int = 28,
                      width: int = 9) -> str:
    """A fixed-width table of label -> metrics, plus reference rows.

    Args:
        results (dict): row label -> metrics (fractions).
        columns (Sequence[tuple]): ``(header, key)`` of each column.
        title (str): line above the table.
        reference (dict, optional): label -> values in display units (the
            papers' numbers, %), None for a value not reported.
        reference_title (str): line above the reference rows.
        scale (float): display factor of ``results`` (100: percent).
        label_width (int): least width of the label column; it widens to
            the longest label.
        width (int): least width of the other columns; each widens to its
            header, so that neighbouring headers never run together.

    Returns:
        str: the table.
    """
    labels = list(results) + list(reference or {})
    label_width = max([label_width] + [len(str(k)) + 2 for k in labels])
    widths = [max(width, len(h) + 2) for h, _ in columns]
    header = f"{'row':<{label_width}}" + ''.join(
        f'{h:>{w}}' for (h, _), w in zip(columns, widths))
    lines = ([title] if title else []) + [header]
    for label, metrics in results.items():
        lines.append(f'{label:<{label_width}}' + ''.join(
            _cell(metrics.get(k), w, scale)
            for (_, k), w in zip(columns, widths)))
    if reference:
        lines += ([reference_title] if reference_title else []) + [header]
        for label, values in reference.items():
            lines.append(f'{label:<{label_width}}' +
                         ''.join(_cell(v, w) for v, w in zip(values, widths)))
    return '\n'.join(lines)


def _pm(mean: Optional[float], std: Optional[float], scale: float) -> str:
    if mean is None or mean != mean:
        return '-'
    if std is None or std != std:
        return f'{scale * mean:.2f}'
    return f'{scale * mean:.2f} ± {scale * std:.2f}'


def _test_times(result: StudyResult) -> Dict[str, str]:
    """label -> ``'12.3 (x1.10)'``: mean test time per image over the
    seeds and its ratio to the first row with a time (the baseline of the
    same run); empty when no row has :data:`TIME_KEY`."""
    means = {
        r.row.label: r.mean()[TIME_KEY]
        for r in result.rows if r.done and TIME_KEY in r.mean()
    }
    if not means:
        return {}
    base = next(iter(means.values()))
    return {
        label: f'{ms:.1f} (x{ms / base:.2f})' if base > 0 else f'{ms:.1f}'
        for label, ms in means.items()
    }


def markdown_table(result: StudyResult,
                   reference: Optional[Reference] = None) -> str:
    """Markdown: one line per row of the table, mean ± std over its seeds.

    Rows without any result show ``not run`` (with the reason); the seed
    column lists the seeds done out of those asked for; the last column is
    the test time per image beside the first row's (when measured).
    """
    metric = result.metric
    columns = metric.all_columns()
    times = _test_times(result)
    head = ['row', 'seeds'] + [h for h, _ in columns] + (
        ['ms / image (x first row)'] if times else [])
    lines = [
        '| ' + ' | '.join(head) + ' |',
        '|' + '|'.join(['---'] * 2 + ['---:'] * (len(head) - 2)) + '|'
    ]
    for r in result.rows:
        n_asked = len(result.settings.seeds)
        if not r.done:
            reasons = sorted(set(r.not_run().values())) or ['not run']
            cells = [r.row.label, f'0/{n_asked}', '; '.join(reasons)
                     ] + [''] * (len(columns) - 1)
        else:
            mean, std = r.mean(), r.std()
            cells = [r.row.label, f'{len(r.metrics)}/{n_asked}'] + [
                _pm(mean.get(k), std.get(k), metric.scale)
                for _, k in columns
            ]
        if times:
            cells.append(times.get(r.row.label, '-'))
        lines.append('| ' + ' | '.join(cells) + ' |')
    for label, values in (reference or {}).items():
        lines.append('| ' + ' | '.join([f'{label} (reference)', '-'] + [
            '-' if v is None else f'{v:.2f}' for v in values
        ]) + ' |')
    unit = ' (%)' if metric.scale == 100 else ''
    return (f'{metric.name}: sensitivity{unit} at FPs per {metric.fp_unit}, '
            f'mean ± std over seeds {list(result.settings.seeds)}.\n\n' +
            '\n'.join(lines) + '\n')


def study_summary(result: StudyResult, extra: Optional[dict] = None) -> dict:
    """The JSON summary: settings, mean / std / per-seed metrics, not run."""
    s = result.settings
    rows, std, per_seed, not_run = {}, {}, {}, {}
    for r in result.rows:
        label = r.row.label
        if r.done:
            rows[label], std[label] = r.mean(), r.std()
            per_seed[label] = {str(k): v for k, v in r.metrics.items()}
        missing = r.not_run()
        if missing:
            not_run[label] = {str(k): v for k, v in missing.items()}
    out = dict(
        metric=result.metric.name,
        seeds=list(s.seeds),
        settings=dict(
            data_root=s.data_root,
            max_epochs=s.max_epochs,
            cfg_options=s.cfg_options,
            skip_train=s.skip_train),
        row_keys={r.row.label: r.row.key for r in result.rows},
        rows=rows,
        std=std,
        per_seed=per_seed,
        not_run=not_run)
    out.update(extra or {})
    return out


def write_study_report(result: StudyResult,
                       name: str = 'study',
                       reference: Optional[Reference] = None,
                       extra: Optional[dict] = None,
                       steps: Sequence[StudyStep] = (),
                       effect_metric: Optional[str] = None,
                       test_set: Optional[StudyTestSet] = None
                       ) -> List[str]:
    """Write ``{name}.json``, ``{name}.md`` and ``{name}_froc.png`` (every
    row with results: mean sensitivity at the FP rates, ± std) into the
    study folder, each atomically.

    With ``steps``, both files also give each step's paired effect on
    ``effect_metric`` and its verdict by the one rule of every study
    (:mod:`~.effects`: shown when |mean paired difference| > 2 x its std,
    at least 3 seeds), with the smallest effect the design could show.

    Args:
        result (StudyResult): from :func:`run_study`.
        name (str): file stem.
        reference (dict, optional): reference rows of the markdown table.
        extra (dict, optional): more top-level JSON fields.
        steps (sequence[StudyStep]): the study's comparisons.
        effect_metric (str, optional): the metric they are judged on
            (default: the metric's first summary column, else its first
            sensitivity).
        test_set (StudyTestSet, optional): what the rows were tested on,
            written beside the verdicts (``test_set`` in the JSON, a line
            in the markdown); required with ``steps``, and below its
            minimum no step is judged.

    Returns:
        list[str]: the paths written.
    """
    work_dir = result.settings.work_dir
    paths = [osp.join(work_dir, f'{name}.{ext}') for ext in ('json', 'md')]
    summary = study_summary(result, extra)
    table = markdown_table(result, reference)
    if steps and test_set is None:
        raise ValueError('a study that judges steps must say what it tested '
                         'on: pass test_set (lesions, images, data seeds)')
    if test_set is not None:
        seeds = list(result.settings.seeds)
        summary['test_set'] = test_set.to_dict(seeds)
        table += '\n' + test_set.describe(seeds) + '\n'
    if steps:
        metric_key = effect_metric or (result.metric.columns[0][1]
                                       if result.metric.columns else
                                       result.metric.all_columns()[0][1])
        effects = paired_effects(result, steps, metric_key,
                                 test_set=test_set)
        summary['effects'] = effects
        table += (f'\nPaired effects on {metric_key} (shown when |mean| > 2 '
                  'std of the per-seed differences, at least 3 seeds):\n\n'
                  + effects_markdown(effects, result.metric.scale))
    atomic_write_json(paths[0], summary, indent=2)
    atomic_write_text(paths[1], table)
    curves = {}
    metric: StudyMetric = result.metric
    for r in result.rows:
        if r.done:
            mean, std = r.mean(), r.std()
            keys = [metric.sens_key.format(rate=x) for x in metric.fp_rates]
            curves[r.row.label] = ([mean.get(k) for k in keys],
                                   [std.get(k) for k in keys])
    png = osp.join(work_dir, f'{name}_froc.png')
    fd, tmp = tempfile.mkstemp(
        dir=work_dir, prefix=f'.{name}_froc.', suffix='.png')
    os.close(fd)
    try:
        plot_study_froc(
            curves, [float(x) for x in metric.fp_rates],
            tmp,
            title=f'{metric.name}, seeds {list(result.settings.seeds)}',
            fp_unit=metric.fp_unit)
        os.replace(tmp, png)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return paths + [png]
