# Copyright (c) mmlesion contributors. All rights reserved.
"""The dataset converter: a folder of CT scans with label masks or a box
CSV (or a public release, :mod:`.presets`) -> the volume annotation file.

Each scan is read, its lesions found (:mod:`.scan_cases`), and its entry
written with its split: by the hash of its patient (never one patient on
two sides) or from the user's split file. Scans are converted by a process
pool (``workers``); each finished scan leaves a record
(:mod:`.scan_records`), so a killed run resumes where it stopped. All scans
are read in the canonical (LPS, axial) grid, and mixed stored orientations
are reported.

A killed run resumes with the same command and ends with the files an
uninterrupted run writes: the records folder is made before anything is
written and removed last (:func:`~.scan_records.start_run`), so outputs
that an unfinished run began are written over without ``--overwrite``,
and the temporary files a kill left are removed when the run starts.
"""
import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from mmlesion.utils.reporting.progress import progress_bar
from ..demo.replicas.marker import replica_sidecar
from ..volumes import load_ct_volume, volume_entry, write_annotation_file
from ..volumes.annotation_file import refuse_existing
from mmlesion.utils.writing.atomic import remove_stale_temporaries_of
from .check_only import check_luna16_annotations, plan_conversion
from .common import (DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION,
                     ConvertedVolume, assign_split, check_patient_splits,
                     convert_mask_case, map_scans, mark_replica_outputs,
                     read_split_file, relative_file)
from .deeplesion_export import DeepLesionExporter
from .presets import PRESETS, Preset
from .scan_cases import ScanCase, finding_entry, header_facts
from .scan_records import (input_stamp, read_record, records_dir,
                           remove_empty_records, remove_records,
                           resumes_run, start_run, write_record)


@dataclass
class ConvertSettings:
    """What to convert and how (the options of
    ``tools/dataset_converters/convert_dataset.py``).

    Attributes:
        scans (str): the scan folder.
        out_file (str): the annotation JSON.
        preset (str): ``folder`` or a public release (:data:`PRESETS`).
        masks (str, optional): the label-map folder.
        boxes (str, optional): the box CSV (``annotations.csv``).
        box_format (str): ``world``, ``recist`` or ``voxel``.
        excluded (str, optional): a box CSV of ignored findings.
        seriesuids (str, optional): LUNA16's ``seriesuids.csv``.
        labels (sequence[int], optional): lesion labels of the masks
            (None: the preset's; for ``folder`` every non-zero voxel).
        instances (bool): masks are instance maps (one lesion per value).
        connectivity (int): 3D connectivity of the components (1 .. 3).
        min_voxels (int): smaller components are dropped.
        dataset (str): ``metainfo.dataset`` of a ``folder`` conversion.
        class_name (str): its one class.
        patient_regex (str, optional): the patient id is the first group
            (or the group ``patient``) of this regex on the volume id.
        patient_from_dicom (bool): the patient id is the DICOM PatientID.
        split_file (str, optional): a user's split
            (:func:`~.common.read_split_file`).
        val_fraction (float): share of patients in the val split.
        test_fraction (float): share of patients in the test split.
        exporter (DeepLesionExporter, optional): also write the 2D export.
        workers (int): processes converting scans (1: this one).
        overwrite (bool): replace existing outputs.
        show_progress (bool): show the progress bar.
        check_only (bool): find and plan, read no scan, write nothing.
        export_dir (str, optional): the planned 2D export (check only).
    """
    scans: str
    out_file: str
    preset: str = 'folder'
    masks: Optional[str] = None
    boxes: Optional[str] = None
    box_format: str = 'world'
    excluded: Optional[str] = None
    seriesuids: Optional[str] = None
    labels: Optional[Sequence[int]] = None
    instances: bool = False
    connectivity: int = 3
    min_voxels: int = 1
    dataset: str = 'custom'
    class_name: str = 'lesion'
    patient_regex: Optional[str] = None
    patient_from_dicom: bool = False
    split_file: Optional[str] = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    exporter: Optional[DeepLesionExporter] = None
    workers: int = 1
    overwrite: bool = False
    show_progress: bool = True
    check_only: bool = False
    export_dir: Optional[str] = None


def _preset(settings: ConvertSettings) -> Preset:
    if settings.preset not in PRESETS:
        raise ValueError(f"field 'preset': {settings.preset!r} is not one "
                         f'of {sorted(PRESETS)}')
    return PRESETS[settings.preset]


def _labels(settings: ConvertSettings) -> Optional[List[int]]:
    labels = settings.labels
    labels = _preset(settings).labels if labels is None else labels
    return None if labels is None else list(labels)


