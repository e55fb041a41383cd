# Copyright (c) mmlesion contributors. All rights reserved.
"""What ``tools/dataset_converters/*.py`` do with their options.

The options themselves are defined in :mod:`mmlesion_cli.converter_args`
(importable without torch, for a fast ``--help``); a tool parses them
first and then calls :func:`run_cli` or :func:`run_mask_converter` with
the parsed namespace (the tool joins the two packages: neither imports the
other).
"""
import argparse
import json
import sys
from typing import Callable, Optional, Sequence

from .check_only import format_plan
from .common import DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION
from .deeplesion_export import DeepLesionExporter


def build_exporter(args: argparse.Namespace
                   ) -> Optional[DeepLesionExporter]:
    """The 2D exporter the options ask for (None without --export-2d or
    with --check-only)."""
    if not args.export_2d or getattr(args, 'check_only', False):
        return None
    return DeepLesionExporter(
        args.export_2d,
        num_slices=args.num_slices,
        interval_mm=args.interval_mm,
        key_lesions=args.key_lesions,
        min_diameter_mm=args.min_diameter_mm,
        key_slices=getattr(args, 'key_slices', 'centre'),
        export_unlabeled=args.export_unlabeled,
        negatives_per_key=args.negatives_per_key,
        lesion_type=args.lesion_type,
        dicom_window=tuple(args.window),
        overwrite=args.overwrite)


def common_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of the ``convert_*`` functions from the options.

    A split option not given (``None``) takes the converters' default,
    :data:`~.common.DEFAULT_VAL_FRACTION` /
    :data:`~.common.DEFAULT_TEST_FRACTION`.
    """
    kwargs = dict(
        exporter=build_exporter(args),
        val_fraction=(DEFAULT_VAL_FRACTION if args.val_fraction is None else
                      args.val_fraction),
        test_fraction=(DEFAULT_TEST_FRACTION if args.test_fraction is None
                       else args.test_fraction),
        overwrite=args.overwrite,
        show_progress=True)
    if getattr(args, 'check_only', False):
        kwargs.update(check_only=True, export_dir=args.export_2d)
    return kwargs


def run_cli(convert: Callable[[argparse.Namespace], dict],
            args: argparse.Namespace) -> int:
    """Run a conversion; print a JSON summary, or a one-line error.

    With ``--check-only`` the plan is printed too (:func:`format_plan`).

    Returns:
        int: exit status (0 ok, 1 for bad input or existing outputs, also
        where ``--check-only`` finds outputs a run would refuse to replace).
    """
    try:
        summary = convert(args)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if summary.get('check_only'):
        print(format_plan(summary))
    print('summary json: ' + json.dumps(summary))
    return 1 if summary.get('would_refuse') else 0


def run_mask_converter(args: argparse.Namespace, convert: str,
                       positionals: Sequence[tuple]) -> int:
    """Run a label-map converter (KiTS19, LiTS, NIH-LN) on parsed options.

    The second half of such a tool, after
    :func:`mmlesion_cli.converter_args.mask_converter_parser`.

    Args:
        args (argparse.Namespace): the parsed options.
        convert (str): name of the ``convert_*`` function of
            :mod:`mmlesion.datasets.converters`, called as
            ``convert(*positionals, out_file, labels=..., connectivity=...,
            min_voxels=..., **common)``.
        positionals (sequence[tuple]): ``(name, help)`` of the positional
            arguments, in the order ``convert`` takes them.

    Returns:
        int: exit status (see :func:`run_cli`).
    """
    from mmlesion.datasets import converters
    convert_fn = getattr(converters, convert)
    return run_cli(
        lambda a: convert_fn(
            *[getattr(a, name) for name, _ in positionals], a.out,
            labels=a.labels, connectivity=a.connectivity,
            min_voxels=a.min_voxels, **common_kwargs(a)), args)
