# Copyright (c) mmlesion contributors. All rights reserved.
"""Where the converter finds the scans and labels: a folder (``folder``),
or a public release's layout as downloaded: ``kits19`` (Heller et al.
2019), ``lits`` (Bilic et al. 2019), ``nih_ln`` (Roth et al. 2014, TCIA
"CT Lymph Nodes") and ``luna16`` (Setio et al. 2017). ``data/README.md``
(Converters) gives each one's files and labels.
"""
import glob
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from mmlesion.datasets.volumes import list_dicom_series
from mmlesion.datasets.volumes.loading import VOLUME_SUFFIXES
from mmlesion.evaluation.functional.luna16 import read_seriesuids_csv
from mmlesion.utils.tool_defaults import tool_defaults

from .scan_cases import ScanCase, read_box_table, rows_patient, scan_id


@dataclass(frozen=True)
class Preset:
    """How a dataset's files are found and what its lesions are called.

    Attributes:
        dataset (str): ``metainfo.dataset`` (None: ``--dataset``).
        find (callable): ``settings -> list[ScanCase]``.
        labels (tuple[int], optional): default lesion labels of the masks
            (None: every non-zero voxel).
        label_names (dict): label -> name (the class is the names of the
            lesion labels joined by ``' + '``); empty: ``class_name``.
        class_name (str, optional): the one class (None: ``--class-name``).
        lesion_type (int): default ``Coarse_lesion_type`` of the 2D export.
        window (tuple): default ``DICOM_windows`` of the 2D export.
    """
    dataset: Optional[str]
    find: Callable
    labels: Optional[Tuple[int, ...]] = None
    label_names: Dict[int, str] = field(default_factory=dict)
    class_name: Optional[str] = None
    lesion_type: int = -1
    window: Tuple[float, float] = (-1024, 3071)

    def class_names(self, labels: Optional[Sequence[int]],
                    default: str) -> List[str]:
        """The one class of the boxes made from ``labels``.

        Raises:
            ValueError: a label the dataset's label maps do not have.
        """
        if not self.label_names:
            return [self.class_name or default]
        names = self.label_names
        labels = list(names) if labels is None else labels
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise ValueError(f"{self.dataset}: field 'labels': {unknown} not "
                             f'in the label maps ({names})')
        return [' + '.join(names[label] for label in sorted(set(labels)))]


def _volumes_under(root: str, skip: Optional[str] = None) -> Dict[str, str]:
    """``id -> path`` of the CT volumes under ``root`` (files and DICOM
    series folders), natural order."""
    found = {}
    skip = osp.abspath(skip) if skip else None
    for folder, dirs, files in os.walk(root, followlinks=True):
        if skip and (osp.abspath(folder) + os.sep).startswith(skip + os.sep):
            continue
        dirs.sort()
        vols = [f for f in files if f.lower().endswith(VOLUME_SUFFIXES)
                and not f.lower().endswith('.dcm')]
        paths = [osp.join(folder, f) for f in vols]
        if len(files) > len(vols) and list_dicom_series(folder):
            paths.append(folder)  # its DICOM files are one series
        for path in paths:
            vid = scan_id(osp.relpath(path, root))
            if vid in found:
                raise ValueError(f'{path}: a second scan of id {vid!r} (the '
                                 f'first: {found[vid]})')
            found[vid] = path
    return dict(sorted(found.items(), key=lambda kv: [
        int(t) if t.isdigit() else t for t in re.split(r'(\d+)', kv[0])]))


