# Copyright (c) mmlesion contributors. All rights reserved.
"""Run a planned table, write it in the paper's form, compare it with the
published numbers (:mod:`.paper_results`, the README's paper column).

Every stage runs as a subprocess from the repository root, its output in
``<work>/logs/``. A finished stage leaves a marker (its command, the code
fingerprint, the time); a stage with a marker is not run again, so a table
resumes where it stopped (a training resumes inside its own work dir from
the newest checkpoint). A marker from other code is refused unless asked.
Also here: the metric keys a table reads, and what the stages' commands
take from the configs (the epochs a training ends at with the user's
``--cfg-options``, the options that move a config's data paths).
"""
import copy
import glob
import hashlib
import json
import math
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from functools import lru_cache
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmlesion.utils.writing.atomic import atomic_write_json, atomic_write_text
from mmlesion.utils.code_digest import code_fingerprint
from mmlesion.utils.configs.cfg_options import strings_under
from .paper_results import PAPER_RESULTS
from .paper_tables import TableSpec
from .plan import (MetricMap, PlanContext, Row, Stage, parse_cfg_options,
                   parsed_config, repo_root)
from .variants import READ_ROWS, VARIANTS, row_setting

LAST = '@last:'
#: the checkpoint ``save_best`` keeps (``best_<key>_epoch_<n>.pth``)
BEST = '@best:'
FROC_RATES = (0.5, 1, 2, 3, 4, 8, 16)
#: the FP rates of LUNA16's CPM (``eval_luna16.py``'s ``sensitivity_at``)
LUNA16_RATES = (0.125, 0.25, 0.5, 1, 2, 4, 8)


# ------------------------------------- paper keys -> our metric files
def froc_map() -> MetricMap:
    """DeepLesion 2D paper keys -> ``FROCMetric`` keys (percent)."""
    out = {f'sens@{r:g}': (f'froc/sens@{r:g}', 100.) for r in FROC_RATES}
    out['bbox_mAP'] = ('froc/bbox_mAP', 100.)
    return out


def luna16_map() -> MetricMap:
    """LUNA16 paper keys -> ``eval_luna16`` ``metrics.json`` keys (a
    ``/`` reads a nested key: ``sensitivity_at/0.125``). The papers
    record the CPM; the sensitivities (percent) draw the FROC picture."""
    out = {'luna16/cpm': ('cpm', 1.)}
    out.update({f'luna16/sens@{r:g}': (f'sensitivity_at/{r:g}', 100.)
                for r in LUNA16_RATES})
    return out


class StageError(RuntimeError):
    """A stage failed or left its outputs missing."""


def stage_id(stage: Stage) -> str:
    """A stable id of a stage: its name and a digest of its command."""
    digest = hashlib.sha1(stage.command.encode()).hexdigest()[:12]
    return f'{stage.name}-{digest}'


def resolve(argv: Sequence[str]) -> List[str]:
    """Replace ``@last:DIR`` by the checkpoint DIR/last_checkpoint names
    (mmengine writes it after every checkpoint) and ``@best:DIR`` by the
    one ``best_*.pth`` of DIR (the checkpoint hook's ``save_best``)."""
    out = []
    for arg in argv:
        if arg.startswith(BEST):
            work = arg[len(BEST):]
            found = sorted(glob.glob(osp.join(glob.escape(work),
                                              'best_*.pth')))
            if not found:
                raise StageError(
                    f'no best checkpoint (best_*.pth) in {work}: the '
                    'training has not validated, or its config keeps no '
                    'best (save_best)')
            if len(found) > 1:
                raise StageError(f'several best checkpoints in {work}: '
                                 f'{[osp.basename(p) for p in found]}')
            arg = found[0]
        elif arg.startswith(LAST):
            work = arg[len(LAST):]
            pointer = osp.join(work, 'last_checkpoint')
            if not osp.isfile(pointer):
                raise StageError(f'{pointer} missing: the training in {work} '
                                 'has not written a checkpoint')
            with open(pointer) as f:
                arg = f.read().strip()
        out.append(arg)
    return out


