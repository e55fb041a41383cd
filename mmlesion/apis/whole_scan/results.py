# Copyright (c) mmlesion contributors. All rights reserved.
"""What whole-scan inference gives: a :class:`ScanResult` holding its
:class:`Finding` s, and ``findings.json`` (:meth:`ScanResult.to_dict`),
whose keys docs/infer_volume.md describes. The records (:class:`Box2D`,
:class:`ScanGeometry`, ...) are written as dicts of their fields, in their
order.
"""
import os
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from mmlesion.datasets.volumes import CTVolume
from mmlesion.utils.writing.field_record import FieldRecord

from .settings import DetectionSettings, VolumeInferenceSettings

#: ``schema_version`` of the ``findings.json`` written here.
FINDINGS_SCHEMA_VERSION = 1


@dataclass
class Box2D(FieldRecord):
    """One 2D box of a finding, as stacked (``findings.json``'s
    ``boxes_2d``).

    Args:
        slice (int): the resampled slice it lies on.
        bbox (list[float]): ``[x1, y1, x2, y2]`` in continuous voxels of
            the resampled volume.
        score (float): the detector's.
    """
    slice: int
    bbox: List[float]
    score: float

    @property
    def area(self) -> float:
        """The box's area in (resampled) pixels."""
        x1, y1, x2, y2 = self.bbox
        return (x2 - x1) * (y2 - y1)


@dataclass
class RecistMeasurement(FieldRecord):
    """A finding's RECIST long and short axis (``findings.json``'s
    ``recist``), measured on a mask on its key slice
    (:func:`~mmlesion.apis.whole_scan.measure.measure_findings`).

    Args:
        long_axis_mm (float): the long axis (longest diameter), mm.
        short_axis_mm (float): the short axis (longest diameter
            perpendicular to it), mm.
        area_mm2 (float): the mask's area, mm².
        mask_source (str): where the mask came from
            (:data:`~mmlesion.apis.whole_scan.measure.MASK_SOURCES`).
        key_slice (int): the resampled slice measured on.
        key_slice_original (int): the original scan's slice nearest to it.
        long_axis_voxel, short_axis_voxel (list[list[float]]): each
            axis' two ``[x, y]`` end points in original-scan voxels on
            ``key_slice_original``.
        outline_voxel (list[list[float]]): the mask's outline, a closed
            polygon of ``[x, y]`` boundary-pixel centres, in those voxels.
        long_axis_resampled, short_axis_resampled (list[list[float]]):
            the same end points on ``key_slice`` (resampled voxels).
    """
    long_axis_mm: float
    short_axis_mm: float
    area_mm2: float
    mask_source: str
    key_slice: int
    key_slice_original: int
    long_axis_voxel: List[List[float]]
    short_axis_voxel: List[List[float]]
    outline_voxel: List[List[float]]
    long_axis_resampled: List[List[float]]
    short_axis_resampled: List[List[float]]


@dataclass
class ScanGeometry(FieldRecord):
    """The grid of a volume (``findings.json``'s ``original`` and
    ``resampled_geometry``).

    Args:
        shape_zyx (list[int]): voxels along z, y, x.
        spacing_zyx (list[float]): voxel size along z, y, x, mm.
        origin_xyz (list[float]): world position (mm, LPS) of the centre of
            voxel ``(0, 0, 0)``.
        direction (list[float]): the 3x3 direction matrix, row by row
            (:attr:`~mmlesion.datasets.volumes.CTVolume.direction`).
    """
    shape_zyx: List[int]
    spacing_zyx: List[float]
    origin_xyz: List[float]
    direction: List[float]

    @classmethod
    def from_volume(cls, volume: CTVolume) -> 'ScanGeometry':
        """The geometry of ``volume`` (the scan or its resampled one)."""
        return cls(shape_zyx=list(volume.shape_zyx),
                   spacing_zyx=[float(v) for v in volume.spacing_zyx],
                   origin_xyz=[float(v) for v in volume.origin_xyz],
                   direction=[float(v) for v in volume.direction.ravel()])


