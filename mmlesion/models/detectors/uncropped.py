# Copyright (c) mmlesion contributors. All rights reserved.
"""Predictions of a slice whose black border was clipped, mapped back to the
whole slice (LENS Sec. VI-A clips the border of every image, at test as in
training).

mmdet's detectors rescale their boxes by ``scale_factor`` only; a crop made
by :class:`~mmlesion.datasets.transforms.ClipBlackBorder` records its corner
as ``crop_offset`` in pixels of the original image, which is added here.
"""
from typing import Sequence

from mmdet.models.detectors import FasterRCNN
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.structures import InstanceData
from torch import Tensor


def to_uncropped(results: Sequence[InstanceData],
                 batch_data_samples: SampleList) -> None:
    """Add each image's ``crop_offset`` to its rescaled ``bboxes`` (in
    place); images without one are left as they are.

    Args:
        results (Sequence[InstanceData]): one per image, boxes rescaled to
            the original image's scale.
        batch_data_samples (SampleList): their samples.
    """
    for res, sample in zip(results, batch_data_samples):
        offset = sample.metainfo.get('crop_offset')
        if offset is not None and len(res.bboxes):
            res.bboxes = res.bboxes + res.bboxes.new_tensor(offset).repeat(2)


@MODELS.register_module()
class UncroppedFasterRCNN(FasterRCNN):
    """mmdet's Faster R-CNN whose rescaled predictions are in the coordinates
    of the uncropped slice (:func:`to_uncropped`): the MULAN baseline of
    LENS Table I, tested on the clipped slices as the LENS rows are."""

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """mmdet's prediction, then :func:`to_uncropped` when rescaled."""
        samples = super().predict(batch_inputs, batch_data_samples, rescale)
        if rescale:
            to_uncropped([s.pred_instances for s in samples], samples)
        return samples
