# Copyright (c) mmlesion contributors. All rights reserved.
"""KiTS19, LiTS and NIH lymph nodes: label maps -> 3D lesion boxes.

Each connected component of the lesion labels (``scipy.ndimage.label``,
26-connectivity by default) becomes one box (see
:func:`~mmlesion.datasets.converters.mask_boxes.mask_to_boxes_3d`).

Supported inputs, as released:

- **KiTS19** (Heller et al. 2019, github.com/neheller/kits19)::

      data/case_00000/imaging.nii.gz        the CT
      data/case_00000/segmentation.nii.gz   0 background, 1 kidney, 2 tumour

  Cases without ``segmentation.nii.gz`` (the challenge test set,
  case_00210 ...) are skipped and counted in the log.
- **LiTS** (Bilic et al. 2019), the two training batches::

      <root>/**/volume-<N>.nii[.gz]         the CT
      <root>/**/segmentation-<N>.nii[.gz]   0 background, 1 liver, 2 tumour

- **NIH lymph nodes** (Roth et al. 2014, TCIA "CT Lymph Nodes"): the CT
  DICOM series as TCIA downloads them and the binary node masks of
  ``MED_ABD_LYMPH_MASKS.zip``::

      <scans>/<PatientID>/**/<one CT series>/*.dcm   e.g. ABD_LYMPH_001
      <masks>/<PatientID>/<one NIfTI mask>           e.g. ABD_LYMPH_001/
                                                     ABD_LYMPH_001_mask.nii.gz

  Every non-zero voxel is a node voxel (touching nodes are one box). The
  centre-point text files of the release are not supported: they carry no
  extent.

The lesion labels and the connectivity are arguments (``--labels``,
``--connectivity``, ``--min-voxels`` of the CLIs). The class name follows
the labels (:func:`lesion_class_name`): LiTS with the default label 2 is
``'liver tumour'``, with ``--labels 1 2`` ``'liver + liver tumour'``.
"""
import glob
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

from mmengine.logging import print_log

from ..volumes import list_dicom_series
from .common import (DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION,
                     convert_mask_case, run_conversion)
from .check_only import plan_conversion
from .deeplesion_export import DeepLesionExporter

#: What each label value of the released label maps is (KiTS19, LiTS).
LABEL_NAMES: Dict[str, Dict[int, str]] = {
    'kits19': {
        1: 'kidney',
        2: 'kidney tumour'
    },
    'lits': {
        1: 'liver',
        2: 'liver tumour'
    },
}
#: The one class of a binary-mask dataset, whatever the labels.
BINARY_CLASS = {'nih_ln': 'lymph node'}


def lesion_class_name(dataset: str, labels: Optional[Sequence[int]]) -> str:
    """The class name of the boxes made from ``labels``.

    The names of the labels joined with ``' + '`` (the components of all of
    them form one class), e.g. LiTS ``(2,)`` -> ``'liver tumour'``, ``(1,
    2)`` -> ``'liver + liver tumour'``.

    Args:
        dataset (str): ``'kits19'``, ``'lits'`` or ``'nih_ln'``.
        labels (Sequence[int], optional): the lesion labels (None: every
            non-zero voxel, i.e. every label).

    Returns:
        str: the class name.

    Raises:
        ValueError: a label the dataset's label maps do not have.
    """
    if dataset in BINARY_CLASS:
        return BINARY_CLASS[dataset]
    names = LABEL_NAMES[dataset]
    if labels is None:  # every non-zero voxel
        labels = list(names)
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise ValueError(f"{dataset}: field 'labels': {unknown} not in the "
                         f'label maps ({names})')
    return ' + '.join(names[label] for label in sorted(set(labels)))


def _run(cases, out_file, dataset, labels, connectivity, min_voxels,
         exporter, val_fraction, test_fraction, overwrite, show_progress,
         check_only=False, export_dir=None, sources=()):
    classes = [lesion_class_name(dataset, labels)]
    if check_only:
        return plan_conversion([case[0] for case in cases], out_file,
                               dataset, classes, export_dir, val_fraction,
                               test_fraction, overwrite)

    def convert(case):
        case_id, image, mask = case
        return convert_mask_case(image, mask, out_file, case_id, labels,
                                 connectivity, min_voxels)

    return run_conversion(
        cases,
        convert,
        out_file,
        dataset,
        classes,
        exporter=exporter,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        overwrite=overwrite,
        show_progress=show_progress,
        sources=sources,
        lesion_labels=None if labels is None else list(labels),
        connectivity=connectivity,
        min_voxels=min_voxels)


def find_kits19_cases(root: str) -> List[tuple]:
    """``(case_id, imaging, segmentation)`` of every annotated case."""
    cases, unlabeled = [], 0
    for folder in sorted(glob.glob(osp.join(root, 'case_*'))):
        image = osp.join(folder, 'imaging.nii.gz')
        seg = osp.join(folder, 'segmentation.nii.gz')
        if not osp.isfile(seg):
            unlabeled += 1
            continue
        if not osp.isfile(image):
            raise FileNotFoundError(f'{seg}: its scan {image} is missing')
        cases.append((osp.basename(folder), image, seg))
    if unlabeled:
        print_log(f'KiTS19: {unlabeled} cases without segmentation.nii.gz '
                  f'under {root} skipped (test set)', logger='current')
    if not cases:
        raise FileNotFoundError(f'no KiTS19 case_*/segmentation.nii.gz '
                                f'under {root}')
    return cases


