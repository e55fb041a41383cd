# Copyright (c) mmlesion contributors. All rights reserved.
"""Write the synthetic demo dataset in the DeepLesion release layout.

Example::

    python tools/misc/generate_demo_data.py --out data/demo_deeplesion
"""
import argparse
import json
import sys
import time

from mmlesion_cli import package_json, tool_parser


def parse_args(argv=None) -> argparse.Namespace:
    # DemoDataConfig's defaults, read without importing mmlesion
    config = package_json(
        'apps/demo/tool_defaults.json')['DemoDataConfig']
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--out', default='data/demo_deeplesion', help='output folder')
    parser.add_argument('--seed', type=int, default=config['seed'],
                        help='random seed')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing dataset previously written by this tool')
    parser.add_argument('--num-train', type=int,
                        default=config['num_train'],
                        help='key slices in the train split')
    parser.add_argument('--num-val', type=int,
                        default=config['num_val'],
                        help='key slices in the val split')
    parser.add_argument('--num-test', type=int,
                        default=config['num_test'],
                        help='key slices in the test split')
    parser.add_argument('--image-size', type=int,
                        default=config['image_size'],
                        help='slice height and width in pixels')
    parser.add_argument(
        '--context-mm',
        type=float,
        default=config['context_mm'],
        help='stored neighbours on each side of a key slice (mm)')
    parser.add_argument(
        '--unannotated-prob',
        type=float,
        default=config['unannotated_prob'],
        help='probability that a key slice also shows a lesion without a '
        'CSV row (0: a fully labelled set, as the LENS demo\'s second set)')
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
    parser.add_argument(
        '--quiet', action='store_true', help='no progress bar or summary')
    return parser.parse_args(argv)


def _build_generator(args: argparse.Namespace):
    """The generator of the options."""
    from mmlesion.apps.demo import DeepLesionDemoGenerator
    from mmlesion.apps.demo.deeplesion_sizes import SIZE_SOURCES
    if args.size_source not in SIZE_SOURCES:
        raise ValueError(f'--size-source {args.size_source!r}: one of '
                         f'{list(SIZE_SOURCES)}')
    return DeepLesionDemoGenerator(
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        image_size=args.image_size,
        context_mm=args.context_mm,
        unannotated_prob=args.unannotated_prob,
        followup_prob=args.followup_prob,
        followup_missing_prob=args.followup_missing_prob,
        followup_slice_shift=args.followup_slice_shift,
        size_source=args.size_source,
        size_annotation_dir=args.size_annotation_dir,
        lesion_types=tuple(args.lesion_types) if args.lesion_types else None)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        gen = _build_generator(args)
    except ValueError as err:  # a setting out of range, named
        print(f'error: {err}', file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        summary = gen.generate(
            args.out, overwrite=args.overwrite, show_progress=not args.quiet)
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if not args.quiet:
        summary['seconds'] = round(time.perf_counter() - start, 1)
        print(json.dumps(summary, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
