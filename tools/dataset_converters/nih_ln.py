# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert the NIH lymph-node masks to mmlesion's volume annotation file.

Input (TCIA "CT Lymph Nodes"): ``SCANS/<PatientID>/**/`` one CT DICOM
series per patient, ``MASKS/<PatientID>/<one NIfTI mask>`` (the binary
masks of ``MED_ABD_LYMPH_MASKS.zip``). Each connected component of the
non-zero voxels becomes a box. See
``mmlesion/datasets/converters/segmentation_datasets.py``.

Outputs made from a release replica (``REPLICA.txt`` in the input or
an ancestor) are marked synthetic too: ``REPLICA.txt`` in the export
folder, ``<out>.REPLICA.txt`` beside an annotation file outside the
replica.

Example::

    python tools/dataset_converters/nih_ln.py data/CT_Lymph_Nodes \
        data/MED_ABD_LYMPH_MASKS --out data/nih_ln_volumes.json
"""
import sys
from typing import Optional, Sequence

from mmlesion_cli.converter_args import mask_converter_parser

#: ``(name, help)`` of the positional arguments, in the converter's order.
POSITIONALS = [('scan_root', '<PatientID>/ DICOM folders'),
               ('mask_root', '<PatientID>/ mask folders')]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = mask_converter_parser(
        __doc__, POSITIONALS, labels=None, lesion_type=3,
        window=(-175, 275)).parse_args(argv)
    from mmlesion.datasets.converters.cli import run_mask_converter
    return run_mask_converter(args, 'convert_nih_ln', POSITIONALS)


if __name__ == '__main__':
    sys.exit(main())
