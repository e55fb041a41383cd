# Copyright (c) mmlesion contributors. All rights reserved.
"""Write a miniature synthetic copy of a public release, file for file.

The replica has the exact layout, file names, formats and CSV / JSON headers
of the release as downloaded (filled with phantom CTs and planted lesions),
so the documented real-data commands can be rehearsed without the data.
Its root holds ``REPLICA.txt`` (see
``mmlesion.datasets.replica_marker.find_replica_marker``).

Example::

    python projects/replicas/tools/generate_release_replica.py luna16 --out /tmp/LUNA16
    python tools/dataset_converters/luna16.py /tmp/LUNA16 ...

Datasets: deeplesion, luna16, kits19, lits, nih_ln (see
``projects/replicas/release.py`` and ``data/README.md``).
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

from mmlesion_cli import tool_parser

#: Kept here so that --help does not import mmlesion (and torch).
DATASETS = ('deeplesion', 'luna16', 'kits19', 'lits', 'nih_ln')
SIZES = ('tiny', 'small')


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('dataset', choices=DATASETS,
                        help='which release to replicate')
    parser.add_argument('--out', required=True,
                        help='replica root (created; must be empty or '
                        'absent unless --overwrite)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--size', choices=SIZES, default='small',
                        help='tiny: 2 scans / 4 key slices (CI); small: 4 '
                        'scans / 8 key slices')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a replica previously written there')
    parser.add_argument('--quiet', action='store_true',
                        help='print nothing on success')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from projects.replicas.release import generate_release_replica
    try:
        summary = generate_release_replica(args.dataset, args.out,
                                           seed=args.seed, size=args.size,
                                           overwrite=args.overwrite)
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if not args.quiet:
        print(json.dumps(summary, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
