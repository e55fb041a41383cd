# Copyright (c) mmlesion contributors. All rights reserved.
"""Options of ``tools/dataset_converters/convert_dataset.py``.

This module builds the parser; the conversion itself
(:mod:`mmlesion.datasets.converters`, run by
:func:`mmlesion.datasets.converters.cli.run_cli`) is called by the tool
after the options are parsed::

    args = converter_parser(__doc__).parse_args(argv)
    from mmlesion.datasets.converters.cli import run_cli
    return run_cli(args)

The split, label, lesion-type and window options are ``None`` unless
given: the library fills in its own defaults (the preset's,
:data:`~mmlesion.datasets.converters.common.DEFAULT_VAL_FRACTION`, ... by
:func:`mmlesion.datasets.converters.cli.settings_from_args`), so building
the parser imports nothing of ``mmlesion``.
"""
import argparse
from typing import Optional

from .common_args import add_scan_check_arguments
from .parser import tool_parser


#: The presets of ``mmlesion.datasets.converters.presets.PRESETS`` (here so
#: that ``--help`` imports nothing of mmlesion; a test keeps them equal).
PRESET_NAMES = ('folder', 'kits19', 'lits', 'nih_ln', 'luna16')


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
    parser = tool_parser(doc)
    parser.add_argument('scans', help='the scan folder (searched '
                        'recursively: NIfTI, MetaImage, NRRD, DICOM series '
                        'folders)')
    parser.add_argument('masks', nargs='?', help='the label-mask folder '
                        '(masks named as their scans, same grid)')
    parser.add_argument('--preset', choices=PRESET_NAMES,
                        default=preset or 'folder',
                        help='a public release\'s layout, labels and '
                        'defaults; folder: any dataset')
    parser.add_argument('--workers', type=int, default=1,
                        help='processes converting scans')
    group = parser.add_argument_group('labels')
    group.add_argument('--boxes', '--annotations', dest='boxes',
                       help='box CSV instead of masks (LUNA16: '
                       'annotations.csv)')
    group.add_argument('--box-format', choices=['world', 'recist', 'voxel'],
                       default='world', help='world: seriesuid,coordX,'
                       'coordY,coordZ,diameter_mm (mm, as LUNA16); recist: '
                       'volume_id,coordX,coordY,coordZ,long_axis_mm,'
                       'short_axis_mm; voxel: volume_id,x1,y1,z1,x2,y2,z2 '
                       '(file voxels, inclusive)')
    group.add_argument('--excluded', help='box CSV of findings that become '
                       'ignored boxes (LUNA16: annotations_excluded.csv)')
    group.add_argument('--seriesuids', help='LUNA16 seriesuids.csv: '
                       'convert exactly these scans')
    group.add_argument('--labels', type=int, nargs='+',
                       help="mask values that make up the lesions (default: "
                       "the preset's; folder: every non-zero voxel)")
    group.add_argument('--instances', action='store_true',
                       help='instance masks: one lesion per value, not per '
                       'connected component')
    group.add_argument('--connectivity', type=int, choices=[1, 2, 3],
                       default=3, help='3D connectivity of the components '
                       '(3 = 26-neighbours)')
    group.add_argument('--min-voxels', type=int, default=1,
                       help='drop components smaller than this')
    group.add_argument('--dataset', default='custom',
                       help='metainfo.dataset (preset folder)')
    group.add_argument('--class-name', default='lesion',
                       help='the class of the boxes (preset folder)')
    group = parser.add_argument_group('patients and split')
    group.add_argument('--patient-regex', help='patient id: the first group '
                       '(or the group "patient") of this regex on the scan '
                       'id (default: one patient per scan)')
    group.add_argument('--patient-from-dicom', action='store_true',
                       help='patient id: the DICOM PatientID')
    group.add_argument('--split-file', help='CSV volume_id,split[,patient_id]'
                       ' (train/val/test; empty split: by patient hash)')
    add_common_args(parser)
    return parser


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Output, overwrite, split, scan-check and 2D-export options."""
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
        help='share of patients in the val split (stable hash of the '
        'patient id; '
        'default: the share LENS validates on, DEFAULT_VAL_FRACTION of '
        'mmlesion.datasets.converters.common)')
    parser.add_argument(
        '--test-fraction', type=float,
        help='share of patients in the test split (default: '
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
        '--lesion-type', type=int,
        help="Coarse_lesion_type of the rows (DeepLesion 1..8, -1 unknown; "
        "default: the preset's)")
    group.add_argument(
        '--window', type=float, nargs=2,
        help="DICOM_windows column (low high HU; default: the preset's)")