#: the folder of a table's stage markers, under its work dir
MARKER_DIR = '.reproduce'


def marker_path(work_dir: str, stage: Stage) -> str:
    return osp.join(work_dir, MARKER_DIR, f'{stage_id(stage)}.json')


def stage_done(work_dir: str, stage: Stage,
               allow_other_code: bool = False) -> bool:
    """Whether the stage finished before (its marker and outputs exist).

    Raises:
        StageError: the marker was made by other code (the result would
            mix code versions) and ``allow_other_code`` is False.
    """
    path = marker_path(work_dir, stage)
    if not osp.isfile(path):
        return False
    with open(path) as f:
        marker = json.load(f)
    if marker.get('code') != code_fingerprint() and not allow_other_code:
        raise StageError(
            f'{stage.name}: finished by other mmlesion code ({path}); '
            'remove the marker to run it again, or pass '
            '--reuse-other-code to keep its result')
    return all(osp.exists(p) for p in stage.outputs)


def run_stage(work_dir: str, stage: Stage, log=print) -> None:
    """Run one stage (outputs checked), then write its marker."""
    argv = resolve(stage.argv)
    logs = osp.join(work_dir, 'logs')
    os.makedirs(logs, exist_ok=True)
    log_file = osp.join(logs, f'{stage_id(stage)}.log')
    start = time.time()
    with open(log_file, 'a') as out:
        out.write(f'$ {shlex.join(argv)}\n')
        out.flush()
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                              cwd=repo_root())
    if proc.returncode != 0:
        with open(log_file) as f:
            tail = ''.join(f.readlines()[-12:])
        raise StageError(f'{stage.name} failed (exit {proc.returncode}); '
                         f'log {log_file}:\n{tail}')
    missing = [p for p in stage.outputs if not osp.exists(p)]
    if missing:
        raise StageError(f'{stage.name} ended without writing {missing}; '
                         f'log {log_file}')
    atomic_write_json(marker_path(work_dir, stage), dict(
        stage=stage.name, command=stage.command, resolved=argv,
        code=code_fingerprint(), seconds=round(time.time() - start, 1),
        finished=time.strftime('%Y-%m-%d %H:%M:%S')), indent=1)
    with open(osp.join(work_dir, 'commands.sh'), 'a') as f:
        f.write(f'# {stage.name}\n{shlex.join(argv)}\n')


def run_rows(work_dir: str, rows: Sequence[Row], keep_going: bool = False,
             allow_other_code: bool = False, log=print) -> Dict[str, str]:
    """Run every stage of every row once (shared stages once in all).

    Returns:
        dict: ``<row>/seed_<s>`` -> ``'done'`` or the failure.
    """
    status, seen = {}, set()
    todo = [(r, s) for r in rows for s in r.stages]
    for i, (row, stage) in enumerate(todo, 1):
        key = f'{row.key}/seed_{row.seed}'
        if key in status and status[key] != 'done':
            continue
        sid = stage_id(stage)
        if sid in seen or stage_done(work_dir, stage, allow_other_code):
            seen.add(sid)
            status.setdefault(key, 'done')
            continue
        log(f'[{i}/{len(todo)}] {key}: {stage.name} '
            f'(estimate {stage.gpu_hours:g} GPU-h): {stage.command}')
        try:
            run_stage(work_dir, stage, log)
        except StageError as err:
            if not keep_going:
                raise  # the caller prints it, once
            status[key] = f'failed: {err}'
            log(f'error: {key}: {err}')
            continue
        seen.add(sid)
        status.setdefault(key, 'done')
    return status


