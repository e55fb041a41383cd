# Copyright (c) mmlesion contributors. All rights reserved.
"""``mmlesion_cli.converter_args``: the converters' options, without torch."""
import subprocess
import sys

from mmlesion_cli.converter_args import (DEFAULT_TEST_FRACTION,
                                         DEFAULT_VAL_FRACTION,
                                         mask_converter_parser)
from mmlesion_cli.converter_defaults import DEFAULT_VAL_FRACTION as DEFAULT

POSITIONALS = [('root', 'the dataset folder')]


def test_mask_converter_parser_defaults():
    parser = mask_converter_parser('Convert a dataset.\n\nMore.',
                                   POSITIONALS, labels=(2, ), lesion_type=4,
                                   window=(-175, 275))
    assert parser.description == 'Convert a dataset.'
    args = parser.parse_args(['data/x', '--out', 'x.json'])
    assert args.root == 'data/x' and args.out == 'x.json'
    assert args.labels == [2] and args.connectivity == 3
    assert args.min_voxels == 1 and args.lesion_type == 4
    assert args.window == [-175, 275]
    assert args.val_fraction == DEFAULT_VAL_FRACTION == DEFAULT == 0.2
    assert args.test_fraction == DEFAULT_TEST_FRACTION == 0.0
    assert not args.check_only and not args.force_ct
    args = parser.parse_args(
        ['d', '--out', 'o.json', '--labels', '1', '2', '--check-only'])
    assert args.labels == [1, 2] and args.check_only


def test_every_label_by_default():
    parser = mask_converter_parser('Doc.', POSITIONALS, labels=None,
                                   lesion_type=-1, window=(-1024, 3071))
    assert parser.parse_args(['d', '--out', 'o.json']).labels is None


def test_importing_the_options_imports_nothing_heavy():
    code = ('import sys, mmlesion_cli.converter_args, '
            'mmlesion_cli.converter_defaults\n'
            "print(' '.join(m for m in ('torch', 'mmdet', 'mmcv', 'mmlesion')"
            ' if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == ''
