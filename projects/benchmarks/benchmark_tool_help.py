# Copyright (c) mmlesion contributors. All rights reserved.
"""Time ``python <tool> --help`` for every tool under ``tools/``, against
mmdet's own ``tools/train.py --help``.

The tools that answer before torch is imported (a switch imports its
environment variable when it is given; ``tools/reproduce.py``'s tables and
the settings' defaults and choices, as ``tools/infer_volume.py``, the
dataset converters and the demo generators show them, are data files read
as data) are listed in ``tests/test_tools/test_tool_help.py``. Every tool
runs ``--repeats`` times in a fresh interpreter, one after the
other, and so does mmdet's ``train.py`` first (the reference); the table
gives the median and the slowest, and the tools over ``--limit`` (default:
the reference's median) are listed.

Example::

    python projects/benchmarks/benchmark_tool_help.py --repeats 3
    python projects/benchmarks/benchmark_tool_help.py --repeats 5 \
        --match tools/train.py tools/test.py tools/infer_volume.py
"""
import os
import statistics
import sys
from pathlib import Path

from mmlesion_cli import tool_parser

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
from projects.benchmarks.tool_help import (  # noqa: E402
    find_tool_scripts, run_tool_help)


def parse_args(argv=None):
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--repeats', type=int, default=3,
        help='runs of each tool (the first also warms the file cache)')
    parser.add_argument(
        '--limit', type=float,
        help="seconds; tools whose median is above it are listed (default: "
        "the median of mmdet's tools/train.py --help)")
    parser.add_argument(
        '--match', nargs='+',
        help='only the tools whose path contains one of these texts '
        '(default: every tool)')
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    scripts = [s for s in find_tool_scripts(root) 
               if any(m in str(s) for m in args.match or [''])]
    print(f'{len(scripts)} tools, {args.repeats} runs each, one at a time; '
          f'{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}')
    import mmdet
    reference = Path(mmdet.__file__).parent / '.mim' / 'tools' / 'train.py'
    limit = args.limit
    slow, failed = [], []
    for script in [reference, *scripts]:
        name = ("mmdet's tools/train.py" if script == reference else
                script.relative_to(root).as_posix())
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
        if limit is None:
            limit = median
        elif median > limit:
            slow.append(name)
    print(f'over {limit:.2f} s: {slow or "none"}; failed: {failed or "none"}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
