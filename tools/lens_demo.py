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

from mmlesion_cli import tool_parser


#: ``LENSDemoSettings`` fields given on the command line: type and help
#: (``tests/test_tools/test_lens_demo.py`` checks that every field but
#: ``max_train_iters`` is here). Unset options keep the settings' defaults.
SETTING_OPTIONS = dict(
    num_train=(int, 'training key slices of each of the two demo sets'),
    num_eval=(int, 'key slices of the evaluated split of dataset 0'),
    unannotated_prob=(float, 'probability of an unannotated lesion on a '
                      'key slice of dataset 0'),
    followup_prob=(float, "probability that a patient's second study is a "
                   'follow-up of the first (same lesions)'),
    followup_missing_prob=(float, 'probability that a lesion annotated in '
                           'the first study has no row in the follow-up'),
    epochs=(int, 'epochs of every detector'),
    fpr_epochs=(int, 'epochs of the 3D FPR network'),
    mining_max_offset=(int, 'mined slices (and FPR proposals): within this '
                       'many slices of a key slice'),
    eval_max_offset=(int, 'evaluated slices: within this many slices of a '
                     'key slice'),
    dist_thr=(float, 'delta of the intra-patient lesion matching'),
    seed=(int, 'data and training seed'),
)


def parse_args(argv=None) -> argparse.Namespace:
    p = tool_parser(
        __doc__,
        epilog='Demo sizes left unset take the defaults of '
        'mmlesion.apis.lens_demo.LENSDemoSettings, or with --quick those of '
        'LENSDemoSettings.quick().')
    p.add_argument('--work-dir', default='work_dirs/lens_demo',
                   help='folder for the data, the runs and the results')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an earlier run of this command in --work-dir')
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes (a few slices, 1 iteration per model): '
                   'checks the path, the numbers mean nothing')
    p.add_argument('--eval-split', default='val', choices=['val', 'test'],
                   help='split of dataset 0 the rows are scored on')
    group = p.add_argument_group('demo sizes (LENSDemoSettings)')
    for name, (typ, help_text) in SETTING_OPTIONS.items():
        group.add_argument('--' + name.replace('_', '-'), type=typ,
                           default=None, help=help_text)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis.lens_demo import (LENSDemoSettings, mining_markdown,
                                         prepare_work_dir, results_markdown,
                                         run_lens_demo, write_results)
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
