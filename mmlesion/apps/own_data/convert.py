# Copyright (c) mmlesion contributors. All rights reserved.
"""The dataset converter: a folder of CT scans with label masks or a box
CSV (or a public release, :mod:`.presets`) -> the volume annotation file.

Patients are found first (:mod:`.patients`) and split
(:mod:`.patient_split`); then each scan is read in the canonical grid, its
lesions found (:mod:`.scan_cases`) and its entry written. Each finished
scan leaves a record (:mod:`.scan_records`), so a killed run resumes with
the same command (``data/README.md``).
"""
import hashlib
import json
import logging
import os.path as osp
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple, TypedDict, Union

from mmengine.logging import print_log

from mmlesion.datasets.replica_marker import replica_sidecar
from mmlesion.datasets.volumes import (load_ct_volume, volume_entry,
                                       write_annotation_file)
from mmlesion.datasets.volumes.annotation_file import refuse_existing
from mmlesion.datasets.volumes.scan_switches import ScanChecks
from mmlesion.utils.reporting.progress import progress_bar
from mmlesion.utils.tool_defaults import tool_defaults
from mmlesion.utils.writing.atomic import remove_stale_temporaries_of

from .check_only import (ConversionPlan, ConversionTarget,
                         check_luna16_annotations, plan_conversion)
from .common import (DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION,
                     ConvertedVolume, MaskLesions, check_patient_splits,
                     convert_mask_case, map_scans, mark_replica_outputs,
                     read_split_file, relative_file)
from .deeplesion_export import DeepLesionExporter
from .patient_split import (SplitRequest, format_split_table, split_counts,
                            split_patients, split_table_path,
                            write_split_table)
from .patients import PatientRules, group_patients
from .presets import PRESETS, Preset
from .scan_cases import ScanCase, finding_entry, header_facts
from .scan_records import (input_stamp, read_record, records_dir,
                           remove_empty_records, remove_records,
                           resumes_run, start_run, write_record)

#: The defaults the converter's ``--help`` shows (``tool_defaults.json``).
_SHOWN = tool_defaults(__file__)['ConvertSettings']


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
        columns (dict, optional): the box CSV's header for each column
            name of the layout (``--columns name=header``).
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
        patient_from_dicom (bool): the patient id is the DICOM PatientID,
            required of every scan (by default it is used where a DICOM
            scan has one; :mod:`.patients`).
        split_file (str, optional): a user's split
            (:func:`~.common.read_split_file`).
        val_fraction (float): share of patients in the val split (a split
            that too few patients leave empty stops the conversion, except
            val at its default share: left empty with a warning;
            :func:`~.patient_split.split_patients`).
        test_fraction (float): share of patients in the test split.
        exporter (DeepLesionExporter, optional): also write the 2D export.
        workers (int): processes converting scans (1: this one).
        overwrite (bool): replace existing outputs.
        show_progress (bool): show the progress bar.
        check_only (bool): find and plan, read no scan, write nothing.
        export_dir (str, optional): the planned 2D export (check only).
        scan_checks (ScanChecks): the input checks relaxed when the scans
            are read (``--force-ct`` and the like).
    """
    scans: str
    out_file: str
    preset: str = _SHOWN['preset']
    masks: Optional[str] = None
    boxes: Optional[str] = None
    box_format: str = _SHOWN['box_format']
    columns: Optional[Dict[str, str]] = None
    excluded: Optional[str] = None
    seriesuids: Optional[str] = None
    labels: Optional[Sequence[int]] = None
    instances: bool = False
    connectivity: int = _SHOWN['connectivity']
    min_voxels: int = _SHOWN['min_voxels']
    dataset: str = _SHOWN['dataset']
    class_name: str = _SHOWN['class_name']
    patient_regex: Optional[str] = None
    patient_from_dicom: bool = False
    split_file: Optional[str] = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    exporter: Optional[DeepLesionExporter] = None
    workers: int = _SHOWN['workers']
    overwrite: bool = False
    show_progress: bool = True
    check_only: bool = False
    export_dir: Optional[str] = None
    scan_checks: ScanChecks = field(default_factory=ScanChecks)


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
                     split_table: dict) -> Dict[str, int]:
    """Set the patient of each case (:func:`~.patients.group_patients`)
    and split the patients (:func:`~.patient_split.split_patients`).

    Returns:
        dict[str, int]: volume id -> split.
    """
    group_patients(cases, PatientRules(
        settings.patient_regex, settings.patient_from_dicom, split_table,
        settings.split_file, infer=settings.preset == 'folder'))
    given = [(c.patient, c.volume_id, split_table[c.volume_id][0])
             for c in cases if split_table.get(c.volume_id, (None, ))[0]]
    check_patient_splits(given, settings.split_file or settings.scans)
    split = split_patients(
        [c.patient for c in cases],
        SplitRequest(settings.val_fraction, settings.test_fraction,
                     settings.split_file or settings.scans,
                     {p: s for p, _, s in given}))
    return {c.volume_id: split[c.patient] for c in cases}


@dataclass
class _Job:
    """What a worker needs to convert one scan."""
    index: int
    case: ScanCase
    key: str
    stamp: list
    settings: ConvertSettings
    split: int
    patient_index: int = 1
    study_index: int = 1
    scans_left: int = 0


def _target(settings: ConvertSettings, dataset: str,
            classes: Sequence[str]) -> ConversionTarget:
    """What the conversion of ``settings`` writes (for ``--check-only``)."""
    return ConversionTarget(
        settings.out_file, dataset, classes, settings.export_dir,
        settings.overwrite or resumes_run(settings.out_file,
                                          settings.export_dir))


def _convert_case(case: ScanCase, settings: ConvertSettings
                  ) -> ConvertedVolume:
    """Read a case's scan and find its lesions."""
    if case.mask:
        return convert_mask_case(
            case.image, case.mask, settings.out_file, case.volume_id,
            MaskLesions(_labels(settings), settings.connectivity,
                        settings.min_voxels, instances=settings.instances),
            settings.scan_checks)
    volume = load_ct_volume(case.image, scan_checks=settings.scan_checks)
    lesions = [finding_entry(volume, f) for f in case.findings]
    return ConvertedVolume(volume, case.volume_id,
                           relative_file(case.image, settings.out_file),
                           lesions)