@dataclass
class Finding:
    """One 3D finding of a scan (``findings.json``'s ``findings``).

    Args:
        id (int): 1, 2, ... by decreasing score.
        score (float): the detector's, or a re-scorer's (e.g. one combining
            the detector's and a false positive reduction network's).
        center_world (list[float]): the 3D box's centre, world x, y, z mm.
        bbox_world (list[float]): axis-aligned ``[xmin, ymin, zmin, xmax,
            ymax, zmax]`` mm.
        bbox_voxel (list[float]): ``[x1, y1, z1, x2, y2, z2]`` in
            continuous voxels of the original scan.
        bbox_voxel_resampled (list[float]): the same in the resampled
            volume the detector saw.
        largest_box_side_mm (float): the longer in-plane side (width or
            height) of the 3D box, mm.
        slice_range (list[int]): first and last resampled slice.
        key_slice (int): the resampled slice of its best 2D box.
        slice_range_original (list[int]): first and last slice of the scan.
        boxes_2d (list[Box2D]): each stacked 2D box.
        score_parts (dict[str, float]): the scores a re-scorer combined
            into ``score``, by name (e.g. ``s_det`` and ``s_fpr``; the file
            writes each after ``score``); empty without one.
        recist (RecistMeasurement, optional): the RECIST axes (None for
            an empty mask or before measuring).
        lesion_type (str, optional): its DeepLesion lesion type (models of
            those types only).
        key_slice_png (str, optional): its picture in the output folder,
            once written.
    """
    id: int
    score: float
    center_world: List[float]
    bbox_world: List[float]
    bbox_voxel: List[float]
    bbox_voxel_resampled: List[float]
    largest_box_side_mm: float
    slice_range: List[int]
    key_slice: int
    slice_range_original: List[int]
    boxes_2d: List[Box2D]
    score_parts: Dict[str, float] = field(default_factory=dict)
    recist: Optional[RecistMeasurement] = None
    lesion_type: Optional[str] = None
    key_slice_png: Optional[str] = None

    @property
    def diameter_mm(self) -> float:
        """Deprecated name of :attr:`largest_box_side_mm`."""
        warnings.warn(
            'Finding.diameter_mm is deprecated: use largest_box_side_mm (the '
            'longer in-plane side of the 3D box, not a lesion diameter; the '
            'RECIST axes are in Finding.recist)', DeprecationWarning,
            stacklevel=2)
        return self.largest_box_side_mm

    def to_dict(self) -> dict:
        """The finding as ``findings.json`` writes it (with
        ``diameter_mm``, the old name of ``largest_box_side_mm``)."""
        out = dict(id=self.id, score=self.score)
        out.update(self.score_parts)
        out.update(
            center_world=self.center_world, bbox_world=self.bbox_world,
            bbox_voxel=self.bbox_voxel,
            bbox_voxel_resampled=self.bbox_voxel_resampled,
            largest_box_side_mm=self.largest_box_side_mm,
            diameter_mm=self.largest_box_side_mm,
            slice_range=self.slice_range, key_slice=self.key_slice,
            slice_range_original=self.slice_range_original,
            boxes_2d=[b.to_dict() for b in self.boxes_2d],
            recist=None if self.recist is None else self.recist.to_dict())
        for key in ('lesion_type', 'key_slice_png'):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass
class Candidates:
    """Every stacked finding of a scan by decreasing score, the rows of
    ``candidates.csv``, as arrays (only the kept ones are :class:`Finding`
    s: a poorly trained model stacks thousands).

    Args:
        centres_world (np.ndarray): (n, 3) world x, y, z mm of each 3D
            box's centre.
        scores (np.ndarray): (n,) their scores, as a :class:`Finding`'s.
    """
    centres_world: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 3)))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class CheckpointRecord(FieldRecord):
    """A file a result names (``findings.json``'s ``provenance.checkpoint``).

    Args:
        path (str): the absolute path.
        sha256 (str): its SHA-256, hex.
    """
    path: str
    sha256: str


