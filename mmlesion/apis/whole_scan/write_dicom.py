# Copyright (c) mmlesion contributors. All rights reserved.
"""The findings as DICOM, built with highdicom, for a scan read from a
DICOM series (docs/infer_volume.md, "Results in DICOM"): a TID 1500 SR
(``findings_sr.dcm``; the model is the observer device, its UID derived
from the config name and the checkpoint's SHA-256) and a binary SEG of
the model masks (``findings_seg.dcm``; nearest neighbour onto the source
pixels, the higher score winning where findings overlap). Never a file
that references the wrong images: :func:`read_source_instances`.
"""
import copy
import logging
import os.path as osp
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional, Union

import numpy as np
from mmengine.logging import print_log

from mmlesion.datasets.volumes import CTVolume
from mmlesion.utils.writing.atomic import atomic_save_with
from mmlesion.utils.checkpoints.checksum import sha256_file
from mmlesion.utils.tool_defaults import tool_defaults
from mmlesion.version import __version__

from .measure import model_mask_in_box, slice_xy_to_world
from .model import DEMO_MODEL_WARNING
from .dicom_sources import (  # noqa: F401  (read here, and from here)
    REQUIRED_UIDS, DicomResultsError, SeriesNames, is_blank,
    read_source_instances, series_names)
from .results import DicomPaths, DicomStatus, Finding, ScanResult

#: Files written into the output folder.
DICOM_FILES = dict(sr='findings_sr.dcm', seg='findings_seg.dcm')
#: ``dicom`` modes of :func:`prepare_dicom_results` (``tool_defaults.json``:
#: ``--dicom``).
DICOM_MODES = tuple(tool_defaults(__file__)['DICOM_MODES'])
#: SNOMED CT anatomic location (``codes.SCT`` name) of each DeepLesion
#: coarse lesion type (the SR's *Finding Site*).
LESION_TYPE_SITES = {
    'bone': 'Bone', 'abdomen': 'Abdomen', 'mediastinum': 'Mediastinum',
    'liver': 'Liver', 'lung': 'Lung', 'kidney': 'Kidney',
    'soft tissue': 'SoftTissue', 'pelvis': 'Pelvis'
}
#: Why a SEG was not written (``findings.json``'s ``dicom.seg_reason``).
NO_MASKS = ('the model predicts no lesion masks (no segmentation head); '
            'the RECIST masks grown in its boxes are no segmentation')
NO_MASK_PIXELS = "no finding has model mask pixels on the scan's images"


@dataclass(frozen=True)
class DicomPlan:
    """Whether a run writes DICOM results, decided before the slow part
    (:func:`prepare_dicom_results`).

    Args:
        sources (list, optional): the source instances by slice
            (:func:`read_source_instances`), or None: none written.
        status (DicomStatus): what the result records until they are
            written (``written`` False; ``reason`` when none will be).
    """
    sources: Optional[list]
    status: DicomStatus


@dataclass(frozen=True)
class MeasurementReport:
    """The SR of the findings (:func:`build_measurement_report`).

    Args:
        sr: the ``highdicom.sr.Comprehensive3DSR``.
        tracking_uids (dict): finding id -> its tracking UID (the SEG's
            segments share them).
    """
    sr: Any
    tracking_uids: Dict[int, str]


@dataclass(frozen=True)
class FindingSegmentation:
    """The SEG of the findings' model masks (:func:`build_segmentation`).

    Args:
        seg: the ``highdicom.seg.Segmentation``, or None (no model mask).
        finding_ids (list[int]): the finding of each segment, in segment
            order.
        reason (str, optional): why ``seg`` is None.
    """
    seg: Any
    finding_ids: List[int]
    reason: Optional[str] = None


def require_highdicom() -> ModuleType:
    """Import highdicom, or raise an ImportError saying how to install it."""
    try:
        import highdicom
    except ImportError as err:
        raise ImportError(
            'DICOM results (SR, SEG) need highdicom: pip install -r '
            'requirements/dicom.txt (or pip install "mmlesion[dicom]", i.e. '
            'highdicom)') from err
    return highdicom


def dicom_output_paths(out_dir: Union[str, Path]) -> DicomPaths:
    """The DICOM files :func:`write_dicom_results` may write."""
    return DicomPaths(sr=Path(out_dir) / DICOM_FILES['sr'],
                      seg=Path(out_dir) / DICOM_FILES['seg'])