def _run_job(job: _Job) -> Tuple[int, dict]:
    """Convert one scan (in a worker), export it, write its record."""
    s, case = job.settings, job.case
    conv = _convert_case(case, s)
    orientation, _ = header_facts(conv.volume)
    patient, split = case.patient or case.volume_id, job.split
    annotations = [{k: v for k, v in les.items() if k != 'slice_boxes'}
                   for les in conv.lesions]
    parts = None
    if s.exporter is not None:
        exporter = s.exporter.empty_copy()
        exporter.add_volume(conv.volume, conv.volume_id, conv.lesions, split,
                            patient=job.patient_index,
                            study=job.study_index,
                            scans_left=job.scans_left)
        parts = exporter.parts()
    record = dict(
        key=job.key, inputs=job.stamp, patient=patient,
        orientation=orientation, image=case.image, export=parts,
        entry=volume_entry(conv.volume, conv.volume_id, conv.file,
                           annotations, split=split, patient_id=patient,
                           **conv.extra))
    # the JSON round trip makes a fresh entry equal to a resumed one
    record = json.loads(json.dumps(record))
    write_record(s.out_file, case.volume_id, record)
    return job.index, record


def _jobs(cases: List[ScanCase], settings: ConvertSettings,
          splits: Dict[str, int]) -> Tuple[List[_Job], List[Optional[dict]]]:
    """Jobs of the cases without a valid record; the records of the rest.

    A patient's number in the 2D export is its rank of first appearance,
    its scans studies 1, 2, ... in order (DeepLesion's ``Patient_index``
    and ``Study_index``)."""
    worker = replace(settings, show_progress=False)
    common = repr((sorted((k, v) for k, v in vars(settings).items()
                          if k not in ('exporter', 'workers', 'overwrite',
                                       'show_progress')),
                   {k: v for k, v in vars(settings.exporter).items()
                    if k not in ('rows', 'series', 'extra_slices',
                                 'num_pngs')}
                   if settings.exporter else None))
    jobs, records = [], []
    numbers: Dict[str, int] = {}
    studies: Counter = Counter()
    for i, case in enumerate(cases):
        split = splits[case.volume_id]
        number = numbers.setdefault(case.patient, len(numbers) + 1)
        studies[case.patient] += 1
        key = hashlib.md5(repr((common, asdict(case), i, split, number,
                                studies[case.patient])).encode()
                          ).hexdigest()
        stamp = input_stamp([case.image, case.mask])
        records.append(read_record(settings.out_file, case.volume_id, key,
                                   stamp))
        if records[-1] is None:
            jobs.append(_Job(i, case, key, stamp, worker, split, number,
                             studies[case.patient]))
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


