# Copyright (c) mmlesion contributors. All rights reserved.
"""nih_ln: ``convert_dataset.py --preset nih_ln`` (its options and doc)."""
import functools
import os.path as osp
import runpy
import sys

TOOL = osp.join(osp.dirname(osp.abspath(__file__)), 'convert_dataset.py')
main = functools.partial(runpy.run_path(TOOL)['main'], preset='nih_ln')

if __name__ == '__main__':
    sys.exit(main())
