# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert KiTS19 to mmlesion's volume annotation file (+ 2D export).

Each connected component of the tumour label (2 by default) of
``case_*/segmentation.nii.gz`` becomes a box on ``case_*/imaging.nii.gz``.
See ``mmlesion/datasets/converters/segmentation_datasets.py``.

Example::

    python tools/dataset_converters/kits19.py data/kits19/data \
        --out data/kits19/kits19_volumes.json --export-2d data/kits19_2d
"""
import sys
from typing import Optional, Sequence

from mmlesion_cli.converter_args import mask_converter_main


def main(argv: Optional[Sequence[str]] = None) -> int:
    return mask_converter_main(
        argv,
        __doc__,
        'convert_kits19', [('root', 'folder with case_XXXXX/ folders')],
        labels=(2, ),
        lesion_type=6,
        window=(-175, 275))


if __name__ == '__main__':
    sys.exit(main())
