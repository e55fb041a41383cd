# Copyright (c) mmlesion contributors. All rights reserved.
"""lits: ``convert_dataset.py --preset lits`` (its options and doc)."""
import functools
import os.path as osp
import runpy
import sys

TOOL = osp.join(osp.dirname(osp.abspath(__file__)), 'convert_dataset.py')
main = functools.partial(runpy.run_path(TOOL)['main'], preset='lits')

if __name__ == '__main__':
    sys.exit(main())
