# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert KiTS19 to mmlesion's volume annotation file (+ 2D export).

Each connected component of the tumour label (2 by default) of
``case_*/segmentation.nii.gz`` becomes a box on ``case_*/imaging.nii.gz``.
See ``mmlesion/datasets/converters/segmentation_datasets.py``.

Outputs made from a release replica (``REPLICA.txt`` in the input or
an ancestor) are marked synthetic too: ``REPLICA.txt`` in the export
folder, ``<out>.REPLICA.txt`` beside an annotation file outside the
replica.

Example::

    python tools/dataset_converters/kits19.py data/kits19/data \
        --out data/kits19/kits19_volumes.json --export-2d data/kits19_2d
"""
import sys
from typing import Optional, Sequence

from mmlesion_cli.converter_args import mask_converter_parser

#: ``(name, help)`` of the positional arguments, in the converter's order.
POSITIONALS = [('root', 'folder with case_XXXXX/ folders')]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = mask_converter_parser(
        __doc__, POSITIONALS, labels=(2, ), lesion_type=6,
        window=(-175, 275)).parse_args(argv)
    from mmlesion.datasets.converters.cli import run_mask_converter
    return run_mask_converter(args, 'convert_kits19', POSITIONALS)


if __name__ == '__main__':
    sys.exit(main())
