# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS's five steps (Yan et al., TMI 2020, Sec. III) on synthetic data, on
CPU, with a table of each step's effect on the 3D protocol (PROTOCOLS.md
§2: 3D IoBB >= 0.3, sensitivity at 1/8..8 FPs per sub-volume).

Generates a partially labelled and a fully labelled demo set, trains the
baseline, (a) AFP, (b)/(c) multi-dataset LENS, mines missing annotations,
retrains (d), trains the 3D FPR (e), and scores every row against the
complete 3D truth of the generator (unannotated lesions included). Writes
``lens_demo.{json,md,png}`` and ``lens_demo.log`` into the work dir; see
:mod:`mmlesion.apis.lens_demo`.

Example::

    python tools/lens_demo.py --work-dir work_dirs/lens_demo
    python tools/lens_demo.py --work-dir /tmp/lens_demo_quick --quick
"""
import argparse
import json
import sys
from dataclasses import fields

import mmlesion  # noqa: F401  (registers components)
from mmlesion.apis.lens_demo import (LENSDemoSettings, mining_markdown,
                                     prepare_work_dir, results_markdown,
                                     run_lens_demo, write_results)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/lens_demo')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an earlier run of this command in --work-dir')
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes (a few slices, 1 iteration per model): '
                   'checks the path, the numbers mean nothing')
    p.add_argument('--eval-split', default='val', choices=['val', 'test'])
    defaults = LENSDemoSettings()
    for f in fields(LENSDemoSettings):
        if f.name == 'max_train_iters':
            continue
        typ = float if isinstance(getattr(defaults, f.name), float) else int
        p.add_argument('--' + f.name.replace('_', '-'), type=typ,
                       default=None,
                       help=f'default {getattr(defaults, f.name)} '
                       '(--quick: smaller)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = LENSDemoSettings.quick() if args.quick else LENSDemoSettings()
    for f in fields(LENSDemoSettings):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(settings, f.name, value)
    try:
        prepare_work_dir(args.work_dir, args.overwrite)
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    results = run_lens_demo(args.work_dir, settings, args.eval_split)
    paths = write_results(results, args.work_dir)
    print(results_markdown(results))
    print(mining_markdown(results['mining']))
    print('FPR:', json.dumps(results['fpr']))
    print('seconds:', json.dumps(results['seconds']))
    print('written:', json.dumps(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
