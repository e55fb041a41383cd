# Copyright (c) mmlesion contributors. All rights reserved.
"""Options of the dataset converter
(``tools/dataset_converters/convert_dataset.py`` and the presets' tools).

The defaults and choices are the library's (:class:`~mmlesion.datasets.
converters.convert.ConvertSettings`, :class:`~mmlesion.datasets.
converters.deeplesion_export.DeepLesionExporter`, the presets): the data
file those modules read (``apps/own_data/tool_defaults.json``), read
here without importing the library; the lesion type and window are
``None`` unless given: the preset's are filled in by
:func:`mmlesion.apps.own_data.cli.settings_from_args`.
:func:`run_converter` parses and runs a conversion, for every converter
tool.
"""
import argparse
from typing import Optional, Sequence

from .common_args import add_scan_check_arguments
from .package_data import package_json
from .parser import tool_parser


def _shown() -> dict:
    """The converter's defaults and choices (the library's data file)."""
    return package_json('apps/own_data/tool_defaults.json')


def _column(text: str) -> tuple:
    """``NAME=HEADER`` of ``--columns`` as ``(NAME, HEADER)``."""
    name, sep, header = text.partition('=')
    if not (sep and name.strip() and header.strip()):
        raise argparse.ArgumentTypeError(
            f'{text!r} is not NAME=HEADER (e.g. volume_id=case)')
    return name.strip(), header.strip()


def run_converter(doc: str, argv: Optional[Sequence[str]] = None,
                  preset: Optional[str] = None) -> int:
    """Parse the converter's options and run the conversion.

    Args:
        doc (str): the tool's docstring (its help).
        argv (sequence[str], optional): the arguments (default: the
            command line).
        preset (str, optional): the default ``--preset`` (a preset's tool).

    Returns:
        int: the exit status of
        :func:`mmlesion.apps.own_data.cli.run_cli`.
    """
    args = converter_parser(doc, preset).parse_args(argv)
    from mmlesion.apps.own_data.cli import run_cli
    return run_cli(args)


def converter_parser(doc: str, preset: Optional[str] = None
                     ) -> argparse.ArgumentParser:
    """The parser of the dataset converter.

    Args:
        doc (str): the tool's docstring (its first paragraph describes it).
        preset (str, optional): the default ``--preset`` (the old tool
            names are this tool with a preset).

    Returns:
        argparse.ArgumentParser: the parser.
    """
    shown = _shown()
    convert = shown['ConvertSettings']
    parser = tool_parser(doc)
    parser.add_argument('scans', help='the scan folder (searched '
                        'recursively: NIfTI, MetaImage, NRRD, DICOM series '
                        'folders)')
    parser.add_argument('masks', nargs='?', help='the label-mask folder '
                        '(masks named as their scans, same grid)')
    parser.add_argument('--preset', choices=shown['PRESETS'],
                        default=preset or convert['preset'],
                        help='a public release\'s layout, labels and '
                        'defaults; folder: any dataset')
    parser.add_argument('--workers', type=int,
                        default=convert['workers'],
                        help='processes converting scans')
    group = parser.add_argument_group('labels')
    group.add_argument('--boxes', '--annotations', dest='boxes',
                       help='box CSV instead of masks (LUNA16: '
                       'annotations.csv)')
    group.add_argument('--box-format', choices=tuple(shown['BOX_COLUMNS']),
                       default=convert['box_format'],
                       help='world: seriesuid,coordX,'
                       'coordY,coordZ,diameter_mm (mm, as LUNA16); recist: '
                       'volume_id,coordX,coordY,coordZ,long_axis_mm,'
                       'short_axis_mm; voxel: volume_id,x1,y1,z1,x2,y2,z2 '
                       '(file voxels, inclusive)')
    group.add_argument(
        '--columns', nargs='+', metavar='NAME=HEADER', type=_column,
        help="read the box CSV's column HEADER as the layout's NAME (e.g. "
        '--columns volume_id=case patient_id=patient coordX=x_mm '
        'coordY=y_mm coordZ=z_mm); recist also takes patient_id (the '
        'patients of the split), slice_index (the measured slice, 0-based '
        "along the scan file's z axis: the key slice) and "
        'measurement_coordinates (the axes\' end points, world mm: x1 y1 '
        'x2 y2 of the long axis, then of the short one)')
    group.add_argument('--excluded', help='box CSV of findings that become '
                       'ignored boxes (LUNA16: annotations_excluded.csv)')
    group.add_argument('--seriesuids', help='LUNA16 seriesuids.csv: '
                       'convert exactly these scans')
    group.add_argument('--labels', type=int, nargs='+',
                       help="mask values that make up the lesions (default: "
                       "the preset's; folder: every non-zero voxel)")
    group.add_argument('--instances', action='store_true',
                       help='instance masks: one lesion per value, not per '
                       'connected component (without it a component '
                       'holding several values is one lesion, with a '
                       'warning naming them)')
    group.add_argument('--connectivity', type=int, choices=[1, 2, 3],
                       default=convert['connectivity'],
                       help='3D connectivity of the components '
                       '(3 = 26-neighbours)')
    group.add_argument('--min-voxels', type=int,
                       default=convert['min_voxels'],
                       help='drop components smaller than this')
    group.add_argument('--dataset',
                       default=convert['dataset'],
                       help='metainfo.dataset (preset folder)')
    group.add_argument('--class-name',
                       default=convert['class_name'],
                       help='the class of the boxes (preset folder)')
    group = parser.add_argument_group('patients and split')
    group.add_argument('--patient-regex', help='patient id: the first group '
                       '(or the group "patient") of this regex on the scan '
                       'id (default: the DICOM PatientID of a DICOM scan, '
                       'else a patient shared by the scan names, e.g. '
                       'p01_study1 -> p01, else one patient per scan; the '
                       'rule used is printed)')
    group.add_argument('--patient-from-dicom', action='store_true',
                       help='patient id: the DICOM PatientID, required of '
                       'every scan')
    group.add_argument('--split-file', help='CSV volume_id,split[,patient_id]'
                       ' (train/val/test; empty split: by patient hash)')
    add_common_args(parser, shown)
    return parser


