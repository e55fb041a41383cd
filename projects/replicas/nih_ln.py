# Copyright (c) mmlesion contributors. All rights reserved.
"""NIH lymph-node release replica (TCIA "CT Lymph Nodes").

What ``tools/dataset_converters/nih_ln.py`` reads, laid out as the TCIA
download (NBIA Data Retriever, descriptive folder names: ``data/README.md``
lists them; ``1-001.dcm`` the most superior slice) and
``MED_ABD_LYMPH_MASKS.zip`` unpack.

The DICOM files are CT Image Storage, explicit VR little endian, unsigned
16-bit pixels with ``RescaleIntercept -1024`` and every tag a series reader
needs (positions, orientation, spacing, UIDs); they are written with pydicom
from fixed values, so the bytes depend on the seed only. Abdominal cases
(``ABD_``) are the demo's kidney scans, mediastinal ones (``MED_``) its chest
scans; the planted lesions stand in for the nodes. The masks are binary
(uint8 0 / 1) NIfTI on the CT's grid. The release's centre-point text files
(no extent, not read by the converter) are not written.
"""
from pathlib import Path
from typing import Dict, List

import numpy as np

from projects.study_demo.synthetic.volume_settings import UID_ROOT
from projects.study_demo.synthetic.volumes import write_scan_image
from .marker import ReplicaSize
from .scans import replica_scans

SCAN_DIR = 'CT Lymph Nodes'
MASK_DIR = 'MED_ABD_LYMPH_MASKS'
_CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2'
_INTERCEPT = -1024


def write_dicom_series(folder: Path, img: np.ndarray, scan, patient: str,
                       uid: str) -> None:
    """One CT DICOM file per slice, ``1-001.dcm`` the most superior."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    nz = img.shape[0]
    sp, thk = scan.grid.spacing, scan.thickness
    ox, oy, oz = scan.origin_xyz
    stored = (np.clip(img.astype(np.int32), _INTERCEPT, None) -
              _INTERCEPT).astype(np.uint16)
    for n in range(nz):
        k = nz - 1 - n  # canonical slice: 0 is the most inferior
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = _CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = f'{uid}.2.{n + 1}'
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = UID_ROOT + '1'
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = 'ISO_IR 100'
        ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
        ds.SOPClassUID = _CT_IMAGE_STORAGE
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyDate = ds.SeriesDate = '20140914'
        ds.StudyTime = ds.SeriesTime = '120000'
        ds.Modality = 'CT'
        ds.Manufacturer = 'mmlesion release replica'
        ds.StudyDescription = 'SYNTHETIC REPLICA'
        ds.SeriesDescription = 'SYNTHETIC REPLICA'
        ds.PatientName = patient
        ds.PatientID = patient
        ds.StudyInstanceUID = f'{uid}.1'
        ds.SeriesInstanceUID = f'{uid}.2'
        ds.FrameOfReferenceUID = f'{uid}.3'
        ds.StudyID = '1'
        ds.SeriesNumber = 2
        ds.InstanceNumber = n + 1
        ds.SliceThickness = str(float(thk))
        ds.ImagePositionPatient = [f'{ox:.4f}', f'{oy:.4f}',
                                   f'{oz + k * thk:.4f}']
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = f'{oz + k * thk:.4f}'
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = 'MONOCHROME2'
        ds.Rows, ds.Columns = img.shape[1:]
        ds.PixelSpacing = [str(float(sp))] * 2
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = str(_INTERCEPT)
        ds.RescaleSlope = '1'
        ds.RescaleType = 'HU'
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        ds.save_as(str(folder / f'1-{n + 1:03d}.dcm'),
                   enforce_file_format=True)


def write_nih_ln_replica(root: Path, size: ReplicaSize, seed: int,
                         progress=None) -> Dict[str, int]:
    """Write the NIH-LN replica into ``root`` (an empty folder): half the
    patients abdominal (``ABD_LYMPH_*``), half mediastinal (``MED_``)."""
    num_abd = (size.num_scans + 1) // 2
    gens = [replica_scans('kits', num_abd, size, seed),
            replica_scans('luna16', size.num_scans - num_abd, size, seed)]
    patients: List[str] = []
    nodes = 0
    for prefix, (gen, scans) in zip(('ABD', 'MED'), gens):
        for i, scan in enumerate(scans):
            patient = f'{prefix}_LYMPH_{i + 1:03d}'
            number = 10000 + 137 * len(patients) + seed % 1000
            study = (root / SCAN_DIR / patient /
                     f'09-14-2014-{patient.replace("_", "")}-lymphnodes-'
                     f'{number}')
            series = study / f'lymphnodes-{number + 1}'
            series.mkdir(parents=True)
            img, tissue = gen.render_scan(scan)
            uid = f'{UID_ROOT}{seed}.{17 + len(patients)}'
            write_dicom_series(series, img, scan, patient, uid)
            out = root / MASK_DIR / patient
            out.mkdir(parents=True)
            nodes_uint8 = (gen.label_map(scan, tissue) == 2).astype(np.uint8)
            write_scan_image(nodes_uint8, scan,
                             out / f'{patient}_mask.nii.gz', compress=True)
            patients.append(patient)
            nodes += sum(les.annotated for les in scan.lesions)
            if progress is not None:
                progress.update()
    return dict(patients=len(patients), nodes=nodes)