def prepare_dicom_results(volume: CTVolume,
                          dicom: str = 'auto',
                          out_dir: Optional[Union[str, Path]] = None,
                          overwrite: bool = False) -> DicomPlan:
    """Decide, before the slow part, whether DICOM results are written.

    Args:
        volume (CTVolume): the scan.
        dicom (str): ``'auto'`` (write them for a DICOM series, else say
            why not), ``'yes'`` (an error when impossible) or ``'no'``.
        out_dir (str | Path, optional): the output folder (None: nothing is
            written).
        overwrite (bool): replace earlier DICOM results.

    Returns:
        DicomPlan: the instances by slice (or None) and the status.

    Raises:
        ValueError: a bad ``dicom``, or (``'yes'``) a scan that is not a
            usable DICOM series (:class:`DicomResultsError`).
        ImportError: ``'yes'`` without highdicom.
        FileExistsError: earlier DICOM results without ``overwrite``.
    """
    if dicom not in DICOM_MODES:
        raise ValueError(f'dicom must be one of {DICOM_MODES}, got '
                         f'{dicom!r}')
    if dicom == 'no' or out_dir is None:
        return DicomPlan(None, DicomStatus(False, reason='not requested'))
    path = volume.meta.get('path')
    fmt = volume.meta.get('format')
    try:
        if fmt != 'dicom_series':
            raise DicomResultsError(
                f'{path}: DICOM results (SR, SEG) need a DICOM series folder '
                f'as input; this scan is {fmt or "not DICOM"}: an SR must '
                'reference the DICOM images it measures')
        require_highdicom()
        sources = read_source_instances(volume)
    except (DicomResultsError, ImportError) as err:
        if dicom == 'yes':
            raise
        print_log(f'no DICOM results: {err}', logger='current',
                  level=logging.WARNING)
        return DicomPlan(None, DicomStatus(False, reason=str(err)))
    existing = [str(p) for p in dicom_output_paths(out_dir).all()
                if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f'{out_dir} already holds DICOM results ({", ".join(existing)})'
            '; pass --overwrite (overwrite=True) to replace them')
    return DicomPlan(sources, DicomStatus(False))


# ---------------------------------------------------------------- geometry
def _to_image(ds, world: np.ndarray, what: str) -> np.ndarray:
    """World points on the instance's plane -> (n, 2) SCOORD (column, row);
    (0.5, 0.5) is the centre of the first pixel (highdicom)."""
    from highdicom.spatial import ReferenceToImageTransformer
    transform = ReferenceToImageTransformer(
        image_position=[float(v) for v in ds.ImagePositionPatient],
        image_orientation=[float(v) for v in ds.ImageOrientationPatient],
        pixel_spacing=[float(v) for v in ds.PixelSpacing])
    out = transform(np.asarray(world, np.float64))
    if np.abs(out[:, 2]).max() > 1e-2:
        raise DicomResultsError(
            f'{osp.basename(ds.filename)}: {what} is off the plane of the '
            'image it would reference')
    return out[:, :2].astype(np.float32)


def _series_description(result: ScanResult) -> str:
    """The SR's and SEG's Series Description (LO, 64 characters), where an
    archive lists the series: it names a model warning (the whole of it is
    in the SR's content and the SEG's algorithm)."""
    if not result.model_warning:
        return 'mmlesion findings'
    if result.model_warning == DEMO_MODEL_WARNING:
        return 'mmlesion findings - DEMO WEIGHTS, NOT CLINICAL'
    return 'mmlesion findings - MODEL WARNING, NOT CLINICAL'


def _warning_parameters(result: ScanResult) -> List[str]:
    """The model's warning as the algorithm parameter every SR measurement
    and SEG segment carries (none without a warning)."""
    return ([f'WARNING: model {result.model_warning}']
            if result.model_warning else [])


def _model_identity(model_info: dict) -> dict:
    from pydicom.uid import generate_uid
    config = osp.basename(str(model_info.get('config') or 'model'))
    checksum = model_info.get('checkpoint_sha256') or 'random-weights'
    return dict(config=config[:64], checksum=checksum[:64],
                version=f'mmlesion {__version__}'[:64],
                device_uid=generate_uid(entropy_srcs=[config, checksum]))


def _result_uid(sources: list, model_info: dict, result: ScanResult,
                role: str) -> str:
    """A UID of the results (``role``: e.g. ``'sr-series'``) derived from
    the source series, the model (its checkpoint's SHA-256) and the
    findings: the same results of the same scan always get the same UIDs,
    so that storing them on a server twice is storing one instance
    (:mod:`~mmlesion.apps.whole_scan.store_back`), and other results get
    other UIDs."""
    from pydicom.uid import generate_uid
    findings = [(f.id, round(float(f.score), 6),
                 [round(float(v), 3) for v in f.bbox_world])
                for f in result.findings]
    return generate_uid(entropy_srcs=[
        str(sources[0].SeriesInstanceUID),
        str(model_info.get('checkpoint_sha256') or 'random-weights'),
        str(findings), role])