def _boxes(settings, known: Sequence[str]) -> Dict[str, list]:
    """Findings of the box CSV and the excluded one by scan id; rows of
    scans that are not converted are reported in one line."""
    findings: Dict[str, list] = {}
    for path, ignore in ((settings.boxes, False), (settings.excluded, True)):
        if not path:
            continue
        table = read_box_table(path, settings.box_format, ignore,
                               settings.columns)
        absent = [uid for uid in table if uid not in known]
        if not ignore and len(absent) == len(table):
            raise ValueError(
                f'{path}: ' + (f'none of its {len(table)} scan ids (e.g. '
                               f'{absent[:3]}) is a scan converted (e.g. '
                               f'{list(known)[:3]})' if table else
                               'no finding, only a header') +
                ': every scan would be converted without lesions; give the '
                'box CSV of these scans (a scan id is its path under the '
                'scan folder without the suffix)')
        if absent:
            print_log(f'{path}: {len(absent)} annotated scans are not among '
                      f'the scans converted (not converted), e.g. '
                      f'{absent[:3]}', logger='current')
        for uid, items in table.items():
            findings.setdefault(uid, []).extend(items)
    return findings


def find_folder_cases(settings) -> List[ScanCase]:
    """Every scan under ``settings.scans`` with its mask or its boxes."""
    scans = _volumes_under(settings.scans, settings.masks)
    if not scans:
        raise FileNotFoundError(f'{settings.scans}: no CT volume (NIfTI, '
                                'MetaImage, NRRD or DICOM series) here')
    if bool(settings.masks) == bool(settings.boxes):
        raise ValueError(f'{settings.scans}: give either a mask folder or '
                         'a box CSV (--boxes)')
    pair = {re.sub(r'_0000$', '', vid): vid for vid in scans}
    masks = {}
    if settings.masks:
        for mid, path in _volumes_under(settings.masks).items():
            if mid not in pair:
                raise ValueError(f'{path}: a label mask without its scan '
                                 f'{mid}.* under {settings.scans}')
            masks[pair[mid]] = path
        lone = [p for vid, p in scans.items() if vid not in masks]
        if lone:
            raise ValueError(f'{lone[0]}: no label mask of the same name '
                             f'under {settings.masks} ({len(lone)} scans)')
    findings = _boxes(settings, list(scans))
    return [ScanCase(vid, path, masks.get(vid), findings.get(vid, []),
                     rows_patient=rows_patient(vid, findings.get(vid, [])))
            for vid, path in scans.items()]


def _found(cases: List[ScanCase], none: str) -> List[ScanCase]:
    if not cases:
        raise FileNotFoundError(none)
    return cases


def find_kits19_cases(settings) -> List[ScanCase]:
    """Every annotated KiTS19 case (the test set has no segmentation)."""
    cases, unlabeled = [], 0
    for folder in sorted(glob.glob(osp.join(settings.scans, 'case_*'))):
        image = osp.join(folder, 'imaging.nii.gz')
        seg = osp.join(folder, 'segmentation.nii.gz')
        if not osp.isfile(seg):
            unlabeled += 1
            continue
        if not osp.isfile(image):
            raise FileNotFoundError(f'{seg}: its scan {image} is missing')
        cases.append(ScanCase(osp.basename(folder), image, seg))
    if unlabeled:
        print_log(f'KiTS19: {unlabeled} cases without segmentation.nii.gz '
                  f'under {settings.scans} skipped (test set)',
                  logger='current')
    return _found(cases, f'no KiTS19 case_*/segmentation.nii.gz under '
                  f'{settings.scans}')


def find_lits_cases(settings) -> List[ScanCase]:
    """Every LiTS ``segmentation-<N>`` with its ``volume-<N>``."""
    cases = []
    segs = glob.glob(osp.join(settings.scans, '**', 'segmentation-*.nii*'),
                     recursive=True)
    for seg in sorted(segs, key=lambda p: int(
            re.search(r'segmentation-(\d+)', p).group(1))):
        m = re.match(r'segmentation-(\d+)(\.nii(\.gz)?)$', osp.basename(seg))
        if m is None:
            continue
        n = m.group(1)
        image = next((p for p in (osp.join(osp.dirname(seg),
                                           f'volume-{n}{ext}')
                                  for ext in ('.nii', '.nii.gz'))
                      if osp.isfile(p)), None)
        if image is None:
            raise FileNotFoundError(f'{seg}: its scan volume-{n}.nii[.gz] '
                                    f'is missing in {osp.dirname(seg)}')
        cases.append(ScanCase(f'volume-{n}', image, seg))
    return _found(cases, f'no LiTS segmentation-<N>.nii[.gz] under '
                  f'{settings.scans}')