@dataclass(frozen=True)
class ConfigRecord(FieldRecord):
    """The config of a run (``findings.json``'s ``provenance.config``).

    Args:
        path (str, optional): the absolute path, or the name as given.
        sha256 (str): the SHA-256 of ``text``, hex.
        text (str): the config's full text.
    """
    path: Optional[str]
    sha256: str
    text: str


@dataclass(frozen=True)
class SoftwareVersions(FieldRecord):
    """The versions of mmlesion, its OpenMMLab stack, torch and Python
    (``findings.json``'s ``provenance.versions``)."""
    mmlesion: str
    mmdet: str
    mmcv: str
    mmengine: str
    torch: str
    python: str


@dataclass(frozen=True)
class RunProvenance:
    """Where a run's model came from (``findings.json``'s ``provenance``).

    Args:
        checkpoint (CheckpointRecord, optional): the weights (None: random
            weights).
        config (ConfigRecord): the config as run.
        versions (SoftwareVersions): the software.
        files (dict): further files by role (e.g. ``fpr_checkpoint``, the
            names a re-scorer gives: :attr:`~mmlesion.apis.whole_scan.
            settings.FindingRescorer.files`), written after ``versions``.
    """
    checkpoint: Optional[CheckpointRecord]
    config: ConfigRecord
    versions: SoftwareVersions
    files: Mapping[str, CheckpointRecord] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """``findings.json``'s ``provenance``."""
        out: Dict[str, Any] = dict(
            checkpoint=None if self.checkpoint is None else
            self.checkpoint.to_dict(),
            config=self.config.to_dict(), versions=self.versions.to_dict())
        out.update((role, record.to_dict())
                   for role, record in self.files.items())
        return out


@dataclass(frozen=True)
class DicomStatus:
    """What DICOM results a run wrote, or why none (``findings.json``'s
    ``dicom``).

    Args:
        written (bool): whether the SR was written.
        reason (str, optional): why not (None when written, or when
            planned and not written yet).
        sr (str, optional): the SR's file name.
        sr_sop_instance_uid (str, optional): its SOP Instance UID.
        seg (str, optional): the SEG's file name (None: no SEG).
        seg_findings (list[int]): the finding ids of the SEG's segments.
        seg_sop_instance_uid (str, optional): the SEG's SOP Instance UID.
        seg_reason (str, optional): why the SR came without a SEG (written
            after ``seg``, which is then null).
    """
    written: bool
    reason: Optional[str] = None
    sr: Optional[str] = None
    sr_sop_instance_uid: Optional[str] = None
    seg: Optional[str] = None
    seg_findings: List[int] = field(default_factory=list)
    seg_sop_instance_uid: Optional[str] = None
    seg_reason: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        """``findings.json``'s ``dicom``."""
        out: Dict[str, Any] = dict(written=self.written)
        if self.reason is not None:
            out['reason'] = self.reason
        if self.written:
            out.update(sr=self.sr,
                       sr_sop_instance_uid=self.sr_sop_instance_uid,
                       seg=self.seg)
            if self.seg is None:
                out['seg_reason'] = self.seg_reason
            out['seg_findings'] = self.seg_findings
            if self.seg_sop_instance_uid is not None:
                out['seg_sop_instance_uid'] = self.seg_sop_instance_uid
        return out