def _metric_value(raw: dict, key: str) -> Any:
    """``raw[key]``, or for a key with ``/`` that is not in ``raw`` the
    nested value (``sensitivity_at/0.125`` -> ``raw['sensitivity_at']
    ['0.125']``); None when absent."""
    if key in raw:
        return raw[key]
    node = raw
    for part in key.split('/'):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def read_row_metrics(row: Row) -> Optional[Dict[str, float]]:
    """The row's metrics in the paper's units, or None when absent."""
    if not osp.isfile(row.metrics_file):
        return None
    with open(row.metrics_file) as f:
        raw = json.load(f)
    out = {}
    for key, (ours, factor) in row.metric_map.items():
        value = _metric_value(raw, ours)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value) * factor
    return out


def paper_results() -> Dict[str, Dict[str, float]]:
    """Model name -> the paper's numbers (:mod:`.paper_results`), a copy."""
    return {k: dict(v) for k, v in PAPER_RESULTS.items()}


def setting_text(row: Row, rows: Sequence[Row]) -> str:
    """The row's setting as ``table.md`` and ``--compare`` print it: the
    paper's, another paper's (quoted) or a named variant; a variant says
    which row is the paper's reading (or, where that row is our reading of
    a row the paper does not print legibly, that it is set beside a
    reading), or that its comparison with the paper's number is a
    variant's."""
    text = row_setting(row.model)
    variant = VARIANTS.get(row.model)
    if variant is None:
        return text
    if variant.paper_reading is None:
        return text + ("; set against the paper's number as a variant "
                       "(no row is the paper's reading)")
    reading = [r.key for r in rows if r.model == variant.paper_reading]
    where = (f'row {reading[0]}' if reading else
             f'{variant.paper_reading} (not among the rows run)')
    if variant.paper_reading in READ_ROWS:  # a reading, not the paper's
        return text + (f'; set beside {where}, our reading of the paper\'s '
                       'row, not a setting the paper states')
    return text + f"; the paper's reading: {where}"


def summarise(spec: TableSpec, rows: Sequence[Row],
              paper: Dict[str, Dict[str, float]]) -> List[dict]:
    """Per table row: its setting (:func:`setting_text`), the paper's
    numbers and ours (mean, std, seeds), the seeds asked and those of them
    without metrics (``seeds_missing``: failed, killed or not run yet)."""
    out: Dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(row.key, dict(
            key=row.key, label=row.label, model=row.model,
            setting=setting_text(row, rows),
            paper=paper.get(row.paper_name, {}), seeds=[], seeds_asked=[],
            seeds_missing=[], per_seed={}))
        entry['seeds_asked'].append(row.seed)
        metrics = read_row_metrics(row)
        if metrics is not None:
            entry['seeds'].append(row.seed)
            entry['per_seed'][row.seed] = metrics
        else:
            entry['seeds_missing'].append(row.seed)
    for entry in out.values():
        ours = {}
        for col in spec.columns:
            vals = [m[col] for m in entry['per_seed'].values() if col in m]
            if vals:
                mean = sum(vals) / len(vals)
                std = (math.sqrt(sum((v - mean)**2 for v in vals) /
                                 (len(vals) - 1)) if len(vals) > 1 else 0.)
                ours[col] = dict(mean=mean, std=std, n=len(vals))
        entry['ours'] = ours
    return list(out.values())


def table_markdown(spec: TableSpec, summary: Sequence[dict]) -> str:
    """The table in the paper's form: per row its setting (the paper's or
    a named variant), then each column the paper's value and ours (mean ±
    std over the seeds). A value from fewer seeds than asked says
    ``(k of N seeds)`` and the row's seeds name the missing ones; a note
    under the table says why."""
    cols = [c for c in spec.columns
            if any(c in e['paper'] or c in e['ours'] for e in summary)]
    lines = [f'# {spec.title}', '',
             '| row | setting | ' +
             ' | '.join(f'{c} paper / ours' for c in cols) + ' | seeds |',
             '|---|---|' + '---:|' * len(cols) + '---|']
    for e in summary:
        cells = []
        for c in cols:
            p = e['paper'].get(c)
            o = e['ours'].get(c)
            ptxt = '-' if p is None else f'{p:g}'
            otxt = '-' if o is None else (
                f"{o['mean']:.2f} ± {o['std']:.2f}" if o['n'] > 1 else
                f"{o['mean']:.2f}") + _fewer_seeds(o, e)
            cells.append(f'{ptxt} / {otxt}')
        seeds = e['seeds'] or '-'
        if e['seeds'] and e['seeds_missing']:
            seeds = f"{e['seeds']}; missing {e['seeds_missing']}"
        lines.append(f"| {e['label']} | {e['setting']} | " +
                     ' | '.join(cells) + f' | {seeds} |')
    if any(e['seeds'] and e['seeds_missing'] for e in summary):
        lines += ['', '(k of N seeds): the mean of the k seeds that '
                  'finished, fewer than the N asked (--seeds); the missing '
                  "seeds' stages failed, were killed or have not run (their "
                  'logs are in logs/). Run the table again to resume them.']
    return '\n'.join(lines) + '\n'


