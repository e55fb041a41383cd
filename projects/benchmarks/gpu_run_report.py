# Copyright (c) mmlesion contributors. All rights reserved.
"""The verdicts and the markdown table of ``benchmark_gpu_run.py``.

:func:`goals` turns the run's record into the three goals' rows (whole-scan
2.5D speed, loading workers per GPU, 3D-AG seconds per scan), each naming
where the time goes when it is missed: the largest of the five parts of a
scan (read, preprocess, detector, postprocess, write; :func:`scan_parts_25d`
and :func:`scan_parts_3d` group each benchmark's steps into them) or, for
the workers, the largest part of a worker's sample. :func:`markdown` is
the whole table, written after every part.
"""
import dataclasses
import math
from typing import Dict, List, Mapping, Optional

#: The goals (on one GPU).
GOAL_SLICES_PER_S = 200.
GOAL_WORKERS = 4
GOAL_AGG3D_S = .5
#: The five parts of a scan, in order.
FIVE = ('read', 'preprocess', 'detector', 'postprocess', 'write')


@dataclasses.dataclass
class GoalRow:
    """One goal's line of the table.

    Args:
        goal (str): what was asked.
        measured (str): the figure(s).
        verdict (str): ``'met'``, ``'NOT MET'`` or ``'not measured'``.
        time_goes (str): where the time goes (the largest part), or why it
            is not measured.
    """
    goal: str
    measured: str
    verdict: str
    time_goes: str


def scan_parts_25d(steps: Mapping[str, float]) -> Dict[str, float]:
    """``benchmark_infer_scans.py``'s steps of a scan (one after another)
    as the five parts: preprocess = resampling + the slice pipeline (the
    detection loop but the model), detector = the model's ``test_step``,
    postprocess = stacking + RECIST, write = every file."""
    return dict(read=steps['read'],
                preprocess=steps['resample'] + max(
                    steps['detect'] - steps['model'], 0.),
                detector=steps['model'],
                postprocess=steps['stack'] + steps['recist'],
                write=steps['write'])


def scan_parts_3d(steps: Mapping[str, float]) -> Dict[str, float]:
    """``benchmark_aggregated3d_scan.py``'s steps as the five parts (it
    writes nothing)."""
    return dict(read=steps['read'],
                preprocess=steps['resample'] + steps['lung_crop'] +
                steps['window'],
                detector=steps['backbone'] + steps['rpn_head'] +
                steps['fprn'],
                postprocess=steps['proposals'] + steps['merge_nms'] +
                steps['window_overhead'],
                write=0.)


def largest(parts: Mapping[str, float], steps: Mapping[str, float]) -> str:
    """``'detector 1.39 of 2.20 s (63 %); largest step: model 1.39 s'``."""
    total = sum(parts.values())
    name = max(parts, key=parts.get)
    step = max(steps, key=steps.get)
    return (f'{name} {parts[name]:.3f} of {total:.3f} s '
            f'({100 * parts[name] / max(total, 1e-12):.0f} %); largest '
            f'step: {step} {steps[step]:.3f} s')


def _results(record: Mapping, part: str) -> dict:
    return record.get('parts', {}).get(part, {}).get('results', {})