# ---------------------------------------------------------------------- SR
def build_measurement_report(result: ScanResult, volume: CTVolume,
                             sources: list,
                             model_info: dict) -> MeasurementReport:
    """The TID 1500 Comprehensive 3D SR of the findings (module doc).

    Args:
        result (ScanResult): findings with ``recist``.
        volume (CTVolume): the original scan.
        sources (list): :func:`read_source_instances`.
        model_info (dict): ``config`` and ``checkpoint_sha256``.

    Returns:
        MeasurementReport: the ``highdicom.sr.Comprehensive3DSR`` and, per
        finding id, its tracking UID.
    """
    hd = require_highdicom()
    from pydicom.sr.codedict import codes
    ident = _model_identity(model_info)
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=ident['device_uid'], name='mmlesion detector',
        manufacturer_name='mmlesion', model_name=ident['config'],
        serial_number=ident['checksum'])
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.cid270.Device,
            observer_identifying_attributes=device))
    algorithm = hd.sr.AlgorithmIdentification(
        name=ident['config'], version=ident['version'],
        parameters=[ident['checksum']] + _warning_parameters(result))
    unitless = hd.sr.CodedConcept('1', 'UCUM', 'no units')
    groups, tracking = [], {}
    for f in result.findings:
        rec = f.recist
        if rec is None:
            continue
        z = rec.key_slice_original
        ds = sources[z]
        image = hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=str(ds.SOPClassUID),
            referenced_sop_instance_uid=str(ds.SOPInstanceUID))
        outline = _to_image(
            ds, slice_xy_to_world(volume, rec.outline_voxel, z),
            'the outline')
        outline = np.concatenate([outline, outline[:1]])  # closed

        height = round(float(f.bbox_world[5] - f.bbox_world[2]), 3)
        mm = codes.UCUM.Millimeter
        measurements = [
            hd.sr.Measurement(name=name, value=value, unit=unit,
                              algorithm_id=algorithm)
            for name, value, unit in (
                (codes.SCT.LongAxis, rec.long_axis_mm, mm),
                (codes.SCT.ShortAxis, rec.short_axis_mm, mm),
                (codes.DCM.CertaintyOfFinding, float(f.score), unitless),
                (codes.DCM.Height, height, mm))
        ]
        sites = None
        if f.lesion_type in LESION_TYPE_SITES:
            sites = [hd.sr.FindingSite(anatomic_location=getattr(
                codes.SCT, LESION_TYPE_SITES[f.lesion_type]))]
        uid = _result_uid(sources, model_info, result, f'finding {f.id}')
        tracking[f.id] = uid
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=uid, identifier=f'finding {f.id}'),
            referenced_region=hd.sr.ImageRegion(
                graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                graphic_data=outline, source_image=image),
            finding_type=codes.SCT.Lesion, algorithm_id=algorithm,
            finding_sites=sites, measurements=measurements))
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups)
    sr = hd.sr.Comprehensive3DSR(
        evidence=sources, content=report,
        series_instance_uid=_result_uid(sources, model_info, result,
                                        'sr-series'),
        series_number=9901,
        sop_instance_uid=_result_uid(sources, model_info, result, 'sr'),
        instance_number=1,
        manufacturer='mmlesion',
        series_description=_series_description(result),
        is_complete=True, is_final=False, is_verified=False)
    return MeasurementReport(sr, tracking)


# --------------------------------------------------------------------- SEG
def _label_map(result: ScanResult, order: List[Finding]) -> np.ndarray:
    """(z, y, x) uint16 segment numbers in the resampled volume."""
    labels = np.zeros(result.resampled.shape_zyx, np.uint16)
    for number, f in reversed(list(enumerate(order, 1))):  # best last
        for box in f.boxes_2d:
            mask = model_mask_in_box(result.lesion_maps[box.slice], box.bbox)
            if mask is not None:
                labels[box.slice][mask] = number
    return labels


