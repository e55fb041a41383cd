# Copyright (c) mmlesion contributors. All rights reserved.
"""What ``tools/dataset_converters/convert_dataset.py`` does with its
options (defined in :mod:`mmlesion_cli.converter_args`)."""
import argparse
import json
import os.path as osp
import sys
from typing import Optional

from mmlesion.datasets.volumes.scan_switches import ScanChecks, switches_given
from mmlesion.utils.reporting.tool_logger import call_logger
from mmlesion.utils.writing.refusals import output_write_refusal

from .check_only import format_plan
from .convert import ConvertSettings, convert_dataset
from .deeplesion_export import DeepLesionExporter
from .presets import PRESETS
from .scan_records import remove_empty_records, resumes_run

#: How a conversion goes on after a refused write.
RESUME = ('run the same command again (it resumes: the scans converted '
          'before are not converted again)')


#: Options passed to :class:`DeepLesionExporter` as they are.
EXPORT_OPTIONS = ('num_slices', 'interval_mm', 'key_lesions',
                  'min_diameter_mm', 'key_slices', 'export_unlabeled',
                  'negatives_per_key')


def build_exporter(args: argparse.Namespace
                   ) -> Optional[DeepLesionExporter]:
    """The 2D exporter the options ask for (None without --export-2d or
    with --check-only). The lesion type and window default to the
    preset's; a resumed run writes into the export it began."""
    if not args.export_2d or args.check_only:
        return None
    preset = PRESETS[args.preset]
    remove_empty_records(args.out)  # of a complete run: not to resume
    return DeepLesionExporter(
        args.export_2d, **{k: getattr(args, k) for k in EXPORT_OPTIONS},
        lesion_type=(preset.lesion_type if args.lesion_type is None else
                     args.lesion_type),
        dicom_window=tuple(preset.window if args.window is None else
                           args.window),
        overwrite=args.overwrite or resumes_run(args.out, args.export_2d))


def settings_from_args(args: argparse.Namespace) -> ConvertSettings:
    """The converter's settings from the options (of the same names); an
    option not given (``None``) takes the library's default."""
    given = {k: getattr(args, k) for k in ConvertSettings.__dataclass_fields__
             if getattr(args, k, None) is not None}
    if 'columns' in given:  # (name, header) pairs of --columns
        given['columns'] = dict(given['columns'])
    return ConvertSettings(**given, out_file=args.out,
                           exporter=build_exporter(args),
                           export_dir=args.export_2d,
                           scan_checks=ScanChecks(**switches_given(args)))


def run_cli(args: argparse.Namespace) -> int:
    """Run a conversion; print a JSON summary, or a one-line error.

    With ``--check-only`` the plan is printed too (:func:`format_plan`).

    A write the file system refuses (full, over quota, read-only) is one
    line too: the file or folder, the space needed and free, and that the
    same command resumes.

    Returns:
        int: exit status (0 ok, 1 for bad input, existing outputs or a
        refused write, also where ``--check-only`` finds outputs a run
        would refuse to replace).
    """
    # The converter logs to mmengine's current logger, on this call's
    # stdout (a logger made earlier in the process may hold a stream closed
    # since, e.g. a test's captured one).
    with call_logger('convert_dataset'):
        try:
            summary = convert_dataset(settings_from_args(args))
        except (FileExistsError, FileNotFoundError, ValueError) as err:
            print(f'error: {err}', file=sys.stderr)
            return 1
        except OSError as err:
            folders = [osp.dirname(osp.abspath(args.out))] + (
                [args.export_2d] if args.export_2d else [])
            refused = next(filter(None, (output_write_refusal(err, folder)
                                         for folder in folders)), None)
            if refused is None:
                raise
            print(f'error: {refused.failure.message(RESUME)}',
                  file=sys.stderr)
            return 1
        if summary.get('check_only'):
            print(format_plan(summary))
        print('summary json: ' + json.dumps(summary))
        return 1 if summary.get('would_refuse') else 0