def _fewer_seeds(value: dict, entry: dict) -> str:
    """`` (k of N seeds)`` when a value averages fewer seeds than asked."""
    asked = len(entry['seeds_asked'])
    return f" ({value['n']} of {asked} seeds)" if value['n'] < asked else ''


def write_table(work_dir: str, spec: TableSpec, rows: Sequence[Row],
                paper=None) -> List[str]:
    """``table.md``, ``table.json`` and (with FROC columns) ``froc.png``
    in ``work_dir``; returns the paths."""
    summary = summarise(spec, rows,
                        paper_results() if paper is None else paper)
    md = osp.join(work_dir, 'table.md')
    js = osp.join(work_dir, 'table.json')
    atomic_write_text(md, table_markdown(spec, summary))
    atomic_write_json(js, dict(table=spec.name, title=spec.title,
                               rows=summary), indent=1)
    paths = [md, js]

    def key(e, r):  # the row's sensitivity column at rate r
        return next((k for k in (f'sens@{r:g}', f'froc3d/sens@{r:g}',
                                 f'luna16/sens@{r:g}') if k in e['ours']),
                    None)

    done = [e for e in summary if e['ours']]
    # the FP rates every finished row has (a method may print fewer)
    rates = [r for r in spec.picture_rates
             if done and all(key(e, r) for e in done)]

    def label(e):  # a row from fewer seeds than asked says so
        return e['label'] + (f" ({len(e['seeds'])} of "
                             f"{len(e['seeds_asked'])} seeds)"
                             if e['seeds_missing'] else '')

    curves = {
        label(e): ([e['ours'][key(e, r)]['mean'] / 100. for r in rates],
                   [e['ours'][key(e, r)]['std'] / 100. for r in rates])
        for e in done
    }
    if len(rates) >= 2 and curves:
        from mmlesion.visualization.study_froc import plot_study_froc
        png = osp.join(work_dir, 'froc.png')
        tmp = png + '.tmp.png'
        plot_study_froc(curves, [float(r) for r in rates], tmp,
                        title=spec.title[:60])
        os.replace(tmp, png)
        paths.append(png)
    return paths


def compare(summary: Sequence[dict],
            tolerance: Optional[float] = None) -> List[str]:
    """Regressions of a finished table against the paper's numbers:
    ``ours < paper - tolerance`` (default tolerance: 2 points for
    percentages, 0.02 for values in [0, 1] such as the CPM).

    A variant's line ends with its setting (``[variant: ...]``).

    Returns:
        list[str]: one line per regression (empty: none).
    """
    lines = []
    for e in summary:
        setting = e.get('setting', 'paper')
        mark = '' if setting == 'paper' else f' [{setting}]'
        for key, paper in e['paper'].items():
            ours = e['ours'].get(key)
            if ours is None:
                continue
            tol = tolerance if tolerance is not None else (
                0.02 if abs(paper) <= 1 else 2.0)
            if ours['mean'] < paper - tol:
                lines.append(
                    f"{e['label']} ({e['model']}): {key} {ours['mean']:.3f}"
                    f'{_fewer_seeds(ours, e)} < paper {paper:g} - {tol:g}'
                    f'{mark}')
    return lines