def _assign_patients(cases: List[ScanCase], settings: ConvertSettings,
                     split_table: dict) -> None:
    """The patient of each case: the split file's, the regex's group."""
    for case in cases:
        if settings.patient_regex:
            m = re.search(settings.patient_regex, case.volume_id)
            if m is None:
                raise ValueError(f'{case.image}: the patient regex '
                                 f'{settings.patient_regex!r} does not match '
                                 f'its id {case.volume_id!r}')
            case.patient = m.groupdict().get('patient') or m.group(
                1 if m.re.groups else 0)
        listed = split_table.get(case.volume_id, (None, None))
        if settings.split_file and case.volume_id not in split_table:
            raise ValueError(f'{settings.split_file}: scan {case.volume_id} '
                             f'({case.image}) is not listed')
        case.patient = listed[1] or case.patient


@dataclass
class _Job:
    """What a worker needs to convert one scan."""
    index: int
    case: ScanCase
    key: str
    stamp: list
    settings: ConvertSettings
    split: Optional[int]
    scans_left: int = 0


def _convert_case(case: ScanCase, settings: ConvertSettings
                  ) -> ConvertedVolume:
    """Read a case's scan and find its lesions."""
    if case.mask:
        return convert_mask_case(case.image, case.mask, settings.out_file,
                                 case.volume_id, _labels(settings),
                                 settings.connectivity, settings.min_voxels,
                                 instances=settings.instances)
    volume = load_ct_volume(case.image)
    lesions = [finding_entry(volume, f) for f in case.findings]
    return ConvertedVolume(volume, case.volume_id,
                           relative_file(case.image, settings.out_file),
                           lesions)


def _run_job(job: _Job) -> Tuple[int, dict]:
    """Convert one scan (in a worker), export it, write its record."""
    s, case = job.settings, job.case
    conv = _convert_case(case, s)
    orientation, dicom_patient = header_facts(conv.volume)
    patient = case.patient or case.volume_id
    if s.patient_from_dicom and not case.patient:
        if dicom_patient is None:
            raise ValueError(f'{case.image}: no DICOM PatientID (0010,0020) '
                             'for --patient-from-dicom')
        patient = dicom_patient
    split = job.split or assign_split(patient, s.val_fraction,
                                      s.test_fraction)
    annotations = [{k: v for k, v in les.items() if k != 'slice_boxes'}
                   for les in conv.lesions]
    parts = None
    if s.exporter is not None:
        exporter = s.exporter.empty_copy()
        exporter.add_volume(conv.volume, conv.volume_id, conv.lesions, split,
                            patient=job.index + 1,
                            scans_left=job.scans_left)
        parts = exporter.parts()
    record = dict(
        key=job.key, inputs=job.stamp, patient=patient,
        orientation=orientation, image=case.image, export=parts,
        entry=volume_entry(conv.volume, conv.volume_id, conv.file,
                           annotations, split=split, **conv.extra))
    # the JSON round trip makes a fresh entry equal to a resumed one
    record = json.loads(json.dumps(record))
    write_record(s.out_file, case.volume_id, record)
    return job.index, record


def _jobs(cases: List[ScanCase], settings: ConvertSettings,
          split_table: dict) -> Tuple[List[_Job], List[Optional[dict]]]:
    """Jobs of the cases without a valid record; the records of the rest."""
    worker = replace(settings, show_progress=False)
    common = repr((sorted((k, v) for k, v in vars(settings).items()
                          if k not in ('exporter', 'workers', 'overwrite',
                                       'show_progress')),
                   {k: v for k, v in vars(settings.exporter).items()
                    if k not in ('rows', 'series', 'extra_slices',
                                 'num_pngs')}
                   if settings.exporter else None))
    jobs, records = [], []
    for i, case in enumerate(cases):
        split = split_table.get(case.volume_id, (None, ))[0]
        key = hashlib.md5(repr((common, asdict(case), i, split)).encode()
                          ).hexdigest()
        stamp = input_stamp([case.image, case.mask])
        records.append(read_record(settings.out_file, case.volume_id, key,
                                   stamp))
        if records[-1] is None:
            jobs.append(_Job(i, case, key, stamp, worker, split))
    for left, job in enumerate(reversed(jobs)):
        job.scans_left = left  # for the space a full disk names
    return jobs, records


def _run_all(jobs: List[_Job], records: List[Optional[dict]],
             settings: ConvertSettings) -> None:
    """Run the jobs (a process pool for ``workers`` > 1), filling
    ``records``, with a progress bar over every scan."""
    bar = progress_bar(len(records), label='converting') \
        if settings.show_progress and records else None
    done = len(records) - len(jobs)
    if done:
        print_log(f'{settings.out_file}: resuming: {done} of {len(records)} '
                  f'scans were converted before (records in '
                  f'{records_dir(settings.out_file)})', logger='current')
        if bar is not None:
            bar.update(done)
    for index, record in map_scans(_run_job, jobs, settings.workers,
                                   ordered=False):
        records[index] = record
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.finish()


