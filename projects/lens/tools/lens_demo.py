# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS's five steps (Yan et al., TMI 2020, Sec. III) on synthetic data, on
CPU, with a table of each step's effect on the 3D protocol (docs/protocols.md
§2: 3D IoBB >= 0.3, sensitivity at 1/8..8 FPs per sub-volume).

Generates a partially labelled and a fully labelled demo set, trains the
baseline, (a) AFP, (b)/(c) multi-dataset LENS, mines missing annotations,
retrains (d), trains the 3D FPR (e), and scores every row against the
complete 3D truth of the generator (unannotated lesions included). Writes
``lens_demo.{json,md,png}`` and ``lens_demo.log`` into the work dir; see
:mod:`projects.lens.lens_demo`.

With ``--seeds``, the rows run as a study on the shared study runner
(:mod:`projects.lens.lens_study`): every row (``--rows``, default all) for
every training seed, resumable (a row/seed with a ``result.json`` is not run
again; the data are generated once into ``<work-dir>/data``, ``--seed``
being the data seed), mean ± std per row, each step's effect paired by seed
(``lens_study_effects.md``) and one FROC picture with every row.

Example::

    python projects/lens/tools/lens_demo.py --work-dir work_dirs/lens_demo
    python projects/lens/tools/lens_demo.py --work-dir /tmp/lens_demo_quick --quick
    python projects/lens/tools/lens_demo.py --work-dir work_dirs/lens_study \
        --seeds 0 1 2 --num-train 80 --epochs 6
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import json
import sys
from dataclasses import fields

from typing import TYPE_CHECKING

from mmlesion_cli import tool_parser
from projects.study_demo.study_args import add_jobs_argument

if TYPE_CHECKING:
    from projects.lens.lens_demo import LENSDemoSettings


#: ``LENSDemoSettings`` fields given on the command line: type and help
#: (``tests/test_tools/test_lens_demo.py`` checks that every field but
#: ``max_train_iters`` is here). Unset options keep the settings' defaults.
#: the study's rows (``--rows``), as in projects.lens.lens_study.STUDY_ROWS
STUDY_ROW_NAMES = ('baseline', 'a', 'b', 'c', 'd', 'e', 'd_no_uncertain')
SETTING_OPTIONS = dict(
    num_train=(int, 'training key slices of each of the two demo sets'),
    num_eval=(int, 'key slices of the evaluated split of dataset 0'),
    unannotated_prob=(float, 'probability of an unannotated lesion on a '
                      'key slice of dataset 0'),
    followup_prob=(float, "probability that a patient's second study is a "
                   'follow-up of the first (same lesions)'),
    followup_missing_prob=(float, 'probability that a lesion annotated in '
                           'the first study has no row in the follow-up'),
    multi_study_prob=(float, 'probability that a patient has more than one '
                      'study'),
    num_studies=(int, 'studies of a patient with more than one (each after '
                 'the first a follow-up with --followup-prob)'),
    epochs=(int, 'epochs of every detector'),
    fpr_epochs=(int, 'epochs of the 3D FPR network'),
    mining_max_offset=(int, 'mined slices (and FPR proposals): within this '
                       'many slices of a key slice'),
    eval_max_offset=(int, 'evaluated slices: within this many slices of a '
                     'key slice'),
    dist_thr=(float, 'delta of the intra-patient lesion matching (default: '
              'calibrated on the (c) model)'),
    min_match_precision=(float, 'pair precision the calibrated delta must '
                         'reach'),
    match_score_thr=(float, 'minimum tracklet score of an intra-patient '
                     'match (0: every tracklet, as the paper writes)'),
    seed=(int, 'data and training seed'),
)


def parse_args(argv=None) -> argparse.Namespace:
    p = tool_parser(
        __doc__,
        epilog='Demo sizes left unset take the defaults of '
        'projects.lens.lens_demo.LENSDemoSettings, or with --quick those of '
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
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help='run the rows as a study: every row for each of '
                   'these training seeds (resumable; --seed is then the '
                   'data seed)')
    # listed here so that --help needs no import; the test checks that they
    # are projects.lens.lens_study.STUDY_ROWS
    p.add_argument('--rows', nargs='+', default=None,
                   choices=list(STUDY_ROW_NAMES),
                   help='study rows to run (default all; a row needs its '
                   'source row: c, d need b, e needs d; d_no_uncertain, an '
                   'ablation of d without the uncertain boxes, needs b)')
    p.add_argument('--keep-going', action='store_true',
                   help='study: report a failing row/seed as not run and '
                   'go on')
    add_jobs_argument(p)
    group = p.add_argument_group('demo sizes (LENSDemoSettings)')
    for name, (typ, help_text) in SETTING_OPTIONS.items():
        group.add_argument('--' + name.replace('_', '-'), type=typ,
                           default=None, help=help_text)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    from projects.lens.lens_demo import (LENSDemoSettings, mining_markdown,
                                         prepare_work_dir, results_markdown,
                                         run_lens_demo, write_results)
    settings = LENSDemoSettings.quick() if args.quick else LENSDemoSettings()
    for f in fields(LENSDemoSettings):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(settings, f.name, value)
    if args.seeds is not None:
        return run_study_mode(args, settings, argv)
    if args.rows is not None:
        print('error: --rows needs --seeds (study mode)', file=sys.stderr)
        return 2
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


def run_study_mode(args: argparse.Namespace, settings: 'LENSDemoSettings',
                   argv=None) -> int:
    """The rows as a study (``--seeds``): run (``--jobs``: the seeds in
    parallel processes, the data made first), report, print."""
    import os

    from projects.lens.lens_study import LENSStudy, write_effects
    from projects.study_demo.study import maybe_run_seed_jobs, write_study_report
    os.makedirs(args.work_dir, exist_ok=True)
    study = LENSStudy(args.work_dir, settings, args.eval_split)
    study.data  # noqa: B018  (generated once, before any --jobs child)
    maybe_run_seed_jobs(args, argv, __file__, args.seeds)
    result = study.run(args.seeds, args.rows, args.keep_going)
    from projects.study_demo.study import StudyStep
    from projects.lens.lens_study import STEPS
    paths = write_study_report(result, name='lens_study',
                               extra=dict(demo_settings=vars(settings)),
                               steps=[StudyStep(*s) for s in STEPS],
                               effect_metric='average',
                               test_set=study.test_set())
    paths.append(write_effects(result))
    for path in paths:
        if path.endswith('.md'):
            with open(path) as f:
                print(f.read())
    print('written:', json.dumps(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
