# Copyright (c) mmlesion contributors. All rights reserved.
"""``mmlesion_cli.converter_args``: the converter's options."""
from mmlesion.apps.own_data import common
from mmlesion.apps.own_data.cli import settings_from_args
from mmlesion_cli.converter_args import converter_parser


def test_converter_parser_defaults():
    parser = converter_parser('Convert a dataset.\n\nMore.')
    assert parser.description == 'Convert a dataset.'
    args = parser.parse_args(['data/x', '--out', 'x.json'])
    assert args.scans == 'data/x' and args.out == 'x.json'
    assert args.preset == 'folder' and args.masks is None
    assert args.labels is None and args.connectivity == 3
    assert args.min_voxels == 1 and args.workers == 1
    # not given: None, the preset's filled in; the split: the library's
    assert args.lesion_type is None and args.window is None
    settings = settings_from_args(args)
    assert settings.val_fraction == common.DEFAULT_VAL_FRACTION == 0.2
    assert settings.test_fraction == common.DEFAULT_TEST_FRACTION == 0.0
    assert not args.check_only and not args.force_ct
    args = parser.parse_args(
        ['d', 'm', '--out', 'o.json', '--labels', '1', '2', '--check-only',
         '--val-fraction', '0', '--test-fraction', '0.3'])
    assert args.labels == [1, 2] and args.check_only and args.masks == 'm'
    settings = settings_from_args(args)
    assert (settings.val_fraction, settings.test_fraction) == (0., .3)
    # LUNA16's --annotations is --boxes; an old tool name sets the preset
    args = converter_parser('Doc.', 'luna16').parse_args(
        ['d', '--annotations', 'a.csv', '--out', 'o.json'])
    assert args.boxes == 'a.csv' and args.preset == 'luna16'