def plan_lines(spec: TableSpec, rows: Sequence[Row]) -> List[str]:
    """The dry-run plan: every row, its stages, GPUs and GPU-hours.

    The commands show the paths inside the repository root (where the
    stages run) relative to it; before the total, one line per input that
    is not there (:mod:`.dry_run`).
    """
    from .dry_run import display_command, missing_input_lines
    base = repo_root()
    seen, lines, total = set(), [f'{spec.name}: {spec.title}'], 0.
    for row in rows:
        lines.append(f'  {row.key} (seed {row.seed}): {row.label}')
        for s in row.stages:
            sid = stage_id(s)
            shared = sid in seen
            seen.add(sid)
            if not shared:
                total += s.gpu_hours
            lines.append(
                f"    - {s.name}{' (shared, runs once)' if shared else ''}:"
                f' {s.gpus} GPU(s), ~{s.gpu_hours:g} GPU-h')
            lines.append(f'      {display_command(s, base)}')
    if osp.abspath(os.getcwd()) != base:
        lines.append(f'(the commands run from the repository root, {base})')
    lines += missing_input_lines(rows, base)
    lines.append(f'jobs: {len(seen)} stages; estimated total: '
                 f'{total:.1f} GPU-hours (H100 step times; see --help)')
    return lines


def python_executable() -> str:
    return sys.executable or 'python'


# ------------------------------------------ the --cfg-options of the stages
@lru_cache(maxsize=None)
def config_data_paths(config: str) -> Tuple[Tuple[str, str], ...]:
    """(dotted key, value) of the strings of a config's dataloaders and
    evaluators (its data paths among them)."""
    from mmlesion.utils.configs.cfg_options import DATA_ROOT_SECTIONS
    cfg = parsed_config(config).to_dict()
    return tuple(kv for section in DATA_ROOT_SECTIONS if section in cfg
                 for kv in strings_under(cfg[section], section))


def _with_slash(path: str) -> str:
    return path if path.endswith(('/', '\\')) else path + '/'


def root_options(config: str,
                 moves: Sequence[Tuple[str, str]]) -> List[str]:
    """``--cfg-options`` that move a config's data paths: each path under
    an old folder gets the new folder instead, named key by key.

    A top-level ``data_root=NEW`` moves the datasets only in the tools
    that carry it to them (``tools/train.py``, ``tools/test.py``), and
    only in configs that have a ``data_root``; ``tools/luna16_cv.py``
    merges it without moving anything, and a config reading several
    releases (one root each) has none.
    The explicit keys work in every tool.

    Args:
        config (str): the config file.
        moves (sequence): ``(old folder, new folder)`` pairs, e.g.
            ``('data/LUNA16/', '/scratch/LUNA16')``.

    Returns:
        list[str]: ``key=value`` options, in the config's order.
    """
    out = []
    for key, value in config_data_paths(config):
        for old, new in moves:
            old = _with_slash(old)
            if value == old[:-1]:
                out.append(f'{key}={new.rstrip("/")}')
                break
            if value.startswith(old):
                out.append(f'{key}={_with_slash(new)}{value[len(old):]}')
                break
    return out


@lru_cache(maxsize=None)
def config_epochs(config: str) -> int:
    """``train_cfg.max_epochs`` of a config file."""
    return int(parsed_config(config).train_cfg.max_epochs)


def trained_epochs(ctx: PlanContext, config: str) -> int:
    """The epochs a training of ``config`` runs with the user's
    ``--cfg-options`` (``train_cfg.max_epochs=...`` shrinks a rehearsal),
    hence the ``epoch_<n>.pth`` it ends with."""
    opts = {k: v for k, v in parse_cfg_options(
        ctx.user_options(config)).items()
            if k == 'train_cfg' or k.startswith('train_cfg.')}
    if not opts:
        return config_epochs(config)
    cfg = copy.deepcopy(parsed_config(config))
    cfg.merge_from_dict(opts)
    return int(cfg.train_cfg.max_epochs)
