# Copyright (c) mmlesion contributors. All rights reserved.
"""What whole-scan inference gives: a :class:`ScanResult` holding its
:class:`Finding` s, and how ``findings.json`` writes them
(:meth:`ScanResult.to_dict`, :meth:`Finding.to_dict`).

``findings.json`` carries ``schema_version``
(:data:`FINDINGS_SCHEMA_VERSION`); its keys and their order are those of
the files written before the version was recorded, plus that field. A
finding's ``diameter_mm`` is the old name of ``largest_box_side_mm`` (the
longer in-plane side of its 3D box, which is no lesion diameter: RECIST
gives those): the file still writes it, and :attr:`Finding.diameter_mm`
warns (``DeprecationWarning``) in Python.
"""
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from mmlesion.datasets.volumes import CTVolume

from .settings import DetectionSettings, VolumeInferenceSettings

#: ``schema_version`` of the ``findings.json`` written here.
FINDINGS_SCHEMA_VERSION = 1


@dataclass
class Finding:
    """One 3D finding of a scan (``findings.json``'s ``findings``).

    Args:
        id (int): 1, 2, ... by decreasing score.
        score (float): the detector's (with an FPR: LENS Eq. 2).
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
        boxes_2d (list[dict]): ``slice`` (resampled), ``bbox`` (continuous
            voxels), ``score`` of each stacked 2D box.
        s_lens (float, optional): the detector's score, with an FPR.
        s_fpr (float, optional): the FPR network's score.
        recist (dict, optional): the RECIST axes
            (:func:`~mmlesion.apis.whole_scan.measure.measure_findings`;
            None for an empty mask or before measuring).
        lesion_type (str, optional): for models of DeepLesion's lesion
            types (:func:`~mmlesion.apis.whole_scan.stack.
            add_lesion_types`).
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
    boxes_2d: List[dict]
    s_lens: Optional[float] = None
    s_fpr: Optional[float] = None
    recist: Optional[dict] = None
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
        """The finding as ``findings.json`` writes it (``diameter_mm``
        included, see the module doc)."""
        out = dict(id=self.id, score=self.score)
        if self.s_lens is not None or self.s_fpr is not None:
            out.update(s_lens=self.s_lens, s_fpr=self.s_fpr)
        out.update(
            center_world=self.center_world, bbox_world=self.bbox_world,
            bbox_voxel=self.bbox_voxel,
            bbox_voxel_resampled=self.bbox_voxel_resampled,
            largest_box_side_mm=self.largest_box_side_mm,
            diameter_mm=self.largest_box_side_mm,
            slice_range=self.slice_range, key_slice=self.key_slice,
            slice_range_original=self.slice_range_original,
            boxes_2d=self.boxes_2d, recist=self.recist)
        for key in ('lesion_type', 'key_slice_png'):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass
class ScanResult:
    """The findings of one scan and how they were found.

    Args:
        scan (str, optional): the scan's path.
        series_uid (str): the series the candidates name
            (:func:`~mmlesion.apis.whole_scan.read.scan_series_uid`).
        original (dict): the scan's geometry (``shape_zyx``,
            ``spacing_zyx``, ``origin_xyz``, ``direction``).
        resampled_geometry (dict): the same of the resampled volume.
        settings (VolumeInferenceSettings): the detector's convention.
        detection (DetectionSettings): how it was run.
        device (str): where the model ran.
        num_slices (int): resampled slices detected.
        num_boxes_2d (int): their 2D boxes.
        detect_seconds (float): the detection's time.
        slices_per_second (float): its speed.
        findings (list[Finding]): by decreasing score.
        fpr (str, optional): the FPR config that re-scored them.
        experts (list[int], optional): the experts a LENS model fused.
        model_warning (str, optional): :data:`~mmlesion.apis.whole_scan.
            model.DEMO_MODEL_WARNING` for a model trained on the demo data.
        provenance (dict, optional): checkpoint, config and versions
            (:func:`~mmlesion.apis.whole_scan.model.run_provenance`); with
            it (a run of :mod:`~mmlesion.apis.whole_scan.run`) the file
            records ``model_warning`` too.
        dicom (dict, optional): what DICOM results were written, or why
            none.
        resampled (CTVolume, optional): the volume the detector saw (for
            the pictures; not written).
        lesion_maps (list, optional): per resampled slice the model's
            bool lesion map (not written).
        paths (dict, optional): the files written.
    """
    scan: Optional[str]
    series_uid: str
    original: dict
    resampled_geometry: dict
    settings: VolumeInferenceSettings
    detection: DetectionSettings
    device: str
    num_slices: int
    num_boxes_2d: int
    detect_seconds: float
    slices_per_second: float
    findings: List[Finding] = field(default_factory=list)
    fpr: Optional[str] = None
    experts: Optional[List[int]] = None
    model_warning: Optional[str] = None
    provenance: Optional[dict] = None
    dicom: Optional[dict] = None
    resampled: Optional[CTVolume] = None
    lesion_maps: Optional[list] = None
    paths: Optional[Dict[str, Path]] = None

    def settings_record(self) -> dict:
        """``findings.json``'s ``settings``: the convention (without its
        pipeline), the detection options, the FPR and the experts."""
        d = self.detection
        out = {k: v for k, v in asdict(self.settings).items()
               if k != 'pipeline'}
        out.update(batch_size=d.batch_size, workers=d.workers,
                   worker_type=d.worker_type,
                   resample_backend=d.resample_backend,
                   score_thr=d.score_thr, iou_thr=d.iou_thr,
                   max_gap=d.max_gap, min_slices=d.min_slices, fpr=self.fpr)
        if self.experts is not None:
            out['experts'] = [int(e) for e in self.experts]
        return out

    def to_dict(self) -> dict:
        """What ``findings.json`` holds: ``model_warning`` first (for a
        run), ``schema_version``, the scan, the settings, the findings,
        ``provenance`` and ``dicom`` where recorded."""
        out = {}
        if self.provenance is not None or self.model_warning is not None:
            out['model_warning'] = self.model_warning
        out.update(
            schema_version=FINDINGS_SCHEMA_VERSION, scan=self.scan,
            series_uid=self.series_uid, original=self.original,
            resampled_geometry=self.resampled_geometry,
            settings=self.settings_record(), device=self.device,
            num_slices=self.num_slices, num_boxes_2d=self.num_boxes_2d,
            detect_seconds=self.detect_seconds,
            slices_per_second=self.slices_per_second,
            findings=[f.to_dict() for f in self.findings])
        if self.provenance is not None:
            out['provenance'] = self.provenance
        if self.dicom is not None:
            out['dicom'] = self.dicom
        return out
