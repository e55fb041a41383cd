# Copyright (c) mmlesion contributors. All rights reserved.
"""Write a synthetic DeepLesion study set: the main job's demo set
(``tools/misc/generate_demo_data.py``, the same options) with the study
options: follow-up studies, single-type sets, real lesion sizes.

Examples::

    python projects/study_demo/tools/generate_study_data.py --out data/demo_lung \
        --lesion-types 5 --unannotated-prob 0
    python projects/study_demo/tools/generate_study_data.py --out data/demo_followups \
        --followup-prob 1 --followup-missing-prob 0.5

See :mod:`projects.study_demo.synthetic.deeplesion`.
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import sys

from projects.study_demo.synthetic.generator_tool import (demo_data_tool,
                                                          shown_defaults)

_DEMO = demo_data_tool()


def parse_args(argv=None) -> argparse.Namespace:
    # StudyDataConfig's defaults, read without importing mmlesion
    config = shown_defaults('StudyDataConfig')
    parser = _DEMO.build_parser(__doc__)
    parser.add_argument(
        '--lesion-types',
        type=int,
        nargs='+',
        help='draw only these DeepLesion coarse types (1 bone, 2 abdomen, '
        '3 mediastinum, 4 liver, 5 lung, 6 kidney, 7 soft tissue, 8 pelvis),'
        ' e.g. "--lesion-types 5 --unannotated-prob 0" for a fully labelled '
        'lung-nodule set (the LENS demo\'s single-type set; default: all '
        'eight)')
    parser.add_argument(
        '--followup-prob',
        type=float,
        default=config['followup_prob'],
        help='probability that a patient\'s second study is a follow-up of '
        'the first (same lesions, grown or shrunk; for LENS\'s '
        'intra-patient lesion matching)')
    parser.add_argument(
        '--followup-missing-prob',
        type=float,
        default=config['followup_missing_prob'],
        help='probability that a lesion annotated in the first study has no '
        'CSV row in its follow-up')
    parser.add_argument(
        '--followup-slice-shift',
        action='store_true',
        default=config['followup_slice_shift'],
        # a flag's False is shown too: the generator's default, written out
        help='a follow-up\'s slices lie off the first study\'s key-slice '
        'positions (by 0.2-0.8 of its slice interval, another interval '
        'than the first study\'s) (default: %(default)s)')
    parser.add_argument(
        '--size-source',
        default=config['size_source'],
        help='lesion sizes: the generator\'s own model (builtin), real '
        'DeepLesion lesions of the same type (deeplesion: needs '
        'DL_info_{val,test}.csv) or their built-in quantile table '
        '(deeplesion_quantiles)')
    parser.add_argument(
        '--size-annotation-dir',
        default=None,
        help='folder of DL_info_{val,test}.csv for --size-source deeplesion '
        '(default: deeplesion/annotations in the shared data folder, '
        '$MMLESION_SHARED_DATA)')
    return parser.parse_args(argv)


def build_generator(args: argparse.Namespace):
    """The generator of the options."""
    from projects.study_demo.synthetic.deeplesion import StudyDemoGenerator
    from projects.study_demo.synthetic.sizes import SIZE_SOURCES
    if args.size_source not in SIZE_SOURCES:
        raise ValueError(f'--size-source {args.size_source!r}: one of '
                         f'{list(SIZE_SOURCES)}')
    return StudyDemoGenerator(
        **_DEMO.generator_settings(args),
        followup_prob=args.followup_prob,
        followup_missing_prob=args.followup_missing_prob,
        followup_slice_shift=args.followup_slice_shift,
        size_source=args.size_source,
        size_annotation_dir=args.size_annotation_dir,
        lesion_types=tuple(args.lesion_types) if args.lesion_types else None)


def main(argv=None) -> int:
    return _DEMO.main(argv, parse_args, build_generator)


if __name__ == '__main__':
    sys.exit(main())