def _goal_slices(record: Mapping) -> GoalRow:
    goal = (f'full-size ElixirNet over whole scans, >= '
            f'{GOAL_SLICES_PER_S:g} slices/s end to end (AMP where its '
            'findings match float32\'s)')
    batch = _results(record, 'infer_scans').get('batch')
    compared = _results(record, 'amp_compare').get('scans')
    match = ('not compared' if not compared else
             'AMP matches float32' if compared['match'] and
             compared['amp_active'] else
             'AMP differs from float32' if compared['amp_active'] else
             'compared float32 with itself (CPU)')
    if not batch:
        return GoalRow(goal, '-', 'not measured',
                       'infer_scans has not run')
    steps = {k: v for k, v in batch['parts'].items()
             if k in ('read', 'resample', 'detect', 'model', 'stack',
                      'recist', 'write')}
    parts = scan_parts_25d(steps)
    rate = batch['slices_per_second']
    measured = (f"{rate:.1f} slices/s ({batch['seconds_per_scan']:.3f} s "
                f"per scan of {batch['slices_per_scan']:.0f} slices, a "
                f"batch of {batch['num_scans']}, files written; "
                f"{'AMP' if batch['amp_active'] else 'float32'}; {match})")
    whole = _results(record, 'whole_scan')
    if whole:
        measured += '; one scan read to findings: ' + ', '.join(
            f"{'AMP' if w['amp_active'] else 'float32'} "
            f"{w['slices_per_second']:.1f}" for w in whole.values())
    met = rate >= GOAL_SLICES_PER_S
    return GoalRow(goal, measured, 'met' if met else 'NOT MET',
                   largest(parts, {k: v for k, v in steps.items()
                                   if k != 'detect'}))


def _goal_workers(record: Mapping) -> GoalRow:
    goal = (f'at most {GOAL_WORKERS} data-loading workers per GPU for every '
            'full-size 2.5D config, from measured training steps')
    rows = _results(record, 'data_loading')
    if not rows:
        return GoalRow(goal, '-', 'not measured',
                       'data_loading has not run')
    counts, over, unmeasured = [], [], []
    for name, row in rows.items():
        need = row.get('need')
        if row.get('error') or need is None:
            unmeasured.append(name)
            continue
        counts.append(f"{name} {need['workers']}")
        if not need['gpu_time'].startswith('measured'):
            unmeasured.append(name)
        if need['workers'] > GOAL_WORKERS:
            over.append(f"{name}: {need['workers']} workers; largest part "
                        f"of a sample: {row['largest_part']} "
                        f"({100 * row['shares'][row['largest_part']]:.0f} %)")
    verdict = ('NOT MET' if over else 'not measured' if unmeasured else
               'met')
    note = '; '.join(over) if over else (
        'no training step measured for ' + ', '.join(unmeasured)
        if unmeasured else '-')
    return GoalRow(goal, ', '.join(counts) or '-', verdict, note)


def _goal_agg3d(record: Mapping) -> GoalRow:
    goal = (f'3D Aggregated Faster R-CNN under {GOAL_AGG3D_S:g} s per '
            'LUNA16-size scan')
    rows = _results(record, 'aggregated3d')
    if not rows:
        return GoalRow(goal, '-', 'not measured',
                       'aggregated3d has not run')
    best = min(rows.values(), key=lambda r: r['seconds_per_scan']['median'])
    measured = ', '.join(
        f"{'AMP' if r['amp_active'] else 'float32'} "
        f"{r['seconds_per_scan']['median']:.3f} s "
        f"({r['seconds_per_scan']['min']:.3f}-"
        f"{r['seconds_per_scan']['max']:.3f})" for r in rows.values())
    met = best['seconds_per_scan']['median'] < GOAL_AGG3D_S
    return GoalRow(goal, measured, 'met' if met else 'NOT MET',
                   largest(scan_parts_3d(best['parts']), best['parts']))


def goals(record: Mapping) -> List[GoalRow]:
    """The three goals' rows (module doc); a goal whose record cannot be
    read says so (the table is written after every step: it must not stop
    the run)."""
    rows = []
    for goal in (_goal_slices, _goal_workers, _goal_agg3d):
        try:
            rows.append(goal(record))
        except (KeyError, TypeError, ValueError) as err:
            rows.append(GoalRow(goal.__name__[6:], '-', 'not measured',
                                f'its record cannot be read: '
                                f'{type(err).__name__}: {err}'))
    return rows


def _row(*cells) -> str:
    return '| ' + ' | '.join(str(c) for c in cells) + ' |'


def _head(*cells) -> List[str]:
    return [_row(*cells), _row(*(['---'] * len(cells)))]