@dataclass(frozen=True)
class OutputPaths:
    """The files of a scan's results folder
    (:func:`~mmlesion.apis.whole_scan.write.output_paths`): ``json``,
    ``csv``, ``overview`` (PNG), ``html``, the ``key_slices`` folder, and
    the DICOM ``sr`` and ``seg`` where written."""
    json: Path
    csv: Path
    overview: Path
    html: Path
    key_slices: Path
    sr: Optional[Path] = None
    seg: Optional[Path] = None

    def named(self) -> List[Tuple[str, Path]]:
        """``(name, path)`` of every file, in the order of the fields
        (those not written left out)."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class DicomPaths:
    """The DICOM SR and SEG a folder may hold
    (:func:`~mmlesion.apis.whole_scan.write_dicom.dicom_output_paths`)."""
    sr: Path
    seg: Path

    def all(self) -> List[Path]:
        """Both, the SR first."""
        return [self.sr, self.seg]


@dataclass(frozen=True)
class ThreadUse(FieldRecord):
    """The threads a run detected with (``findings.json``'s ``threads``,
    as ``froc_val.json`` records them).

    Args:
        torch_threads (int): ``torch.get_num_threads()``.
        omp_num_threads (str, optional): ``OMP_NUM_THREADS`` (None: unset).
        omp_wait_policy (str, optional): ``OMP_WAIT_POLICY``.
    """
    torch_threads: int
    omp_num_threads: Optional[str] = None
    omp_wait_policy: Optional[str] = None

    @classmethod
    def now(cls) -> 'ThreadUse':
        """This process's threads now."""
        return cls(torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS'),
                   os.environ.get('OMP_WAIT_POLICY'))


@dataclass(frozen=True)
class OperatingPoint(FieldRecord):
    """Which findings a run kept (``findings.json``'s
    ``operating_point``).

    Args:
        source (str): ``'validation'`` (the checkpoint's validated
            record), ``'score-thr'`` (the user's) or ``'none'``.
        threshold (float): the detector score a finding's best 2D box
            reaches to be kept (for ``'score-thr'`` / ``'none'``: the
            stacking's ``score_thr``, every finding kept).
        fp_rate (float, optional): the validated FP rate chosen.
        fp_unit (str, optional): its unit (``'image'``: a 2D key slice;
            ``'sub-volume'``).
        sensitivity (float, optional): the validation's sensitivity there.
        split (str, optional): the validation data.
        epoch (int, optional): the epoch validated.
        note (str, optional): what the rate means on a whole scan.
        lesion_steps (dict, optional): for a per-scan point
            (``fp_unit='scan'``, the threshold on the finding's own score):
            the stacking's lesion steps chosen with it and used.
        scan_z_mm (float, optional): for a per-scan point: the mean extent
            along z of the validation scans (mm; None: not recorded).
    """
    source: str
    threshold: float
    fp_rate: Optional[float] = None
    fp_unit: Optional[str] = None
    sensitivity: Optional[float] = None
    split: Optional[str] = None
    epoch: Optional[int] = None
    note: Optional[str] = None
    lesion_steps: Optional[Dict[str, Any]] = None
    scan_z_mm: Optional[float] = None


@dataclass
class SliceDetections:
    """What the detector found on each resampled slice, before stacking.

    Args:
        boxes (list[np.ndarray]): per slice its (n, 4) boxes in continuous
            voxels.
        scores (list[np.ndarray]): per slice the (n,) scores.
        labels (list[np.ndarray]): per slice the (n,) labels (empty where
            the model has no lesion types).
        classes (list[str], optional): the model's DeepLesion lesion types
            by label, or None.
    """
    boxes: list
    scores: list
    labels: list
    classes: Optional[List[str]] = None