def find_nih_ln_cases(settings) -> List[ScanCase]:
    """``<PatientID>`` DICOM series with the mask of that patient."""
    cases = []
    for folder in sorted(glob.glob(osp.join(settings.masks or '', '*'))):
        if not osp.isdir(folder):
            continue
        patient = osp.basename(folder)
        masks = sorted(glob.glob(osp.join(folder, '*.nii*')))
        if len(masks) != 1:
            raise ValueError(f'{folder}: expected one NIfTI mask, found '
                             f'{len(masks)} ({masks})')
        series = [(d, uid) for d, _, files in
                  os.walk(osp.join(settings.scans, patient)) if files
                  for uid in list_dicom_series(d)]
        if len(series) != 1:
            raise ValueError(
                f'{osp.join(settings.scans, patient)}: expected one DICOM '
                f'series for {patient}, found {len(series)}: {series}')
        cases.append(ScanCase(patient, series[0][0], masks[0]))
    return _found(cases, f'no <PatientID>/ mask folders under '
                  f'{settings.masks}')


#: The release's folder of lung masks (not scans).
LUNG_MASK_FOLDER = 'seg-lungs-LUNA16'


def find_luna16_scans(scan_root: str) -> Dict[str, str]:
    """``seriesuid -> .mhd path`` for every .mhd under ``scan_root``, the
    release's lung masks (:data:`LUNG_MASK_FOLDER`) skipped.

    Raises:
        ValueError: if one series UID is found twice.
    """
    scans: Dict[str, str] = {}
    for path in sorted(
            glob.glob(osp.join(scan_root, '**', '*.mhd'), recursive=True)):
        parts = osp.relpath(path, scan_root).split(os.sep)
        if LUNG_MASK_FOLDER in parts[:-1]:
            continue
        uid = osp.basename(path)[:-4]
        if uid in scans:
            raise ValueError(f'series {uid} found twice: {scans[uid]} and '
                             f'{path}')
        scans[uid] = path
    return scans


def find_luna16_cases(settings) -> List[ScanCase]:
    """The scans of ``seriesuids.csv`` (default: every scan found) with
    their nodules and excluded findings."""
    if not settings.boxes:
        raise ValueError('luna16: give annotations.csv (--annotations)')
    scans = find_luna16_scans(settings.scans)
    uids = list(scans)
    if settings.seriesuids:
        uids = read_seriesuids_csv(settings.seriesuids)
        missing = [u for u in uids if u not in scans]
        if missing:
            raise FileNotFoundError(
                f'{settings.seriesuids}: {len(missing)} of {len(uids)} '
                f'series have no <uid>.mhd under {settings.scans}, e.g. '
                f'{missing[:3]}')
    if not uids:
        raise FileNotFoundError(f'no .mhd scans under {settings.scans}')
    findings = _boxes(settings, list(scans))
    return [ScanCase(uid, scans[uid], None, findings.get(uid, []))
            for uid in uids]


#: The presets of the converter (``--preset``), named as
#: ``tool_defaults.json`` lists them (which the converter's ``--help``
#: shows), in its order; each is the dataset it names, but ``folder``.
PRESETS: Dict[str, Preset] = dict(zip(tool_defaults(__file__)['PRESETS'], (
    Preset(None, find_folder_cases),
    Preset('kits19', find_kits19_cases, (2, ),
           {1: 'kidney', 2: 'kidney tumour'}, lesion_type=6,
           window=(-175, 275)),
    Preset('lits', find_lits_cases, (2, ), {1: 'liver', 2: 'liver tumour'},
           lesion_type=4, window=(-175, 275)),
    Preset('nih_ln', find_nih_ln_cases, None, class_name='lymph node',
           lesion_type=3, window=(-175, 275)),
    Preset('luna16', find_luna16_cases, class_name='nodule', lesion_type=5,
           window=(-1350, 150)),
)))
