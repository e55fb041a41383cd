# Copyright (c) mmlesion contributors. All rights reserved.
"""Time ``python <tool> --help`` for every tool under ``tools/``.

Each tool parses its arguments before it imports torch, mmdet or mmlesion
(``--help`` took 9-12 s when every tool imported them first), so
``--help`` should answer in well under 2 s. Every tool runs ``--repeats``
times in a fresh interpreter, one after the other; the table gives the
median and the slowest, and the tools over ``--limit`` are listed.

Example::

    python projects/benchmarks/benchmark_tool_help.py --repeats 3
"""
import os
import statistics
import sys
from pathlib import Path

from mmlesion_cli import tool_parser
from mmlesion_cli.tool_help import find_tool_scripts, run_tool_help


def parse_args(argv=None):
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--repeats', type=int, default=3,
        help='runs of each tool (the first also warms the file cache)')
    parser.add_argument(
        '--limit', type=float, default=2.0,
        help='seconds; tools whose median is above it are listed')
    parser.add_argument(
        '--match', default='',
        help='only the tools whose path contains this text')
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    scripts = [s for s in find_tool_scripts(root) if args.match in str(s)]
    print(f'{len(scripts)} tools, {args.repeats} runs each, one at a time; '
          f'{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}')
    slow, failed = [], []
    for script in scripts:
        name = script.relative_to(root).as_posix()
        times = []
        for _ in range(args.repeats):
            result = run_tool_help(script, root)
            times.append(result.seconds)
            if result.returncode != 0:
                failed.append(name)
                break
        median = statistics.median(times)
        print(f'{median:6.2f} s median {max(times):6.2f} s max  {name}',
              flush=True)
        if median > args.limit:
            slow.append(name)
    print(f'over {args.limit} s: {slow or "none"}; failed: {failed or "none"}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