def _sample_on_instance(labels: np.ndarray, resampled: CTVolume,
                        ds) -> np.ndarray:
    """Nearest-neighbour labels at the pixel centres of one instance."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    pos = np.array([float(v) for v in ds.ImagePositionPatient])
    z = resampled.world_to_voxel(pos)[0, 0]  # axial: one z for the plane
    near = labels[max(int(np.floor(z)) - 1, 0):int(np.ceil(z)) + 2]
    if not near.any():
        return np.zeros((rows, cols), np.uint16)
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    dy, dx = (float(v) for v in ds.PixelSpacing)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing='ij')
    world = (pos[None] + (c.reshape(-1, 1) * dx) * iop[None, :3] +
             (r.reshape(-1, 1) * dy) * iop[None, 3:])
    idx = np.round(resampled.world_to_voxel(world)).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.array(labels.shape)), axis=1)
    out = np.zeros(rows * cols, np.uint16)
    out[ok] = labels[idx[ok, 0], idx[ok, 1], idx[ok, 2]]
    return out.reshape(rows, cols)


def build_segmentation(result: ScanResult, sources: list, model_info: dict,
                       tracking: Dict[int, str]) -> FindingSegmentation:
    """A binary SEG of the findings' model masks (module doc), or None when
    the model predicts no masks or no finding has mask pixels.

    Args:
        result (ScanResult): with ``lesion_maps`` and ``resampled``.
        sources (list): :func:`read_source_instances`.
        model_info (dict): ``config`` and ``checkpoint_sha256``.
        tracking (dict): finding id -> tracking UID (shared with the SR).

    Returns:
        FindingSegmentation: the ``highdicom.seg.Segmentation`` (or None)
        and the finding ids of its segments, in segment order.
    """
    if result.lesion_maps is None:
        return FindingSegmentation(None, [], NO_MASKS)
    hd = require_highdicom()
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid
    findings = sorted(result.findings, key=lambda f: -f.score)
    labels = _label_map(result, findings)
    pixels = np.stack([_sample_on_instance(labels, result.resampled, ds)
                       for ds in sources])
    present = [n for n in range(1, len(findings) + 1) if (pixels == n).any()]
    if not present:
        return FindingSegmentation(None, [], NO_MASK_PIXELS)
    renumber = np.zeros(len(findings) + 1, np.uint16)
    renumber[present] = np.arange(1, len(present) + 1)
    pixels = renumber[pixels]
    ident = _model_identity(model_info)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ident['config'], family=codes.cid7162.ArtificialIntelligence,
        version=ident['version'], parameters=dict(
            checkpoint_sha256=ident['checksum'],
            **dict(zip(['warning'], _warning_parameters(result)))))
    ids = [findings[n - 1].id for n in present]
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k + 1, segment_label=f'finding {fid}',
            segmented_property_category=codes.SCT.
            MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_uid=tracking.get(fid) or generate_uid(),
            tracking_id=f'finding {fid}') for k, fid in enumerate(ids)
    ]
    if is_blank(sources[0], 'SliceThickness'):
        # highdicom reads the SEG's slice thickness from the first source
        # image; where the series leaves it blank, the slice interval
        first = copy.deepcopy(sources[0])
        first.SliceThickness = float(result.original.spacing_zyx[0])
        sources = [first] + list(sources[1:])
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=_result_uid(sources, model_info, result,
                                        'seg-series'),
        series_number=9902,
        sop_instance_uid=_result_uid(sources, model_info, result, 'seg'),
        instance_number=1,
        manufacturer='mmlesion', manufacturer_model_name=ident['config'],
        software_versions=ident['version'],
        device_serial_number=ident['checksum'],
        series_description=_series_description(result))
    return FindingSegmentation(seg, ids)


def _save(dataset, path: Path) -> None:
    atomic_save_with(
        str(path), lambda tmp: dataset.save_as(tmp, enforce_file_format=True))


def write_dicom_results(result: ScanResult, volume: CTVolume,
                        sources: list, out_dir: Union[str, Path],
                        model_info: Optional[dict] = None) -> DicomStatus:
    """Write the SR (and the SEG when the model predicts masks).

    Args:
        result (ScanResult): the scan's result.
        volume (CTVolume): the original scan.
        sources (list): :func:`read_source_instances`.
        out_dir (str | Path): the output folder (created).
        model_info (dict, optional): ``config`` (name) and ``checkpoint``
            (path; its SHA-256 identifies the model).

    Returns:
        DicomStatus: what was written; without findings nothing
        (``written`` False, ``reason``).
    """
    info = dict(model_info or {})
    if 'checkpoint_sha256' not in info:
        ckpt = info.get('checkpoint')
        info['checkpoint_sha256'] = None if ckpt is None else sha256_file(
            ckpt)
    paths = dicom_output_paths(out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    if all(f.recist is None for f in result.findings):
        for path in paths.all():  # from an earlier run (overwrite given)
            path.unlink(missing_ok=True)
        return DicomStatus(False, reason='no findings to report (a TID '
                           '1500 report holds at least one measurement '
                           'group)')
    report = build_measurement_report(result, volume, sources, info)
    sr = report.sr
    segmentation = build_segmentation(result, sources, info,
                                      report.tracking_uids)
    seg, seg_ids = segmentation.seg, segmentation.finding_ids
    _save(sr, paths.sr)
    if seg is not None:
        _save(seg, paths.seg)
    else:
        paths.seg.unlink(missing_ok=True)  # from an earlier run
    return DicomStatus(
        True, sr=DICOM_FILES['sr'],
        sr_sop_instance_uid=str(sr.SOPInstanceUID),
        seg=None if seg is None else DICOM_FILES['seg'],
        seg_findings=seg_ids,
        seg_sop_instance_uid=None if seg is None else str(
            seg.SOPInstanceUID), seg_reason=segmentation.reason)
