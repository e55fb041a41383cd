# Copyright (c) mmlesion contributors. All rights reserved.
"""Loading of whole CT volumes and their 3D boxes."""
from typing import Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from ..volumes import (CTVolume, load_ct_volume, resample_boxes_3d,
                       resample_volume)
from ..volumes.loading import VolumeOptions
from ..volumes.scan_switches import ScanChecks


@TRANSFORMS.register_module()
class LoadCTVolume(BaseTransform):
    """Load a CT scan of :class:`~mmlesion.datasets.CTVolumeDataset`.

    Reads ``img_path`` with :func:`~mmlesion.datasets.volumes.
    load_ct_volume` (canonical LPS axial orientation, HU), checks it against
    the geometry of the annotation file (a re-exported scan would silently
    misplace every box) and optionally resamples it to ``spacing_zyx``,
    boxes carried through world coordinates (1 mm for the 3D Aggregated
    Faster R-CNN, Sec. IV-A).

    Required keys: ``img_path``; optional ``series_uid``, ``shape_zyx`` /
    ``spacing_zyx`` (checked), ``instances``, ``scan_checks``.

    Added keys: ``img`` (z, y, x) float32 HU, ``img_shape`` and
    ``ori_shape`` (z, y, x), ``spacing_zyx``, ``origin_xyz``,
    ``direction`` (3x3), ``series_uid``, ``gt_bboxes`` (N, 6) float32
    ``[x1, y1, z1, x2, y2, z2]``, ``gt_bboxes_labels`` (N,) int64,
    ``gt_ignore_flags`` (N,) bool, ``ori_spacing_zyx`` (before
    resampling).

    Args:
        spacing_zyx (sequence[float], optional): resample to this spacing
            (mm). Defaults to None (keep the scan's).
        check_geometry (bool): compare shape and spacing with the data_info.
            Defaults to True.
        spacing_tol (float): relative tolerance of that spacing check.
        load_kwargs (dict, optional): fields of :class:`~mmlesion.datasets.
            volumes.loading.VolumeOptions` (e.g. ``resample_oblique=True``).
        scan_checks (dict | ScanChecks, optional): the input checks relaxed
            (``dict(force_ct=True)``); default: the sample's, else
            :class:`ScanChecks`' defaults.
    """

    def __init__(self,
                 spacing_zyx: Optional[Sequence[float]] = None,
                 check_geometry: bool = True,
                 spacing_tol: float = 1e-3,
                 load_kwargs: Optional[dict] = None,
                 scan_checks: Union[None, dict, ScanChecks] = None) -> None:
        self.spacing_zyx = None if spacing_zyx is None else tuple(
            float(s) for s in spacing_zyx)
        self.check_geometry = check_geometry
        self.spacing_tol = spacing_tol
        self.options = VolumeOptions(**(load_kwargs or {}))
        self.scan_checks = None if scan_checks is None else ScanChecks.of(
            scan_checks)

    def _check(self, path: str, vol: CTVolume, results: dict) -> None:
        shape = results.get('shape_zyx')
        if shape is not None and tuple(shape) != vol.shape_zyx:
            raise ValueError(
                f'{path}: volume shape (z, y, x) {vol.shape_zyx} differs '
                f'from shape_zyx {tuple(shape)} of the annotation file; '
                f're-run the converter for this scan')
        spacing = results.get('spacing_zyx')
        if spacing is not None and not np.allclose(
                spacing, vol.spacing_zyx, rtol=self.spacing_tol):
            raise ValueError(
                f'{path}: voxel spacing (z, y, x) {vol.spacing_zyx} differs '
                f'from spacing_zyx {tuple(spacing)} of the annotation file')

    def transform(self, results: dict) -> dict:
        """Load the volume and boxes into ``results``."""
        path = results['img_path']
        vol = load_ct_volume(
            path, series_uid=results.get('series_uid'),
            scan_checks=self.scan_checks or results.get('scan_checks'),
            options=self.options)
        if self.check_geometry:
            self._check(path, vol, results)
        instances = results.get('instances', [])
        boxes = np.array([ins['bbox'] for ins in instances],
                         dtype=np.float32).reshape(-1, 6)
        results['ori_spacing_zyx'] = vol.spacing_zyx
        if self.spacing_zyx is not None:
            res = resample_volume(vol, self.spacing_zyx)
            boxes = resample_boxes_3d(boxes, vol, res)
            vol = res
        results['img'] = vol.array.astype(np.float32, copy=False)
        results['img_shape'] = vol.shape_zyx
        results['ori_shape'] = vol.shape_zyx
        results['spacing_zyx'] = vol.spacing_zyx
        results['origin_xyz'] = vol.origin_xyz
        results['direction'] = vol.direction
        results['series_uid'] = results.get('series_uid') or vol.series_uid
        results['gt_bboxes'] = boxes
        results['gt_bboxes_labels'] = np.array(
            [ins['bbox_label'] for ins in instances], dtype=np.int64)
        results['gt_ignore_flags'] = np.array(
            [bool(ins['ignore_flag']) for ins in instances], dtype=bool)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(spacing_zyx={self.spacing_zyx}, '
                f'check_geometry={self.check_geometry})')
