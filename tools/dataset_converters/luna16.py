# Copyright (c) mmlesion contributors. All rights reserved.
"""luna16: ``convert_dataset.py --preset luna16`` (its options and doc)."""
import functools
import os.path as osp
import runpy
import sys

TOOL = osp.join(osp.dirname(osp.abspath(__file__)), 'convert_dataset.py')
main = functools.partial(runpy.run_path(TOOL)['main'], preset='luna16')

if __name__ == '__main__':
    sys.exit(main())
