# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert the NIH CT Lymph Nodes release into a volume annotation file (+ 2D
export).

The dataset converter ``tools/dataset_converters/convert_dataset.py`` with
``--preset nih_ln`` (the options are the same; its ``--help`` says how
scans, labels and the split are read).

Example::

    python tools/dataset_converters/nih_ln.py SCANS MASKS --out data/nih_ln.json
"""
import functools
import sys

from mmlesion_cli.converter_args import run_converter

main = functools.partial(run_converter, __doc__, preset='nih_ln')

if __name__ == '__main__':
    sys.exit(main())