def _f(value: Optional[float], digits: int = 3) -> str:
    if value is None:
        return '-'
    return f'{value:.{digits}f}'


def markdown(record: Mapping, command: str) -> str:
    """The run's table: machine, goals, parts, then each part's figures."""
    plan = record['plan']
    runs = record.get('runs', [])
    last = runs[-1] if runs else {}
    tiny = plan['name'] == 'tiny'
    lines = ['# ' + ('CPU rehearsal at tiny sizes (demo-size models: not '
                     'the goals\' figures)' if tiny else
                     f"GPU run: {last.get('device_name', '?')}"), '',
             f"Plan `{plan['name']}`, device `{record['device']}`; "
             + '; '.join(f"run {i + 1}: {r['started']}, "
                         f"{r.get('device_name', '?')}, torch "
                         f"{r.get('torch', '?')}, CUDA "
                         f"{r.get('cuda') or '-'}, {r.get('cpus', '?')} CPUs"
                         for i, r in enumerate(runs)) + '.', '',
             '```bash', command, '```', '', '## Goals', '']
    lines += _head('goal', 'measured', 'verdict', 'where the time goes')
    lines += [_row(g.goal, g.measured, f'**{g.verdict}**', g.time_goes)
              for g in goals(record)]
    lines += ['', '## Parts', '']
    lines += _head('part', 'status', 'seconds', 'budget (s)', 'run', 'note')
    for name, part in record.get('parts', {}).items():
        lines.append(_row(name, part.get('status', '-'),
                          _f(part.get('seconds'), 1), part.get('budget_s'),
                          part.get('run', '-'), part.get('note', '')))
    for name, table in _PART_TABLES.items():
        rows = _results(record, name)
        if rows:
            try:
                body = table(rows, record)
            except (KeyError, TypeError, ValueError) as err:
                body = [f'(its record cannot be tabulated: '
                        f'{type(err).__name__}: {err}; see results.json)']
            lines += ['', f'## {name}', ''] + body
    return '\n'.join(lines) + '\n'


def _table_prepared(record: Mapping) -> List[str]:
    p = record.get('prepared')
    if not p:
        return []
    return [f"Scans: {len(p['scans'])} synthetic (seed 0), "
            f"{', '.join(map(str, p['slices']))} slices after resampling; "
            f"random weights (seed 0) kept at {p['keep_thr']:.4f}: the best "
            f"{p['findings_kept']} of the first scan's "
            f"{p['findings_stacked']} findings."]


def _table_amp(rows: Mapping, record: Mapping) -> List[str]:
    r = rows['scans']
    out = _table_prepared(record) + [''] + _head(
        'findings', 'float32', 'AMP' if r['amp_active'] else
        'float32 again (CPU)', 'matched', 'score difference, median', 'max',
        'IoU min', 'same findings')
    for key, label in (('all', 'all'), ('confident', 'at the operating '
                                          'point')):
        a = r[key]
        out.append(_row(label, a['fp32'], a['amp'], a['matched'],
                        _f(a['score_diff_median'], 4),
                        _f(a['score_diff_max'], 4), _f(a['iou_min']),
                        ('yes' if r['match'] else 'NO')
                        if key == 'confident' else ''))
    return out + ['', f"Same findings: {r['criterion']}."]


def _table_whole(rows: Mapping, record: Mapping) -> List[str]:
    out = _head('precision', 'slices', 'detector + slice pipeline, '
                'slices/s', 'pipeline alone, slices/s', 'read -> findings, '
                's (min-max)', 'slices/s', 'read', 'resample', 'detect',
                'stack', 'earlier path (SimpleITK, per slice), s')
    for key, r in rows.items():
        p = r['parts']
        out.append(_row(key, r['num_slices'],
                        _f(r['detector_slices_per_second'], 1),
                        _f(r['pipeline_slices_per_second'], 1),
                        f"{_f(r['seconds'])} ({_f(r['spread'][0])}-"
                        f"{_f(r['spread'][1])})",
                        _f(r['slices_per_second'], 1), _f(p['read']),
                        _f(p['resample']), _f(p['detect']), _f(p['stack']),
                        _f(r['earlier_path_seconds'])))
    return out