def find_lits_cases(root: str) -> List[tuple]:
    """``(volume-N, volume path, segmentation path)`` of every LiTS case."""
    cases = []
    segs = glob.glob(
        osp.join(root, '**', 'segmentation-*.nii*'), recursive=True)
    for seg in sorted(segs, key=lambda p: int(
            re.search(r'segmentation-(\d+)', p).group(1))):
        m = re.match(r'segmentation-(\d+)(\.nii(\.gz)?)$', osp.basename(seg))
        if m is None:
            continue
        n = m.group(1)
        images = [
            osp.join(osp.dirname(seg), f'volume-{n}{ext}')
            for ext in ('.nii', '.nii.gz')
        ]
        image = next((p for p in images if osp.isfile(p)), None)
        if image is None:
            raise FileNotFoundError(f'{seg}: its scan volume-{n}.nii[.gz] '
                                    f'is missing in {osp.dirname(seg)}')
        cases.append((f'volume-{n}', image, seg))
    if not cases:
        raise FileNotFoundError(f'no LiTS segmentation-<N>.nii[.gz] under '
                                f'{root}')
    return cases


def find_nih_ln_cases(scan_root: str, mask_root: str) -> List[tuple]:
    """``(PatientID, CT series folder, mask)`` for every patient mask."""
    cases = []
    for folder in sorted(glob.glob(osp.join(mask_root, '*'))):
        if not osp.isdir(folder):
            continue
        patient = osp.basename(folder)
        masks = sorted(glob.glob(osp.join(folder, '*.nii*')))
        if len(masks) != 1:
            raise ValueError(f'{folder}: expected one NIfTI mask, found '
                             f'{len(masks)} ({masks})')
        series = []
        for dirpath, _, files in os.walk(osp.join(scan_root, patient)):
            if files:
                series += [(dirpath, uid)
                           for uid in list_dicom_series(dirpath)]
        if len(series) != 1:
            raise ValueError(
                f'{osp.join(scan_root, patient)}: expected one DICOM series '
                f'for {patient}, found {len(series)}: {series}')
        cases.append((patient, series[0][0], masks[0]))
    if not cases:
        raise FileNotFoundError(f'no <PatientID>/ mask folders under '
                                f'{mask_root}')
    return cases


def convert_kits19(root: str,
                   out_file: str,
                   labels: Sequence[int] = (2, ),
                   connectivity: int = 3,
                   min_voxels: int = 1,
                   exporter: Optional[DeepLesionExporter] = None,
                   val_fraction: float = DEFAULT_VAL_FRACTION,
                   test_fraction: float = DEFAULT_TEST_FRACTION,
                   overwrite: bool = False,
                   show_progress: bool = True,
                   check_only: bool = False,
                   export_dir: Optional[str] = None) -> dict:
    """Convert KiTS19 (tumour label 2 by default) to the annotation file.

    With ``check_only``, only find the cases and return the plan
    (:func:`~.check_only.plan_conversion`; ``export_dir`` is the planned
    2D export). The same for LiTS and NIH-LN below.
    """
    return _run(find_kits19_cases(root), out_file, 'kits19', labels,
                connectivity, min_voxels, exporter, val_fraction,
                test_fraction, overwrite, show_progress, check_only,
                export_dir, (root, ))


def convert_lits(root: str,
                 out_file: str,
                 labels: Sequence[int] = (2, ),
                 connectivity: int = 3,
                 min_voxels: int = 1,
                 exporter: Optional[DeepLesionExporter] = None,
                 val_fraction: float = DEFAULT_VAL_FRACTION,
                 test_fraction: float = DEFAULT_TEST_FRACTION,
                 overwrite: bool = False,
                 show_progress: bool = True,
                 check_only: bool = False,
                 export_dir: Optional[str] = None) -> dict:
    """Convert LiTS (tumour label 2 by default) to the annotation file."""
    return _run(find_lits_cases(root), out_file, 'lits', labels,
                connectivity, min_voxels, exporter, val_fraction,
                test_fraction, overwrite, show_progress, check_only,
                export_dir, (root, ))


def convert_nih_ln(scan_root: str,
                   mask_root: str,
                   out_file: str,
                   labels: Optional[Sequence[int]] = None,
                   connectivity: int = 3,
                   min_voxels: int = 1,
                   exporter: Optional[DeepLesionExporter] = None,
                   val_fraction: float = DEFAULT_VAL_FRACTION,
                   test_fraction: float = DEFAULT_TEST_FRACTION,
                   overwrite: bool = False,
                   show_progress: bool = True,
                   check_only: bool = False,
                   export_dir: Optional[str] = None) -> dict:
    """Convert the NIH lymph-node masks (non-zero voxels by default)."""
    return _run(find_nih_ln_cases(scan_root, mask_root), out_file, 'nih_ln',
                labels, connectivity, min_voxels, exporter, val_fraction,
                test_fraction, overwrite, show_progress, check_only,
                export_dir, (scan_root, mask_root))
