# Copyright (c) mmlesion contributors. All rights reserved.
"""What ``tools/dataset_converters/*.py`` do with their options.

The options themselves are defined in :mod:`mmlesion_cli.converter_args`
(importable without torch, for a fast ``--help``).
"""
import argparse
import json
import sys
from typing import Callable, Optional

from mmlesion_cli.converter_args import (  # noqa: F401  (re-exported)
    add_common_args, add_mask_args, mask_converter_main)

from .check_only import format_plan
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
        export_unlabeled=args.export_unlabeled,
        negatives_per_key=args.negatives_per_key,
        lesion_type=args.lesion_type,
        dicom_window=tuple(args.window),
        overwrite=args.overwrite)


def common_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of the ``convert_*`` functions from the options."""
    kwargs = dict(
        exporter=build_exporter(args),
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
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