@dataclass
class ScanResult:
    """The findings of one scan and how they were found.

    Args:
        scan (str, optional): the scan's path.
        series_uid (str): the series the candidates name
            (:func:`~mmlesion.apis.whole_scan.read.scan_series_uid`).
        original (ScanGeometry): the scan's geometry.
        resampled_geometry (ScanGeometry): the resampled volume's.
        settings (VolumeInferenceSettings): the detector's convention.
        detection (DetectionSettings): how it was run.
        device (str): where the model ran.
        num_slices (int): resampled slices detected.
        num_boxes_2d (int): their 2D boxes.
        detect_seconds (float): the detection's time.
        slices_per_second (float): its speed.
        findings (list[Finding]): by decreasing score.
        rescored_by (str, optional): the re-scorer's name (the file's
            ``settings.fpr``).
        model_settings (dict): the options of a method's detector (e.g.
            ``experts``), written at the end of the file's ``settings``.
        model_warning (str, optional): :data:`~mmlesion.apis.whole_scan.
            model.DEMO_MODEL_WARNING` for a model trained on the demo data.
        provenance (RunProvenance, optional): checkpoint, config and
            versions; with it (a run) the file records ``model_warning``
            too.
        dicom (DicomStatus, optional): what DICOM results were written, or
            why none.
        resampled (CTVolume, optional): the volume the detector saw (for
            the pictures; not written).
        lesion_maps (list, optional): per resampled slice the model's
            bool lesion map (not written).
        paths (OutputPaths, optional): the files written.
        slice_detections (SliceDetections, optional): the slices' boxes
            while not stacked yet (``findings`` then empty; not written).
        candidates (Candidates): every stacked finding, the kept ones
            included: the rows of ``candidates.csv`` (none: the
            findings').
        operating_point (OperatingPoint, optional): which findings were
            kept (``detection.keep_thr``) and why.
        threads (ThreadUse): the threads of the detection (by default
            this process's now).
        series_description (str, optional): a DICOM series' Series
            Description (0008,103E), written after ``series_uid`` when
            known (:func:`~mmlesion.apis.whole_scan.write_dicom.
            series_names`).
        series_number (int, optional): its Series Number (0020,0011).
    """
    scan: Optional[str]
    series_uid: str
    original: ScanGeometry
    resampled_geometry: ScanGeometry
    settings: VolumeInferenceSettings
    detection: DetectionSettings
    device: str
    num_slices: int
    num_boxes_2d: int
    detect_seconds: float
    slices_per_second: float
    findings: List[Finding] = field(default_factory=list)
    rescored_by: Optional[str] = None
    model_settings: Dict[str, Any] = field(default_factory=dict)
    model_warning: Optional[str] = None
    provenance: Optional[RunProvenance] = None
    dicom: Optional[DicomStatus] = None
    resampled: Optional[CTVolume] = None
    lesion_maps: Optional[list] = None
    paths: Optional[OutputPaths] = None
    slice_detections: Optional[SliceDetections] = None
    candidates: Candidates = field(default_factory=Candidates)
    operating_point: Optional[OperatingPoint] = None
    threads: ThreadUse = field(default_factory=ThreadUse.now)
    series_description: Optional[str] = None
    series_number: Optional[int] = None

    def _settings_record(self) -> Dict[str, Any]:
        """``findings.json``'s ``settings`` (``scan_checks`` only where a
        check was relaxed)."""
        d = self.detection
        out = {k: v for k, v in asdict(self.settings).items()
               if k != 'pipeline'
               and not (k == 'scan_checks' and not any(v.values()))}
        out.update(batch_size=d.batch_size, workers=d.workers,
                   worker_type=d.worker_type,
                   resample_backend=d.resample_backend,
                   score_thr=d.score_thr, iou_thr=d.iou_thr,
                   **{k: v for k, v in d.lesion_steps().items()
                      if k != 'score_thr'}, fpr=self.rescored_by)
        out.update(self.model_settings)
        return out

    def to_dict(self) -> dict:
        """What ``findings.json`` holds."""
        out = {}
        if self.provenance is not None or self.model_warning is not None:
            out['model_warning'] = self.model_warning
        out.update(
            schema_version=FINDINGS_SCHEMA_VERSION, scan=self.scan,
            series_uid=self.series_uid)
        out.update((k, getattr(self, k)) for k in (
            'series_description', 'series_number')
            if getattr(self, k) is not None)
        out.update(
            original=self.original.to_dict(),
            resampled_geometry=self.resampled_geometry.to_dict(),
            settings=self._settings_record(), device=self.device,
            num_slices=self.num_slices, num_boxes_2d=self.num_boxes_2d,
            detect_seconds=self.detect_seconds,
            slices_per_second=self.slices_per_second,
            threads=self.threads.to_dict())
        if self.operating_point is not None:
            out.update(operating_point=self.operating_point.to_dict(),
                       num_candidates=len(self.candidates))
        out['findings'] = [f.to_dict() for f in self.findings]
        if self.provenance is not None:
            out['provenance'] = self.provenance.to_dict()
        if self.dicom is not None:
            out['dicom'] = self.dicom.to_dict()
        return out