def _table_infer_scans(rows: Mapping, record: Mapping) -> List[str]:
    r = rows['batch']
    parts = scan_parts_25d(r['parts'])
    out = _head('s per scan, batch (min-max)', 'slices/s',
                's per scan, one after another', 'detector alone',
                *FIVE, 'same findings')
    out.append(_row(f"{_f(r['seconds_per_scan'])} ({_f(r['spread'][0])}-"
                    f"{_f(r['spread'][1])})", _f(r['slices_per_second'], 1),
                    _f(r['one_after_another_seconds_per_scan']),
                    _f(r['detector_seconds_per_scan']),
                    *(_f(parts[k]) for k in FIVE),
                    'yes' if r['same_findings'] else 'NO'))
    return out + ['', f"{r['num_scans']} scans, {r['precision']}; the "
                  'five parts are one step after another; steps: ' +
                  ', '.join(f'{k} {v:.3f}' for k, v in r['parts'].items())]


def _table_agg3d(rows: Mapping, record: Mapping) -> List[str]:
    out = _head('precision', 's per scan (min-max)', 'RPN alone', *FIVE,
                'lung crop', 'windows')
    for key, r in rows.items():
        s, parts = r['seconds_per_scan'], scan_parts_3d(r['parts'])
        out.append(_row(key, f"{_f(s['median'])} ({_f(s['min'])}-"
                        f"{_f(s['max'])})", _f(r['rpn_seconds_per_scan']),
                        *(_f(parts[k]) for k in FIVE),
                        ' x '.join(map(str, r['lung_crop_zyx'])),
                        r['windows']))
    return out


def _table_train(rows: Mapping, record: Mapping) -> List[str]:
    out = _head('config', 'images / step', 'input', 'ms / image',
                's / step')
    for name, r in rows.items():
        if r.get('error'):
            out.append(_row(name, '-', '-', r['error'], '-'))
            continue
        out.append(_row(name, r['batch_size'],
                        ' x '.join(map(str, r['input'])),
                        _f(r['ms_per_image'], 1), _f(r['step_s'])))
    return out


def _table_loading(rows: Mapping, record: Mapping) -> List[str]:
    out = _head('config', 'one worker, samples/s', 'in one process',
                'GPU ms / image (source)', '**workers**', 'largest part')
    for name, r in rows.items():
        if r.get('error'):
            out.append(_row(name, r['error'], '-', '-', '-', '-'))
            continue
        n = r['need']
        gpu = (f"{n['gpu_ms_per_image']:.1f} ({n['gpu_time']})" if n else
               'no GPU time')
        out.append(_row(name + (' (RECIST cache)' if r['recist_cache']
                                else ''),
                        _f(r['samples_per_s_per_worker'], 1),
                        _f(r['in_process_samples_per_s'], 1), gpu,
                        f"**{n['workers']}**" if n else '-',
                        f"{r['largest_part']} "
                        f"({100 * r['shares'][r['largest_part']]:.0f} %)"))
    data = {r['data'] for r in rows.values() if r.get('data')}
    return out + [''] + [f'Data: {d}.' for d in sorted(data)]


_PART_TABLES = dict(amp_compare=_table_amp, whole_scan=_table_whole,
                    infer_scans=_table_infer_scans,
                    aggregated3d=_table_agg3d, train_steps=_table_train,
                    data_loading=_table_loading)


def finite_numbers(node) -> bool:
    """Whether every number in a nested record is finite."""
    if isinstance(node, bool) or node is None or isinstance(node, str):
        return True
    if isinstance(node, (int, float)):
        return math.isfinite(node)
    if isinstance(node, Mapping):
        return all(finite_numbers(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return all(finite_numbers(v) for v in node)
    return True
