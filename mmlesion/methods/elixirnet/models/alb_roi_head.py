# Copyright (c) mmlesion contributors. All rights reserved.
"""RoI head that feeds per-image RoI counts to the Auto-lesion Block head
(ElixirNet: the Non-local operator builds one graph over the proposals of each
image)."""
import inspect
from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

import torch
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList
from torch import Tensor


@MODELS.register_module()
class ALBRoIHead(StandardRoIHead):
    """``StandardRoIHead`` whose box head also receives ``num_rois``.

    Only ``_bbox_forward`` changes: it counts the RoIs of each image from
    ``rois[:, 0]`` and calls ``bbox_head(bbox_feats, num_rois=counts)``;
    :meth:`loss`, :meth:`predict` and :meth:`forward` record the number of
    images so that an image without RoIs still gets a (zero) count. The box
    head must accept ``num_rois`` (:class:`ALBBBoxHead`,
    :class:`RTMBBoxHead`).

    After each box forward, :attr:`last_rois` holds the ``(R, 5)`` RoIs
    (detached) in the row order of ``bbox_head.last_adjacency``, so a drawing
    tool can place the graph nodes at the proposal centres.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.with_bbox and 'num_rois' not in inspect.signature(
                self.bbox_head.forward).parameters:
            raise TypeError(
                f'ALBRoIHead passes num_rois to its bbox_head, but '
                f'{type(self.bbox_head).__name__}.forward has no num_rois '
                "argument; use ALBBBoxHead/RTMBBoxHead or StandardRoIHead")
        self._num_imgs: Optional[int] = None
        self.last_rois: Optional[Tensor] = None

    @staticmethod
    def rois_to_num_rois(rois: Tensor,
                         num_imgs: Optional[int] = None) -> List[int]:
        """Count the RoIs of each image from ``rois[:, 0]``.

        Args:
            rois (Tensor): ``(R, 5)`` RoIs, batch index first, grouped by
                image in increasing order.
            num_imgs (int, optional): number of images (so trailing images
                without RoIs get a 0).

        Returns:
            list[int]: RoIs per image.

        Raises:
            ValueError: if the RoIs are not grouped by increasing image index.
        """
        batch_inds = rois[:, 0].long()
        if batch_inds.numel() > 1 and bool(
            (batch_inds[1:] < batch_inds[:-1]).any()):
            raise ValueError(
                'ALBRoIHead needs the RoIs grouped by image in increasing '
                'batch index (as bbox2roi makes them)')
        minlength = num_imgs or 0
        if batch_inds.numel() and int(batch_inds.max()) >= minlength > 0:
            raise ValueError(f'RoI batch index {int(batch_inds.max())} is out '
                             f'of range for {num_imgs} images')
        return torch.bincount(batch_inds, minlength=minlength).tolist()

    def _bbox_forward(self, x: Tuple[Tensor], rois: Tensor) -> dict:
        """Box head forward with per-image RoI counts.

        Args:
            x (tuple[Tensor]): multi-level image features.
            rois (Tensor): ``(n, 5)`` RoIs, batch index first.

        Returns:
            dict[str, Tensor]: ``cls_score``, ``bbox_pred`` and ``bbox_feats``
            as in ``StandardRoIHead``.
        """
        bbox_feats = self.bbox_roi_extractor(
            x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            bbox_feats = self.shared_head(bbox_feats)
        num_rois = self.rois_to_num_rois(rois, self._num_imgs)
        cls_score, bbox_pred = self.bbox_head(bbox_feats, num_rois=num_rois)
        self.last_rois = rois.detach()
        return dict(
            cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    @contextmanager
    def _images(self, rpn_results_list: InstanceList) -> Iterator[None]:
        """Record the number of images for the box forwards inside."""
        self._num_imgs = len(rpn_results_list)
        try:
            yield
        finally:
            self._num_imgs = None

    def forward(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList = None) -> tuple:
        """See ``StandardRoIHead.forward``."""
        with self._images(rpn_results_list):
            return super().forward(x, rpn_results_list, batch_data_samples)

    def loss(self, x: Tuple[Tensor], rpn_results_list: InstanceList,
             batch_data_samples: SampleList) -> dict:
        """See ``StandardRoIHead.loss``."""
        with self._images(rpn_results_list):
            return super().loss(x, rpn_results_list, batch_data_samples)

    def predict(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = False) -> InstanceList:
        """See ``StandardRoIHead.predict``."""
        with self._images(rpn_results_list):
            return super().predict(x, rpn_results_list, batch_data_samples,
                                   rescale)
