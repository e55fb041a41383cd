# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert the LUNA16 release (lung nodules, box CSVs) into a volume annotation
file (+ 2D export).

The dataset converter ``tools/dataset_converters/convert_dataset.py`` with
``--preset luna16`` (the options are the same; its ``--help`` says how
scans, labels and the split are read).

Example::

    python tools/dataset_converters/luna16.py data/LUNA16 \\
        --annotations data/LUNA16/annotations.csv \\
        --excluded data/LUNA16/annotations_excluded.csv \\
        --seriesuids data/LUNA16/seriesuids.csv \\
        --out data/LUNA16/annotations/luna16.json
"""
import functools
import sys

from mmlesion_cli.converter_args import run_converter

main = functools.partial(run_converter, __doc__, preset='luna16')

if __name__ == '__main__':
    sys.exit(main())