def add_common_args(parser: argparse.ArgumentParser, shown: dict) -> None:
    """Output, overwrite, split, scan-check and 2D-export options.

    Args:
        parser (argparse.ArgumentParser): the converter's parser.
        shown (dict): the converter's defaults and choices (:func:`_shown`).
    """
    export = shown['DeepLesionExporter']
    add_scan_check_arguments(parser)
    parser.add_argument(
        '--out', required=True, help='output annotation JSON (scan paths '
        'are written relative to its folder)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace existing outputs (otherwise the run stops; a killed '
        'run resumes with the same command, without --overwrite)')
    parser.add_argument(
        '--check-only',
        action='store_true',
        help='validate the inputs and print what would be written (volumes '
        'per split, classes, files, existing ones); read no scan, write '
        'nothing')
    parser.add_argument(
        '--val-fraction', type=float,
        default=shown['DEFAULT_VAL_FRACTION'],
        help='share of patients in the val split (stable hash of the '
        'patient id; a split it leaves empty gets the nearest patient; the '
        'default is the share LENS validates on)')
    parser.add_argument(
        '--test-fraction', type=float,
        default=shown['DEFAULT_TEST_FRACTION'],
        help='share of patients in the test split')
    group = parser.add_argument_group('2D export (DeepLesion layout)')
    group.add_argument(
        '--export-2d', metavar='DIR',
        help='also write key slices as Images_png/ + DL_info.csv in DIR')
    group.add_argument(
        '--num-slices', type=int,
        default=export['num_slices'],
        help='slices the multi-slice loader reads around a key slice')
    group.add_argument(
        '--interval-mm', type=float,
        default=export['interval_mm'],
        help='their interval in mm')
    group.add_argument(
        '--key-lesions', choices=shown['KEY_LESIONS'],
        default=export['key_lesions'],
        help='which lesions get key slices and rows (ignored findings '
        'only with "all")')
    group.add_argument(
        '--key-slices', choices=shown['KEY_SLICES'],
        default=export['key_slices'],
        help='key slices of a lesion: the slice through its centre, '
        'every slice it crosses (ElixirNet\'s KiTS19 images: every slice '
        'with tumour), or every slice in the training split and the centre '
        'one in val and test (more training images, the evaluation one key '
        'slice a lesion)')
    group.add_argument(
        '--min-diameter-mm', type=float,
        default=export['min_diameter_mm'],
        help='no key slice for lesions smaller than this')
    group.add_argument(
        '--export-unlabeled', action='store_true',
        help='write every slice, also those far from any lesion')
    group.add_argument(
        '--negatives-per-key', type=float,
        default=export['negatives_per_key'],
        help='lesion-free slices drawn per key slice of a volume, listed '
        'with the ignored findings in lens_extra_slices.json (LENS samples '
        'positives : negatives 2 : 1); 0 for none')
    group.add_argument(
        '--lesion-type', type=int,
        help="Coarse_lesion_type of the rows (DeepLesion 1..8, -1 unknown; "
        "default: the preset's)")
    group.add_argument(
        '--window', type=float, nargs=2,
        help="DICOM_windows column (low high HU; default: the preset's)")
