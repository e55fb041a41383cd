# Copyright (c) mmlesion contributors. All rights reserved.
"""``mmlesion_cli.converter_args``: the converters' options."""
import inspect

import pytest

from mmlesion.datasets.converters import common, luna16, segmentation_datasets
from mmlesion.datasets.converters.cli import common_kwargs
from mmlesion_cli.converter_args import mask_converter_parser

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
    # not given: None, the library's defaults filled in after parsing
    assert args.val_fraction is None and args.test_fraction is None
    kwargs = common_kwargs(args)
    assert kwargs['val_fraction'] == common.DEFAULT_VAL_FRACTION == 0.2
    assert kwargs['test_fraction'] == common.DEFAULT_TEST_FRACTION == 0.0
    assert not args.check_only and not args.force_ct
    args = parser.parse_args(
        ['d', '--out', 'o.json', '--labels', '1', '2', '--check-only'])
    assert args.labels == [1, 2] and args.check_only
    args = parser.parse_args(['d', '--out', 'o.json', '--val-fraction', '0',
                              '--test-fraction', '0.3'])
    kwargs = common_kwargs(args)
    assert (kwargs['val_fraction'], kwargs['test_fraction']) == (0., .3)


def test_every_label_by_default():
    parser = mask_converter_parser('Doc.', POSITIONALS, labels=None,
                                   lesion_type=-1, window=(-1024, 3071))
    assert parser.parse_args(['d', '--out', 'o.json']).labels is None


@pytest.mark.parametrize('convert', [
    luna16.convert_luna16, segmentation_datasets.convert_kits19,
    segmentation_datasets.convert_lits, segmentation_datasets.convert_nih_ln,
    common.run_conversion
], ids=lambda f: f.__name__)
def test_split_defaults_are_those_of_the_converters(convert):
    """The options default to what the library's converters default to
    when called without them."""
    args = mask_converter_parser('Doc.', POSITIONALS, labels=None,
                                 lesion_type=-1, window=(-1024, 3071)
                                 ).parse_args(['d', '--out', 'o.json'])
    params = inspect.signature(convert).parameters
    kwargs = common_kwargs(args)
    assert params['val_fraction'].default == kwargs['val_fraction']
    assert params['test_fraction'].default == kwargs['test_fraction']