def _report_orientations(records: List[dict]) -> Dict[str, int]:
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


class _ExportCounts(TypedDict, total=False):
    """What a DeepLesion export and the replica markers add to a
    :class:`ConversionSummary`."""
    dl_info: str
    key_slice_rows: int
    pngs: int
    replica_markers: List[str]


class ConversionSummary(_ExportCounts):
    """What :func:`convert_dataset` wrote: volumes, lesions and ignored
    findings, the annotation file, the stored orientations' counts and
    patients / scans / lesions per split (and the export's counts)."""
    volumes: int
    lesions: int
    ignored: int
    ann_file: str
    orientations: Dict[str, int]
    splits: Dict[str, Dict[str, int]]


def convert_dataset(settings: ConvertSettings
                    ) -> Union[ConversionSummary, ConversionPlan]:
    """Convert a folder of scans and labels (or a preset's release).

    Args:
        settings (ConvertSettings): what and how.

    Returns:
        ConversionSummary | ConversionPlan: what was written, or, with
        ``check_only``, the plan (:func:`~.check_only.plan_conversion`).

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
                                         settings.seriesuids,
                                         settings.scans).to_dict()
        ids = found.pop('volume_ids')
        split = split_patients(ids, SplitRequest(
            settings.val_fraction, settings.test_fraction, settings.scans))
        return plan_conversion(ids, [split[v] for v in ids],
                               _target(settings, dataset, classes), **found)
    split_table = read_split_file(settings.split_file) \
        if settings.split_file else {}
    cases = preset.find(settings)
    splits = _assign_patients(cases, settings, split_table)
    if settings.check_only:
        return plan_conversion([c.volume_id for c in cases],
                               [splits[c.volume_id] for c in cases],
                               _target(settings, dataset, classes))
    export_dir = settings.exporter.out_dir if settings.exporter else None
    remove_empty_records(settings.out_file)
    resuming = resumes_run(settings.out_file, export_dir)
    refuse_existing(settings.out_file, settings.overwrite or resuming)
    start_run(settings.out_file, export_dir)
    remove_stale_temporaries_of(settings.out_file,
                                replica_sidecar(settings.out_file),
                                split_table_path(settings.out_file))
    if settings.exporter is not None:
        settings.exporter.remove_stale_temporaries()
    jobs, records = _jobs(cases, settings, splits)
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
    summary = ConversionSummary(
        volumes=len(entries),
        lesions=sum(not a['ignore'] for a in annotations),
        ignored=sum(a['ignore'] for a in annotations),
        ann_file=settings.out_file,
        orientations=_report_orientations(records),
        splits=split_counts(
            (r['patient'], e['split'],
             sum(not a['ignore'] for a in e['annotations']))
            for r, e in zip(records, entries)))
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
    held_out = write_split_table(settings.out_file, [
        (e['id'], r['patient'], e['split']) for r, e in zip(records,
                                                           entries)])
    remove_records(settings.out_file)  # last: the run is complete
    print_log(f'{dataset}: {summary}', logger='current')
    print_log(f'{dataset}: patients, scans and lesions per split\n'
              + format_split_table(summary['splits']), logger='current')
    print_log(held_out, logger='current')
    _say_scans_outside(settings.out_file, entries)
    return summary


def _say_scans_outside(out_file: str, entries: List[dict]) -> None:
    """One warning line where the annotation file was written into a
    folder that does not hold its scans (a sub-folder of the data): the
    datasets and the planner read scans under the annotation file's
    folder."""
    outside = [e['file'] for e in entries
               if e['file'].replace('\\', '/').startswith('../')
               or osp.isabs(e['file'])]
    if outside:
        print_log(
            f'{out_file}: written into a folder that does not hold its scans '
            f'({len(outside)} of {len(entries)} scan paths leave it, e.g. '
            f'{outside[0]!r}); the planner and the datasets read scans only '
            'under the annotation file\'s folder (the data root): give --out '
            'in a folder above the scans (e.g. DIR/volumes.json for scans in '
            'DIR/images), or read it with --allow-outside-data',
            logger='current', level=logging.WARNING)