def _report_orientations(records: List[dict]) -> dict:
    """Count the stored orientations; report mixed ones in one line."""
    counts = Counter(r['orientation'] for r in records)
    if len(counts) > 1:
        rare = counts.most_common()[-1][0]
        example = next(r['image'] for r in records
                       if r['orientation'] == rare)
        print_log(
            f'mixed orientations of the stored scans {dict(counts)} (e.g. '
            f'{example}: {rare}): every scan is read in the canonical LPS '
            'axial grid (axes reordered and flipped, not resampled), and '
            'its boxes are in that grid', logger='current',
            level=logging.WARNING)
    return dict(counts)


def convert_dataset(settings: ConvertSettings) -> dict:
    """Convert a folder of scans and labels (or a preset's release).

    Args:
        settings (ConvertSettings): what and how.

    Returns:
        dict: ``volumes``, ``lesions``, ``ignored``, ``ann_file``,
        ``orientations`` (and the export's ``dl_info``, ``key_slice_rows``,
        ``pngs``, and any ``replica_markers``), or, with ``check_only``,
        the plan (:func:`~.check_only.plan_conversion`).

    Raises:
        ValueError: one line naming the file of a bad case.
        FileNotFoundError: missing inputs.
        FileExistsError: existing outputs without ``overwrite``.
    """
    preset = _preset(settings)
    dataset = preset.dataset or settings.dataset
    classes = preset.class_names(_labels(settings), settings.class_name)
    if settings.check_only and settings.preset == 'luna16':
        found = check_luna16_annotations(settings.boxes, settings.excluded,
                                         settings.seriesuids, settings.scans)
        ids = found.pop('volume_ids')
        return plan_conversion(
            ids, [assign_split(v, settings.val_fraction,
                               settings.test_fraction) for v in ids],
            settings.out_file, dataset, classes, settings.export_dir,
            settings.overwrite or resumes_run(settings.out_file,
                                              settings.export_dir), **found)
    split_table = read_split_file(settings.split_file) \
        if settings.split_file else {}
    cases = preset.find(settings)
    _assign_patients(cases, settings, split_table)
    if settings.check_only:
        return plan_conversion(
            [c.volume_id for c in cases],
            [split_table.get(c.volume_id, (None, ))[0] or assign_split(
                c.patient or c.volume_id, settings.val_fraction,
                settings.test_fraction) for c in cases],
            settings.out_file, dataset, classes, settings.export_dir,
            settings.overwrite or resumes_run(settings.out_file,
                                              settings.export_dir))
    export_dir = settings.exporter.out_dir if settings.exporter else None
    remove_empty_records(settings.out_file)
    resuming = resumes_run(settings.out_file, export_dir)
    refuse_existing(settings.out_file, settings.overwrite or resuming)
    start_run(settings.out_file, export_dir)
    remove_stale_temporaries_of(settings.out_file,
                                replica_sidecar(settings.out_file))
    if settings.exporter is not None:
        settings.exporter.remove_stale_temporaries()
    jobs, records = _jobs(cases, settings, split_table)
    _run_all(jobs, records, settings)
    entries = [r['entry'] for r in records]
    check_patient_splits(
        [(r['patient'], e['id'], e['split']) for r, e in zip(records,
                                                             entries)],
        settings.split_file or settings.scans)
    masks = any(c.mask for c in cases)
    meta = dict(lesion_labels=_labels(settings),
                connectivity=settings.connectivity,
                min_voxels=settings.min_voxels) if masks else {}
    if masks and settings.instances:
        meta['instances'] = True
    write_annotation_file(settings.out_file, dataset, classes, entries,
                          overwrite=True, **meta)  # refused above
    annotations = [a for e in entries for a in e['annotations']]
    summary = dict(
        volumes=len(entries),
        lesions=sum(not a['ignore'] for a in annotations),
        ignored=sum(a['ignore'] for a in annotations),
        ann_file=settings.out_file,
        orientations=_report_orientations(records))
    exporter = settings.exporter
    if exporter is not None:
        for record in records:
            exporter.merge(record['export'])
        summary.update(dl_info=exporter.write(),
                       key_slice_rows=len(exporter.rows),
                       pngs=exporter.num_pngs)
    markers = mark_replica_outputs(
        [settings.scans, settings.masks, settings.boxes, settings.excluded,
         settings.seriesuids], files=[settings.out_file],
        folders=[exporter.out_dir] if exporter is not None else [],
        made_by=f'the {dataset} converter')
    if markers:  # written (a replica) or removed (real data now)
        summary['replica_markers'] = markers
    remove_records(settings.out_file)  # last: the run is complete
    print_log(f'{dataset}: {summary}', logger='current')
    return summary
