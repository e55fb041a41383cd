# Copyright (c) mmlesion contributors. All rights reserved.
"""Reproduce a paper's table on the real data in one command.

Each row is the full-size config with the paper's schedule and the
pre-steps its method documents (the DE anchor search on your training
split, the ALB search, LENS's exports, mining and FPR proposals, the ABS
round), run stage by stage as the method README's commands; rows run once
per ``--seeds`` seed, LUNA16 rows over ``--folds`` (pooled into one FROC by
``tools/luna16_cv.py``). Run it again to resume: a finished stage is not run
again, a training resumes from its newest checkpoint. Writes into
``--work-dir``: ``table.md`` (the paper's numbers, recorded in the method's
``metafile.yml``, beside ours: mean ± std over the seeds), ``table.json``,
``froc.png``, ``commands.sh`` (every command it ran) and ``logs/``.

Examples::

    python tools/reproduce.py elixirnet/table5 --dry-run     # plan, GPU-hours
    python tools/reproduce.py elixirnet/table5 --gpus 4 --seeds 0 1 2
    python tools/reproduce.py aggregated3d/table3 --rows 3dag --folds 0 1
    python tools/reproduce.py elixirnet/table5 --compare     # vs the paper

``--dry-run`` estimates GPU-hours from the step times measured on one H100
(``docs/benchmarks.md``) times the work of each training (epochs x training
images, or iterations for LUNA16 folds); it does not time this machine.
"""
import argparse
import os
import sys
from typing import Optional, Sequence

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_slurm_arguments
from mmlesion_cli.reproduce_index import TABLE_INDEX, tables_help


#: the data root each method's configs read when --data-root is not given
DEFAULT_ROOTS = {
    'elixirnet': 'data/DeepLesion',
    'retinanet_lesion': 'data/DeepLesion',
    'aggregated3d': 'data/LUNA16',
    'lens': 'data/DeepLesion',
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__, epilog=tables_help())
    parser.add_argument('table', choices=sorted(TABLE_INDEX),
                        metavar='TABLE', help='which table (the tables and their rows end this help)')
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
    parser.add_argument('--dry-run', action='store_true',
                        help='print the plan (rows, stages, commands, '
                        'GPU-hours) and run nothing')
    parser.add_argument('--compare', action='store_true',
                        help='compare the finished table with the numbers '
                        'recorded in the metafiles; exit 1 on a regression')
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
                        'by tools/misc/generate_release_replica.py) to '
                        'rehearse the commands; refused otherwise')
    parser.add_argument('--reuse-other-code', action='store_true',
                        help='keep stages finished by another mmlesion '
                        'version (refused otherwise)')
    args = parser.parse_args(argv)
    if args.gpus < 0:
        parser.error('--gpus must be >= 0')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mmlesion.apis.reproduce import (TABLES, PlanContext, StageError,
                                         build_rows, compare, plan_lines,
                                         run_rows, summarise, write_table)
    from mmlesion.apis.reproduce.execute import (load_metafile_results,
                                                 python_executable)
    work_dir = args.work_dir or os.path.join('work_dirs', 'reproduce',
                                             args.table.replace('/', '_'))
    ctx = PlanContext(work_dir=os.path.abspath(work_dir),
                      data_root=args.data_root, gpus=args.gpus,
                      folds=args.folds, cfg_options=list(args.cfg_options),
                      python=python_executable())
    spec = TABLES[args.table]
    root = args.data_root or DEFAULT_ROOTS[args.table.split('/')[0]]
    from mmlesion.datasets.demo.replica_marker import find_replica_marker
    replica = find_replica_marker(root) if os.path.exists(root) else None
    if replica and not args.allow_replica and not args.dry_run:
        print(f'error: {root} is a release replica (synthetic data, '
              f"{replica.get('dataset')}), not the real release; pass "
              '--allow-replica to rehearse on it', file=sys.stderr)
        return 2
    try:
        rows = build_rows(args.table, ctx, args.rows, args.seeds)
    except KeyError as err:
        print(f'error: {err.args[0]}', file=sys.stderr)
        return 2
    if args.dry_run:
        print('\n'.join(plan_lines(spec, rows)))
        return 0
    if args.status:
        from mmlesion.apis.reproduce.slurm import job_status, status_table
        print(status_table(job_status(ctx.work_dir)))
        return 0
    os.makedirs(ctx.work_dir, exist_ok=True)
    failed = {}
    if args.executor == 'slurm' and not args.compare:
        if not args.partition:
            print('error: --executor slurm needs --partition',
                  file=sys.stderr)
            return 2
        from mmlesion.apis.reproduce.slurm import (SlurmOptions, job_status,
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
        summary = summarise(spec, rows, load_metafile_results())
        if not any(e['seeds'] for e in summary):
            print(f'error: no finished row in {ctx.work_dir} to compare',
                  file=sys.stderr)
            return 1
        regressions = compare(summary, args.tolerance)
        for line in regressions:
            print(f'regression: {line}')
        print(f'{len(regressions)} regression(s) against the metafiles')
        return 1 if regressions else 0
    return 0 if args.compare or not failed else 1


if __name__ == '__main__':
    sys.exit(main())
