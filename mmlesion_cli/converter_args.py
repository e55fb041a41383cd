# Copyright (c) mmlesion contributors. All rights reserved.
"""Options of ``tools/dataset_converters/*.py``.

This module builds parsers; the conversion itself
(:mod:`mmlesion.datasets.converters`, run by
:func:`mmlesion.datasets.converters.cli.run_mask_converter` /
:func:`~mmlesion.datasets.converters.cli.run_cli`) is called by the tool
after the options are parsed::

    args = mask_converter_parser(__doc__, POSITIONALS, ...).parse_args(argv)
    from mmlesion.datasets.converters.cli import run_mask_converter
    return run_mask_converter(args, 'convert_lits', POSITIONALS)

The split options are ``None`` unless given: the library fills in its own
defaults (:data:`~mmlesion.datasets.converters.common.DEFAULT_VAL_FRACTION`,
:data:`~mmlesion.datasets.converters.common.DEFAULT_TEST_FRACTION`, by
:func:`mmlesion.datasets.converters.cli.common_kwargs`), so building the
parser imports nothing of ``mmlesion``.
"""
import argparse
from typing import Optional, Sequence

from .common_args import add_scan_check_arguments
from .parser import tool_parser


def add_common_args(parser: argparse.ArgumentParser,
                    lesion_type: int = -1,
                    window: Sequence[float] = (-1024, 3071)) -> None:
    """Output, overwrite, split, scan-check and 2D-export options."""
    add_scan_check_arguments(parser)
    parser.add_argument(
        '--out', required=True, help='output annotation JSON (scan paths '
        'are written relative to its folder)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace existing outputs (otherwise the run stops)')
    parser.add_argument(
        '--check-only',
        action='store_true',
        help='validate the inputs and print what would be written (volumes '
        'per split, classes, files, existing ones); read no scan, write '
        'nothing')
    parser.add_argument(
        '--val-fraction', type=float,
        help='share of scans in the val split (stable hash of the scan id; '
        'default: the share LENS validates on, DEFAULT_VAL_FRACTION of '
        'mmlesion.datasets.converters.common)')
    parser.add_argument(
        '--test-fraction', type=float,
        help='share of scans in the test split (default: '
        'DEFAULT_TEST_FRACTION of mmlesion.datasets.converters.common)')
    group = parser.add_argument_group('2D export (DeepLesion layout)')
    group.add_argument(
        '--export-2d', metavar='DIR',
        help='also write key slices as Images_png/ + DL_info.csv in DIR')
    group.add_argument(
        '--num-slices', type=int, default=9,
        help='slices the multi-slice loader reads around a key slice')
    group.add_argument(
        '--interval-mm', type=float, default=2.0,
        help='their interval in mm')
    group.add_argument(
        '--key-lesions', choices=['included', 'all'], default='included',
        help='which lesions get key slices and rows (ignored findings '
        'only with "all")')
    group.add_argument(
        '--key-slices', choices=['centre', 'every'], default='centre',
        help='key slices of a lesion: the slice through its centre, or '
        'every slice it crosses (ElixirNet\'s KiTS19 images: every slice '
        'with tumour)')
    group.add_argument(
        '--min-diameter-mm', type=float, default=0.0,
        help='no key slice for lesions smaller than this')
    group.add_argument(
        '--export-unlabeled', action='store_true',
        help='write every slice, also those far from any lesion')
    group.add_argument(
        '--negatives-per-key', type=float, default=1.0,
        help='lesion-free slices drawn per key slice of a volume, listed '
        'with the ignored findings in lens_extra_slices.json (LENS samples '
        'positives : negatives 2 : 1); 0 for none')
    group.add_argument(
        '--lesion-type', type=int, default=lesion_type,
        help='Coarse_lesion_type of the rows (DeepLesion 1..8, -1 unknown)')
    group.add_argument(
        '--window', type=float, nargs=2, default=list(window),
        help='DICOM_windows column (low high HU)')


def add_mask_args(parser: argparse.ArgumentParser,
                  labels: Optional[Sequence[int]]) -> None:
    """Label-map options of the KiTS19 / LiTS / NIH-LN converters."""
    parser.add_argument(
        '--labels', type=int, nargs='+',
        default=None if labels is None else list(labels),
        help='label values that make up the lesions' +
        (' (default: every non-zero voxel)' if labels is None else ''))
    parser.add_argument(
        '--connectivity', type=int, choices=[1, 2, 3], default=3,
        help='3D connectivity of the components (3 = 26-neighbours)')
    parser.add_argument(
        '--min-voxels', type=int, default=1,
        help='drop components smaller than this')


def mask_converter_parser(doc: str,
                          positionals: Sequence[tuple],
                          labels: Optional[Sequence[int]],
                          lesion_type: int,
                          window: Sequence[float]) -> argparse.ArgumentParser:
    """The parser of a label-map converter (KiTS19, LiTS, NIH-LN).

    Args:
        doc (str): the tool's docstring (its first paragraph describes it).
        positionals (sequence[tuple]): ``(name, help)`` of the positional
            arguments, in the order the ``convert_*`` function takes them.
        labels (sequence[int], optional): default lesion labels.
        lesion_type (int): default ``Coarse_lesion_type`` of the 2D export.
        window (sequence[float]): default ``DICOM_windows``.

    Returns:
        argparse.ArgumentParser: the parser (positionals, label-map options,
        :func:`add_common_args`).
    """
    parser = tool_parser(doc)
    for name, help_text in positionals:
        parser.add_argument(name, help=help_text)
    add_mask_args(parser, labels=labels)
    add_common_args(parser, lesion_type=lesion_type, window=window)
    return parser
