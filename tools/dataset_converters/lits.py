# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert LiTS to mmlesion's volume annotation file (+ 2D export).

Each connected component of the tumour label (2 by default) of
``segmentation-<N>.nii[.gz]`` becomes a box on ``volume-<N>.nii[.gz]``.
See ``mmlesion/datasets/converters/segmentation_datasets.py``.

Outputs made from a release replica (``REPLICA.txt`` in the input or
an ancestor) are marked synthetic too: ``REPLICA.txt`` in the export
folder, ``<out>.REPLICA.txt`` beside an annotation file outside the
replica.

Example::

    python tools/dataset_converters/lits.py data/LiTS \
        --out data/LiTS/lits_volumes.json --export-2d data/LiTS_2d
"""
import sys
from typing import Optional, Sequence

from mmlesion_cli.converter_args import mask_converter_parser

#: ``(name, help)`` of the positional arguments, in the converter's order.
POSITIONALS = [('root', 'folder (searched recursively) with '
                'volume-N / segmentation-N NIfTI files')]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = mask_converter_parser(
        __doc__, POSITIONALS, labels=(2, ), lesion_type=4,
        window=(-175, 275)).parse_args(argv)
    from mmlesion.datasets.converters.cli import run_mask_converter
    return run_mask_converter(args, 'convert_lits', POSITIONALS)


if __name__ == '__main__':
    sys.exit(main())
