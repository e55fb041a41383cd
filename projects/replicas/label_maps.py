# Copyright (c) mmlesion contributors. All rights reserved.
"""KiTS19 and LiTS release replicas: CT + label map NIfTI pairs (the files
``data/README.md`` lists; labels 1 kidney or liver, 2 tumour).

KiTS19 (github.com/neheller/kits19, after ``get_imaging.py``) is stored as
the released files are (checked on ``case_00002``): the first NIfTI axis is
the axial one (SimpleITK size ``(z, y, x)``, spacing ``(dz, dy, dx)``),
direction ``[[0, 0, 1], [0, 1, 0], [-1, 0, 0]]``, origin ``(0, 0, 0)``;
case :data:`KITS19_FIRST_TEST_CASE` has no segmentation; ``kits.json`` is a
list of the release's records (every field, synthetic values; indent 4, no
final newline). LiTS (the challenge's two training batches, the second
from volume :data:`LITS_BATCH2_FIRST`) is uncompressed ``.nii`` with rows
and columns flipped (direction ``diag(-1, -1, 1)``), as NIfTI files
converted from DICOM often are.
"""
import json
from pathlib import Path
from typing import Dict

import numpy as np

from projects.study_demo.synthetic.volumes import _to_file_layout
from .marker import ReplicaSize
from .scans import replica_scans

#: First case of KiTS19's test set (imaging only).
KITS19_FIRST_TEST_CASE = 210
#: First volume of LiTS's second training batch.
LITS_BATCH2_FIRST = 28


def _write(image_arr: np.ndarray, scan, path: Path, origin=None) -> None:
    import SimpleITK as sitk
    image = _to_file_layout(image_arr, scan)
    if origin is not None:
        image.SetOrigin(origin)
    sitk.WriteImage(image, str(path), useCompression=path.suffix == '.gz')


def _kits_record(case_id: str, scan, rng: np.random.Generator) -> dict:
    """A ``kits.json`` record: the release's fields, synthetic values."""
    size = round(float(rng.uniform(1.5, 9.)), 1)
    return {
        'case_id': case_id,
        'age_at_nephrectomy': int(rng.integers(30, 80)),
        'gender': 'male' if rng.random() < .6 else 'female',
        'body_mass_index': round(float(rng.uniform(19., 38.)), 2),
        'comorbidities': {name: False for name in (
            'myocardial_infarction', 'congestive_heart_failure',
            'peripheral_vascular_disease', 'cerebrovascular_disease',
            'dementia', 'copd', 'connective_tissue_disease',
            'peptic_ulcer_disease', 'uncomplicated_diabetes_mellitus',
            'diabetes_mellitus_with_end_organ_damage',
            'chronic_kidney_disease', 'hemiplegia_from_stroke', 'leukemia',
            'malignant_lymphoma', 'localized_solid_tumor',
            'metastatic_solid_tumor', 'mild_liver_disease',
            'moderate_to_severe_liver_disease', 'aids')},
        'smoking_history': 'never_smoked',
        'age_when_quit_smoking': 'not_applicable',
        'pack_years': 0,
        'chewing_tobacco_use': 'never_or_not_in_last_3mo',
        'alcohol_use': 'two_or_less_daily',
        'intraoperative_complications': {
            'blood_transfusion': False,
            'injury_to_surrounding_organ': False,
            'cardiac_event': False
        },
        'hospitalization': int(rng.integers(1, 6)),
        'ischemia_time': int(rng.integers(0, 40)),
        'radiographic_size': size,
        'pathologic_size': round(size * float(rng.uniform(.8, 1.1)), 1),
        'malignant': True,
        'pathology_t_stage': '1a',
        'pathology_n_stage': '0',
        'pathology_m_stage': '0',
        'tumor_histologic_subtype': 'clear_cell_rcc',
        'tumor_necrosis': False,
        'tumor_isup_grade': int(rng.integers(1, 5)),
        'clavien_surgical_complications': '0',
        'er_visit': False,
        'readmission': False,
        'estimated_blood_loss': int(rng.integers(1, 20)) * 50,
        'surgery_type': 'robotic',
        'surgical_procedure': 'partial_nephrectomy',
        'surgical_approach': 'Transperitoneal',
        'operative_time': int(rng.integers(90, 400)),
        'cytoreductive': False,
        'positive_resection_margins': False,
        'last_preop_egfr': {'value': float(rng.integers(50, 90)),
                            'days_before_nephrectomy': int(
                                rng.integers(1, 90))},
        'first_postop_egfr': {'value': float(rng.integers(50, 90)),
                              'days_before_nephrectomy': int(
                                  rng.integers(1, 365))},
        'last_postop_egfr': {'value': '>=90',
                             'days_before_nephrectomy': int(
                                 rng.integers(365, 2000))},
        'vital_status': 'censored',
        'vital_days_after_surgery': int(rng.integers(365, 2000)),
        'voxel_spacing': {
            'x_spacing': scan.grid.spacing,
            'y_spacing': scan.grid.spacing,
            'z_spacing': scan.thickness
        },
    }


def write_kits19_replica(root: Path, size: ReplicaSize, seed: int,
                         progress=None) -> Dict[str, int]:
    """Write the KiTS19 replica into ``root`` (an empty folder): the
    labelled cases ``case_00000...`` and one test case (imaging only)."""
    gen, scans = replica_scans('kits', size.num_scans, size, seed)
    data = root / 'data'
    data.mkdir()
    rng = np.random.default_rng([seed, 19])
    records, tumours = [], 0
    ids = list(range(len(scans) - 1)) + [KITS19_FIRST_TEST_CASE]
    for scan, number in zip(scans, ids):
        case_id = f'case_{number:05d}'
        folder = data / case_id
        folder.mkdir()
        img, tissue = gen.render_scan(scan)
        origin = (0., 0., 0.)
        _write(img, scan, folder / 'imaging.nii.gz', origin)
        if number < KITS19_FIRST_TEST_CASE:
            _write(gen.label_map(scan, tissue), scan,
                   folder / 'segmentation.nii.gz', origin)
            records.append(_kits_record(case_id, scan, rng))
            tumours += len(scan.lesions)
        if progress is not None:
            progress.update()
    (data / 'kits.json').write_text(json.dumps(records, indent=4),
                                    encoding='utf-8')
    return dict(cases=len(records), test_cases=1, tumours=tumours)


def write_lits_replica(root: Path, size: ReplicaSize, seed: int,
                       progress=None) -> Dict[str, int]:
    """Write the LiTS replica into ``root`` (an empty folder): volumes in
    ``Training Batch 1`` and the last one in ``Training Batch 2``."""
    gen, scans = replica_scans('lits', size.num_scans, size, seed)
    numbers = list(range(len(scans) - 1)) + [LITS_BATCH2_FIRST]
    tumours = 0
    for scan, n in zip(scans, numbers):
        folder = root / ('Training Batch 1' if n < LITS_BATCH2_FIRST else
                         'Training Batch 2')
        folder.mkdir(exist_ok=True)
        img, tissue = gen.render_scan(scan)
        _write(img, scan, folder / f'volume-{n}.nii')
        _write(gen.label_map(scan, tissue), scan,
               folder / f'segmentation-{n}.nii')
        tumours += len(scan.lesions)
        if progress is not None:
            progress.update()
    return dict(volumes=len(scans), tumours=tumours)
