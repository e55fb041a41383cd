# Copyright (c) mmlesion contributors. All rights reserved.
"""Convert a folder of CT scans and labels to mmlesion's volume annotation
file (+ 2D export); the public releases are presets of it.

Scans: NIfTI, MetaImage, NRRD or DICOM series folders under SCANS. Labels:
label masks (semantic, or instance with --instances) named as their scans
under MASKS on the same grid, or a box CSV (--boxes: world millimetres as
LUNA16, RECIST centre + axes, or file voxels; --box-format). The split is
by patient (the patient_id column of --split-file, --patient-regex, the
DICOM PatientID, else a patient shared by the scan names, else one patient
per scan; the rule is printed): never one patient on two sides, and a table
of patients, scans and lesions per split ends the run. Presets
(--preset): kits19, lits, nih_ln, luna16 find the files of those releases
and set their labels, class, lesion type and window (see
``mmlesion/apps/own_data/presets.py`` and ``data/README.md``).

Scans are converted by --workers processes with a progress bar; a killed
run resumes without converting finished scans again (records in
``<out>.parts/``, removed at the end). Outputs made from a release replica
(``REPLICA.txt`` in the input or an ancestor) are marked synthetic too.

Examples::

    python tools/dataset_converters/convert_dataset.py data/mine/images \
        data/mine/labels --out data/mine/volumes.json --workers 4 \
        --patient-regex '^(\\w+)_' --export-2d data/mine_2d
    python tools/dataset_converters/convert_dataset.py --preset kits19 \
        data/kits19/data --out data/kits19/kits19_volumes.json
"""
import sys
from typing import Optional, Sequence

from mmlesion_cli.converter_args import run_converter


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_converter(__doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
