# Copyright (c) mmlesion contributors. All rights reserved.
"""Reproduce a paper's table on the real data in one command.

Each row is the full-size config with the paper's schedule and the
pre-steps its method documents (the DE anchor search on your training
split, the ALB search, LENS's exports, mining and FPR proposals, the ABS
round), run stage by stage as the method README's commands; rows run once
per ``--seeds`` seed, LUNA16 rows over ``--folds`` (pooled into one FROC by
``tools/luna16_cv.py``). Run it again to resume: a finished stage is not run
again, a training resumes from its newest checkpoint. Writes into
``--work-dir``: ``table.md`` (the paper's numbers, as in the method's
README, beside ours: mean ± std over the seeds), ``table.json``,
``froc.png``, ``commands.sh`` (every command it ran) and ``logs/``.

Examples::

    python tools/reproduce.py elixirnet/table5 --dry-run     # plan, GPU-hours
    python tools/reproduce.py elixirnet/table5 --dry-run --rows fpn \
        --device cpu --time-iters 2                          # CPU-hours
    python tools/reproduce.py elixirnet/table5 --gpus 4 --seeds 0 1 2
    python tools/reproduce.py aggregated3d/table3 --rows 3dag --folds 0 1
    python tools/reproduce.py elixirnet/table5 --compare     # vs the paper
    python tools/reproduce.py --list                         # every table
    PYTHONPATH=. python tools/reproduce.py --list \
        --custom-imports projects.toy.toy.tables             # and the toy's

The tables are those of the registered methods (each ``mmlesion/methods/
<name>/tables.py``, and any module ``--custom-imports`` names: mmengine's
``custom_imports``, for a method that lives outside mmlesion).

``--dry-run`` estimates the hours of each training as its work (epochs x
training images, or iterations for LUNA16 folds) times the seconds per
training item of its config. With a CUDA device it times them: a few
training steps of each config (``--time-iters``, after 2 warm-up steps) on
synthetic inputs, with the run's ``--cfg-options``; without one it takes the
step times measured on one H100 (``docs/benchmarks.md``). ``--time-iters N``
on a CPU times the CPU: the hours are then CPU-hours of this machine.
"""
import argparse
import os
import re
import sys
from typing import List, Optional, Sequence, Tuple

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_slurm_arguments


#: --dry-run on a CUDA device: timed training steps per config by default
DEFAULT_TIME_ITERS = 5
#: untimed training steps before the timed ones
TIME_WARMUP = 2


def tables_list(tables: dict) -> str:
    """Every table with its title and rows (``--list``)."""
    lines = ['tables and their rows:']
    for name, spec in tables.items():
        lines.append(f'  {name}: {spec.title}')
        lines.append(f"      rows: {' '.join(spec.row_keys)}")
    return '\n'.join(lines)


