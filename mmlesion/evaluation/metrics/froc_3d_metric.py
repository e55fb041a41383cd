# Copyright (c) mmlesion contributors. All rights reserved.
"""3D FROC metric of the LENS protocol (docs/protocols.md §2)."""
from typing import Optional, Sequence

import numpy as np

from mmdet.registry import METRICS
from ..functional.froc_3d import (LENS_FP_RATES, LENS_IOBB_THR,
                                  continuous_to_inclusive)
from .froc_metric import FROCMetric

BOX_CONVENTIONS = ('continuous', 'inclusive')


@METRICS.register_module()
class FROC3DMetric(FROCMetric):
    """Sensitivity at FPs per sub-volume of 3D detections (LENS protocol).

    The evaluation of LENS (docs/protocols.md §2;
    :mod:`mmlesion.evaluation.functional.froc_3d`): :class:`FROCMetric`
    with 3D boxes, each sample one (sub-)volume of the FP denominator.
    Predictions are ``pred_instances.bboxes`` ``(N, 6)`` ``[x1, y1, z1, x2,
    y2, z2]`` in voxels of the sample's volume; ground truth is the raw
    ``instances`` meta (``bbox`` of 6 numbers in the same grid).

    Box convention: ``'continuous'`` (default; mmlesion's 3D boxes, ``x2 =
    x1 + extent``) turns both sides into inclusive voxel indices (``x2 -
    1``) before the legacy formula; ``'inclusive'`` takes boxes in the
    release's own convention (the manual test set's ``.pkl``) as they are.

    Metric keys (default prefix ``froc3d``): ``froc3d/sens@0.125`` ...
    ``froc3d/sens@8`` and ``froc3d/mean@0.125-8``. Files (into ``out_dir``
    or the runner's log dir): ``froc3d_curve.png`` and
    ``froc3d_detections.json``.

    Args:
        iou_thr (float): overlap threshold. Defaults to 0.3.
        overlap (str): ``'iobb'`` (default, the protocol) or ``'iou'``.
        fp_rates (Sequence[float]): reported rates. Defaults to 1/8 .. 8.
        mean_rates (Sequence[float]): averaged rates. Defaults to 1/8 .. 8.
        box_convention (str): ``'continuous'`` (default) or
            ``'inclusive'``; see above.
        skip_all_ignored_images (bool): drop sub-volumes whose instances are
            all ignored. Defaults to False (every sub-volume counts).
        out_dir (str, optional): where to write the PNG and JSON.
        dump_detections (bool): write the JSON. Defaults to True.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): key prefix; defaults to ``'froc3d'``.
    """
    default_prefix: Optional[str] = 'froc3d'
    box_dim = 3
    protocol_name = ('LENS 3D (DeepLesion manual 3D test set, '
                     'docs/protocols.md §2)')
    fp_unit = 'sub-volume'
    file_stem = 'froc3d'

    def __init__(self,
                 iou_thr: float = LENS_IOBB_THR,
                 overlap: str = 'iobb',
                 fp_rates: Sequence[float] = LENS_FP_RATES,
                 mean_rates: Sequence[float] = LENS_FP_RATES,
                 box_convention: str = 'continuous',
                 skip_all_ignored_images: bool = False,
                 out_dir: Optional[str] = None,
                 dump_detections: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        if box_convention not in BOX_CONVENTIONS:
            raise ValueError(f'FROC3DMetric: box_convention must be one of '
                             f'{BOX_CONVENTIONS}, got {box_convention!r}')
        super().__init__(
            iou_thr=iou_thr,
            overlap=overlap,
            fp_rates=fp_rates,
            mean_rates=mean_rates,
            breakdowns=False,
            skip_all_ignored_images=skip_all_ignored_images,
            out_dir=out_dir,
            dump_detections=dump_detections,
            with_coco_map=False,
            collect_device=collect_device,
            prefix=prefix)
        self.box_convention = box_convention

    def _boxes_for_matching(self, boxes: np.ndarray) -> np.ndarray:
        if self.box_convention == 'continuous':
            return continuous_to_inclusive(boxes)
        return boxes
