# Copyright (c) mmlesion contributors. All rights reserved.
"""Predictions of a slice whose black border was clipped, mapped back to the
whole slice (LENS Sec. VI-A clips the border of every image, at test as in
training).

mmdet's detectors rescale their boxes by ``scale_factor`` only; a crop made
by :class:`~mmlesion.datasets.transforms.ClipBlackBorder` records its corner
as ``crop_offset`` in pixels of the original image, which is added here,
and only here: the sample is marked (:data:`UNCROPPED_KEY`), and whoever
reads the predictions of a cropped image (whole-scan inference) checks the
mark (:func:`check_uncropped`) instead of adding the offset again.
"""
from typing import Sequence

from mmdet.models.detectors import FasterRCNN
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.structures import InstanceData
from torch import Tensor


#: ``metainfo`` key :func:`to_uncropped` sets (True) on a sample whose
#: predicted boxes it moved by the sample's ``crop_offset``.
UNCROPPED_KEY = 'bboxes_uncropped'


def to_uncropped(results: Sequence[InstanceData],
                 batch_data_samples: SampleList) -> None:
    """Add each image's ``crop_offset`` to its rescaled ``bboxes`` (in
    place) and mark its sample (:data:`UNCROPPED_KEY`); images without one
    are left as they are.

    Args:
        results (Sequence[InstanceData]): one per image, boxes rescaled to
            the original image's scale.
        batch_data_samples (SampleList): their samples.
    """
    for res, sample in zip(results, batch_data_samples):
        offset = sample.metainfo.get('crop_offset')
        if offset is None:
            continue
        if len(res.bboxes):
            res.bboxes = res.bboxes + res.bboxes.new_tensor(offset).repeat(2)
        sample.set_metainfo({UNCROPPED_KEY: True})


def check_uncropped(sample, detector: str) -> None:
    """Refuse the predictions of a cropped image that the detector left in
    the crop's coordinates.

    Args:
        sample (DetDataSample): a predicted sample.
        detector (str): the detector's name, for the message.

    Raises:
        ValueError: the sample has a ``crop_offset`` but no
            :data:`UNCROPPED_KEY` (its boxes would be off by the offset).
    """
    offset = sample.metainfo.get('crop_offset')
    if offset is not None and not sample.metainfo.get(UNCROPPED_KEY):
        raise ValueError(
            f'{detector}: the test pipeline crops the image (crop_offset '
            f'{tuple(offset)}, e.g. ClipBlackBorder), but the detector '
            'leaves its boxes in the crop; use a detector that maps them '
            'back to the whole image (to_uncropped: LENS, '
            'UncroppedFasterRCNN) or a test pipeline without the crop')


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