def registered_tables(modules: Sequence[str]) -> dict:
    """The tables of every registered method, after importing ``modules``
    (mmengine's ``custom_imports``: a method registered from outside
    mmlesion)."""
    from mmengine.utils import import_modules_from_strings

    from mmlesion.apps.reproduce import TABLES
    import_modules_from_strings(list(modules), allow_failed_imports=False)
    return dict(TABLES)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('table', nargs='?', metavar='TABLE',
                        help='which table (--list: every table and its rows)')
    parser.add_argument('--list', action='store_true',
                        help='list the registered tables and their rows, '
                        'then exit')
    parser.add_argument('--custom-imports', nargs='+', default=[],
                        metavar='MODULE',
                        help="modules to import first (mmengine's "
                        'custom_imports): a method registered outside '
                        'mmlesion, e.g. projects.toy.toy.tables')
    parser.add_argument('--rows', nargs='+',
                        help='rows to run (default: every row of the table)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='training seeds, one run of each row per seed')
    parser.add_argument('--folds', type=int, nargs='+',
                        help='LUNA16 folds (default: all ten)')
    parser.add_argument('--gpus', type=int, default=1,
                        help='GPUs per training (more than 1: mmengine\'s '
                        'pytorch launcher; default %(default)s)')
    parser.add_argument('--work-dir',
                        help='default work_dirs/reproduce/<table>')
    parser.add_argument('--data-root',
                        help='the dataset root the configs read (default: '
                        'the configs\' own, e.g. data/DeepLesion/)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='appended to every training and test (e.g. to '
                        'rehearse at small size)')
    parser.add_argument('--search-cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='appended after --cfg-options to every '
                        'architecture search only (ElixirNet Table 6), for '
                        'keys only a search config has, e.g. '
                        'train_cfg.num_candidates=8 to rehearse the random '
                        'search')
    parser.add_argument('--config-cfg-options', nargs='+', action='append',
                        default=[], metavar='NAME KEY=VALUE',
                        help='NAME, then options in place of --cfg-options '
                        'for the stages of every config whose file name '
                        'contains NAME (the first NAME that matches), for '
                        'models the other options do not fit, e.g. '
                        'lens-fpr train_cfg.max_epochs=1 for LENS\'s 3D FPR '
                        'network; repeatable')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the plan (rows, stages, commands, '
                        'GPU-hours) and run nothing')
    parser.add_argument('--time-iters', type=int, metavar='N',
                        help='--dry-run: estimate the hours from N training '
                        f'steps of each config (after {TIME_WARMUP} warm-up '
                        'steps, synthetic inputs) timed on --device; 0: the '
                        'step times measured on one H100 and shipped with '
                        f'the methods (default: {DEFAULT_TIME_ITERS} on a '
                        'CUDA device, else 0)')
    parser.add_argument('--device',
                        help='--dry-run: where --time-iters times (default: '
                        'cuda when there is one, else cpu; on a CPU the '
                        'hours are CPU-hours of this machine)')
    parser.add_argument('--compare', action='store_true',
                        help='compare the finished table with the numbers '
                        'the papers publish; exit 1 on a regression')
    parser.add_argument('--tolerance', type=float,
                        help='allowed shortfall for --compare (default: 2 '
                        'points for percentages, 0.02 for a CPM)')
    parser.add_argument('--executor', choices=['local', 'slurm'],
                        default='local',
                        help='local: run the stages here, one after the '
                        'other; slurm: submit each stage as a Slurm job '
                        '(through submitit; a stage waits for the one '
                        'before it in its row, pre-empted jobs requeue and '
                        'resume) and wait for them')
    add_slurm_arguments(parser, 'to write the table')
    parser.add_argument('--keep-going', action='store_true',
                        help='go on with the other rows when one fails')
    parser.add_argument('--allow-replica', action='store_true',
                        help='run on a release replica (synthetic data made '
                        'by projects/replicas/tools/'
                        'generate_release_replica.py) to rehearse the '
                        'commands; refused otherwise')
    parser.add_argument('--reuse-other-code', action='store_true',
                        help='keep stages finished by another mmlesion '
                        'version (refused otherwise)')
    args = parser.parse_args(argv)
    if args.list:
        return args
    if args.table is None:
        parser.error('give a TABLE (--list: the tables)')
    known = registered_tables(args.custom_imports)
    if args.table not in known:
        parser.error(f'unknown table {args.table!r}; known: '
                     f'{", ".join(known)} (--list: their rows)')
    if args.gpus < 0:
        parser.error('--gpus must be >= 0')
    if args.time_iters is not None and args.time_iters < 0:
        parser.error('--time-iters must be >= 0')
    if not args.dry_run and (args.time_iters or args.device):
        parser.error('--time-iters and --device go with --dry-run')
    for names in args.config_cfg_options:
        if '=' in names[0]:
            parser.error(f'--config-cfg-options {" ".join(names)}: the '
                         'first word is a config name (NAME KEY=VALUE ...)')
    return args


def make_step_timer(args: argparse.Namespace):
    """The step timer of a ``--dry-run`` (None: the shipped step times).

    Args:
        args (Namespace): the parsed options.

    Returns:
        StepTimer, optional: times on ``--device`` (default: cuda when
        there is one, else cpu), ``--time-iters`` steps per config (default:
        :data:`DEFAULT_TIME_ITERS` on a CUDA device, else none).
    """
    import torch

    from mmlesion.apps.reproduce.timing import StepTimer
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    iters = args.time_iters
    if iters is None:
        iters = DEFAULT_TIME_ITERS if device.startswith('cuda') else 0
    if not iters:
        return None
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: no CUDA device here')
    return StepTimer(device, iters, TIME_WARMUP, args.cfg_options)


def timed_rows(table: str, ctx, keys: Optional[List[str]],
               seeds: List[int], timer) -> Tuple[list, list]:
    """The rows of a table with their hours from ``timer``, and the step
    times each row's hours used.

    Raises:
        KeyError: an unknown table or row (before anything is timed).
    """
    from mmlesion.apps.reproduce import build_rows
    from mmlesion.apps.reproduce.estimate import step_times
    with step_times(timer) as looked_up:
        rows = build_rows(table, ctx, keys, seeds)  # each config timed once
        used = []
        for row in rows:  # again, row by row, from the timer's cache
            start = len(looked_up)
            build_rows(table, ctx, [row.key], [row.seed])
            used.append(looked_up[start:])
    return rows, used


_STAGE_HOURS = re.compile(r'^(    - .*~\S+) GPU-h$')
_TOTAL = re.compile(r'^(jobs: .*estimated total: \S+) GPU-hours .*$')


def label_plan(lines: Sequence[str], rows: Sequence, used: Sequence,
               timer) -> List[str]:
    """A plan with hours from timed steps: under each row, where its hours
    come from; the hours' unit (CPU-hours of this machine when the CPU
    timed them) on its stages and on the total.

    Args:
        lines (Sequence[str]): ``plan_lines`` of the rows.
        rows (Sequence[Row]): the rows.
        used (Sequence[list[StepTime]]): the step times of each row.
        timer (StepTimer): what timed them.

    Returns:
        list[str]: the labelled plan.
    """
    from mmlesion.apps.reproduce.estimate import SHIPPED_SOURCE
    timed_unit = 'GPU' if timer.on_gpu else 'CPU'
    hours = 'GPU-hours' if timer.on_gpu else 'CPU-hours of this machine'
    labels = {}
    for row, times in zip(rows, used):
        shipped = [t for t in times if not t.timed]
        why = '; '.join(dict.fromkeys(t.note for t in shipped if t.note))
        if not times:
            label, unit = '', timed_unit
        elif not shipped:
            label, unit = f'{hours} estimated from {timer.source}', \
                timed_unit
        elif len(shipped) == len(times):
            label, unit = f'GPU-hours from {SHIPPED_SOURCE} ({why})', 'GPU'
        else:
            label = (f'{hours} estimated from {timer.source}, GPU-hours '
                     f'from {SHIPPED_SOURCE} where not timed ({why})')
            unit = 'GPU' if timer.on_gpu else ''
        labels[f'  {row.key} (seed {row.seed}): {row.label}'] = (label, unit)
    every_timed = all(t.timed for times in used for t in times)
    out, unit = [], timed_unit
    for line in lines:
        if line in labels:
            label, unit = labels[line]
            out += [line, f'    {label}'] if label else [line]
            continue
        stage, total = _STAGE_HOURS.match(line), _TOTAL.match(line)
        if stage and unit != 'GPU':
            line = f'{stage.group(1)} {unit}-h' if unit else \
                f'{stage.group(1)} h'
        elif total:
            line = f'{total.group(1)} ' + (
                f'{hours} (estimated from {timer.source})' if every_timed
                else f'hours ({hours} estimated from {timer.source}; '
                f'GPU-hours from {SHIPPED_SOURCE} where a row says so)')
        out.append(line)
    return out


def stages_have_cuda(executor: str) -> bool:
    """Whether the stages run where CUDA is: on Slurm the jobs' nodes (the
    GPU partition), locally this machine."""
    if executor == 'slurm':
        return True
    import torch
    return torch.cuda.is_available()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.list:
        print(tables_list(registered_tables(args.custom_imports)))
        return 0
    from mmlesion.apps.reproduce import (TABLES, PlanContext, StageError,
                                         build_rows, compare, plan_lines,
                                         run_rows, summarise, write_table)
    from mmlesion.apps.reproduce.tables import table_data_folders
    from mmlesion.apps.reproduce.execute import (paper_results,
                                                 python_executable)
    from mmlesion.datasets.replica_marker import find_data_replica_marker
    work_dir = args.work_dir or os.path.join('work_dirs', 'reproduce',
                                             args.table.replace('/', '_'))
    ctx = PlanContext(work_dir=os.path.abspath(work_dir),
                      data_root=args.data_root, gpus=args.gpus,
                      folds=args.folds, cfg_options=list(args.cfg_options),
                      search_cfg_options=list(args.search_cfg_options),
                      config_cfg_options={
                          names[0]: names[1:]
                          for names in args.config_cfg_options},
                      python=python_executable(),
                      cuda=stages_have_cuda(args.executor))
    spec = TABLES[args.table]
    for root in table_data_folders(args.table, ctx):
        replica = find_data_replica_marker(root) if os.path.exists(
            root) else None
        if replica and not args.allow_replica and not args.dry_run:
            print(f'error: {root} is a release replica (synthetic data, '
                  f"{replica.get('dataset')}), not the real release; pass "
                  '--allow-replica to rehearse on it', file=sys.stderr)
            return 2
    try:
        timer = make_step_timer(args) if args.dry_run else None
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    try:
        if timer is None:
            rows = build_rows(args.table, ctx, args.rows, args.seeds)
        else:
            rows, used = timed_rows(args.table, ctx, args.rows, args.seeds,
                                    timer)
    except KeyError as err:
        print(f'error: {err.args[0]}', file=sys.stderr)
        return 2
    if args.dry_run:
        lines = plan_lines(spec, rows)
        if timer is not None:
            lines = label_plan(lines, rows, used, timer)
        print('\n'.join(lines))
        return 0
    if args.status:
        from mmlesion.apps.reproduce.slurm import job_status, status_table
        print(status_table(job_status(ctx.work_dir)))
        return 0
    if args.executor == 'slurm' and not args.compare and not args.partition:
        print('error: --executor slurm needs --partition', file=sys.stderr)
        return 2
    if not args.compare:  # every input there before the first stage
        from mmlesion.apps.reproduce.dry_run import missing_input_lines
        from mmlesion.apps.reproduce.plan import repo_root
        missing = missing_input_lines(rows, repo_root())
        if missing:
            print('error: the plan cannot start, inputs are not there:\n' +
                  '\n'.join(missing), file=sys.stderr)
            return 2
    os.makedirs(ctx.work_dir, exist_ok=True)
    failed = {}
    if args.executor == 'slurm' and not args.compare:
        from mmlesion.apps.reproduce.slurm import (SlurmOptions, job_status,
                                                   submit_rows,
                                                   wait_for_jobs)
        records = submit_rows(
            ctx.work_dir, rows,
            SlurmOptions(args.partition, args.gpus, args.cpus_per_task,
                         args.mem_gb, args.max_minutes),
            args.reuse_other_code)
        if args.no_wait:
            print(f'{len(records)} job(s) submitted; --status shows them')
            return 0
        wait_for_jobs([r['job_id'] for r in records])
        failed = {s['job_id']: s['failure'] or s['stdout']
                  for s in job_status(ctx.work_dir)
                  if s['job_id'] in {r['job_id'] for r in records}
                  and s['state'] != 'COMPLETED'}
        for job, why in failed.items():
            print(f'not done: job {job}: {why}', file=sys.stderr)
    elif not args.compare:
        try:
            status = run_rows(ctx.work_dir, rows, args.keep_going,
                              args.reuse_other_code)
        except StageError as err:
            print(f'error: {err}', file=sys.stderr)
            write_table(ctx.work_dir, spec, rows)
            return 1
        failed = {k: v for k, v in status.items() if v != 'done'}
        for key, why in failed.items():
            print(f'not done: {key}: {why}', file=sys.stderr)
    paths = write_table(ctx.work_dir, spec, rows)
    with open(paths[0]) as f:
        print(f.read())
    print('written: ' + ', '.join(paths))
    if args.compare:
        summary = summarise(spec, rows, paper_results())
        if not any(e['seeds'] for e in summary):
            print(f'error: no finished row in {ctx.work_dir} to compare',
                  file=sys.stderr)
            return 1
        regressions = compare(summary, args.tolerance)
        for line in regressions:
            print(f'regression: {line}')
        print(f'{len(regressions)} regression(s) against the papers')
        return 1 if regressions else 0
    return 0 if args.compare or not failed else 1


if __name__ == '__main__':
    sys.exit(main())
