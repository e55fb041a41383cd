# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert the KiTS19 release (kidney tumours) into a volume annotation file (+
2D export).

The dataset converter ``tools/dataset_converters/convert_dataset.py`` with
``--preset kits19`` (the options are the same; its ``--help`` says how
scans, labels and the split are read).

Example::

    python tools/dataset_converters/kits19.py data/kits19/data \\
        --out data/kits19/kits19.json
"""
import functools
import sys

from mmlesion_cli.converter_args import run_converter

main = functools.partial(run_converter, __doc__, preset='kits19')

if __name__ == '__main__':
    sys.exit(main())
