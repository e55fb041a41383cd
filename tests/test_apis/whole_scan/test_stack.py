# Copyright (c) mmlesion contributors. All rights reserved.
"""Lesion type of 3D findings (mmlesion.apis.whole_scan.stack)."""
import numpy as np
import pytest
import torch

from mmlesion.apis.whole_scan.stack import (add_lesion_types,
                                            lesion_type_classes)
from mmlesion.datasets.deeplesion.dl_info import COARSE_LESION_TYPES
from tests.helpers.volume_demo import finding_of_boxes


def _model(classes):
    model = torch.nn.Linear(1, 1)
    model.dataset_meta = dict(classes=classes)
    return model


def test_only_lesion_type_classes_count():
    assert lesion_type_classes(_model(COARSE_LESION_TYPES)) == list(
        COARSE_LESION_TYPES)
    assert lesion_type_classes(_model(('lesion', ))) is None
    assert lesion_type_classes(_model(('person', 'bicycle'))) is None
    assert lesion_type_classes(torch.nn.Linear(1, 1)) is None


def test_type_is_the_best_summed_score_of_the_2d_boxes():
    boxes = [np.array([[0., 0., 5., 5.], [10., 10., 20., 20.]]),
             np.array([[10.001, 10., 20., 20.]]),
             np.array([[10., 10., 20., 20.]])]
    labels = [np.array([0, 3]), np.array([4]), np.array([4])]
    finding = finding_of_boxes(1, [
        dict(slice=0, bbox=[10., 10., 20., 20.], score=.9),
        dict(slice=1, bbox=[10., 10., 20., 20.], score=.5),
        dict(slice=2, bbox=[10., 10., 20., 20.], score=.5)])
    add_lesion_types([finding], boxes, labels, COARSE_LESION_TYPES)
    assert finding.lesion_type == 'lung'  # 0.5 + 0.5 > 0.9 (liver)
    finding.boxes_2d[0].bbox = [1., 1., 2., 2.]
    with pytest.raises(ValueError, match='finding 1: its box'):
        add_lesion_types([finding], boxes, labels, COARSE_LESION_TYPES)
