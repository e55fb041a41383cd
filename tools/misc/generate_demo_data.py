# Copyright (c) mmlesion contributors. All rights reserved.
"""Write the synthetic demo dataset in the DeepLesion release layout (the
main job's data, ``tools/run_demo.py``).

Example::

    python tools/misc/generate_demo_data.py --out data/demo_deeplesion

Follow-up studies, single-type sets and real lesion sizes:
``projects/study_demo/tools/generate_study_data.py`` of a clone.
"""
import argparse
import json
import sys
import time

from mmlesion_cli import package_json, tool_parser


def build_parser(description: str = __doc__) -> argparse.ArgumentParser:
    """The options of the main job's demo set (``DemoDataConfig``)."""
    # DemoDataConfig's defaults, read without importing mmlesion
    config = package_json(
        'apps/demo/tool_defaults.json')['DemoDataConfig']
    parser = tool_parser(description)
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
        '--quiet', action='store_true', help='no progress bar or summary')
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def generator_settings(args: argparse.Namespace) -> dict:
    """The ``DemoDataConfig`` fields the options set."""
    return dict(seed=args.seed, num_train=args.num_train,
                num_val=args.num_val, num_test=args.num_test,
                image_size=args.image_size, context_mm=args.context_mm,
                unannotated_prob=args.unannotated_prob)


def build_generator(args: argparse.Namespace):
    """The generator of the options."""
    from mmlesion.apps.demo import DeepLesionDemoGenerator
    return DeepLesionDemoGenerator(**generator_settings(args))


def main(argv=None, parse=parse_args, build=build_generator) -> int:
    """Parse ``argv`` with ``parse``, build the generator with ``build``
    and write the data set; the exit code."""
    args = parse(argv)
    try:
        gen = build(args)
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
