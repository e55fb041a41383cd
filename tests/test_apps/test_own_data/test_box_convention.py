# Copyright (c) mmlesion contributors. All rights reserved.
"""A lesion of known pixel extent through the converter's 2D export and
DeepLesionDataset ends as mmdet's box (x2 one past its last pixel), and the
FROC metric still sees the official inclusive pixels."""
import numpy as np
import pytest

from mmlesion.datasets import DeepLesionDataset
from mmlesion.apps.own_data import (ConvertSettings,
                                    DeepLesionExporter, convert_dataset)
from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
from mmlesion.evaluation.metrics import FROCMetric
from mmlesion.testing.volume_files import write_volume


def test_mask_extent_to_mmdet_box(tmp_path):
    img = np.full((8, 32, 32), -100, np.int16)
    img[:, 0] = -1000  # air: a CT in HU
    seg = np.zeros(img.shape, np.uint8)
    seg[3:6, 20:25, 10:12] = 1  # columns 10-11 (2 px), rows 20-24 (5 px)
    write_volume(str(tmp_path / 'img' / 'a.nii.gz'), img)
    write_volume(str(tmp_path / 'lab' / 'a.nii.gz'), seg)
    export = tmp_path / '2d'
    convert_dataset(ConvertSettings(
        str(tmp_path / 'img'), str(tmp_path / 'v.json'),
        masks=str(tmp_path / 'lab'), val_fraction=0, show_progress=False,
        exporter=DeepLesionExporter(str(export), num_slices=3,
                                    negatives_per_key=0)))
    # DL_info.csv as DeepLesion's: first and last pixel (1-based 11 .. 12)
    (row, ) = parse_dl_info(str(export / 'DL_info.csv'))
    assert row.bbox == (10, 20, 11, 24)
    ds = DeepLesionDataset(data_root=str(export), pipeline=[],
                           serialize_data=False)
    (lesion, ) = ds.get_data_info(0)['instances']
    x1, y1, x2, y2 = lesion['bbox']
    assert [x1, y1, x2, y2] == [10, 20, 12, 25]
    assert (x2 - x1, y2 - y1) == (2, 5) and lesion['ignore_flag'] == 0
    # the FROC metric's legacy +1 overlaps get the inclusive pixels back
    metric = FROCMetric(dump_detections=False, froc_plot=None)
    metric.dataset_meta = ds.metainfo
    np.testing.assert_array_equal(
        metric._boxes_for_matching(np.array([lesion['bbox']])),
        [[10, 20, 11, 24]])
    metric.dataset_meta = dict(classes=('lesion', ))  # other datasets
    assert metric._boxes_for_matching(np.array([lesion['bbox']])) \
        .tolist() == [[10, 20, 12, 25]]


@pytest.mark.parametrize('det, hit', [([10, 20, 12, 25], True),
                                      ([10, 20, 11, 24], False),
                                      ([12, 20, 14, 25], False),
                                      ([10.5, 21, 11, 23.8], False),
                                      ([10, 20, 12.5, 25.5], True)])
def test_froc_on_exclusive_boxes_matches_the_official_overlap(det, hit):
    """A detection on the lesion's pixels (mmdet's box) is a hit, as the
    same inclusive boxes are in the official evaluation; the 1 x 4 px box
    that reading DL_info's boxes as mmdet's gave covers 4 of its 10 pixels
    (IoU 0.4), and one two pixels to the right none; a prediction
    narrower than a pixel counts as one pixel wide, never inside out."""
    import torch
    gt = dict(bbox=[10., 20., 12., 25.], bbox_label=0, ignore_flag=0,
              lesion_type=4, diameters_mm=[5., 2.])
    sample = dict(img_id=0, img_path='x/001.png', ori_shape=(32, 32),
                  instances=[gt], pred_instances=dict(
                      bboxes=torch.tensor([det], dtype=torch.float32),
                      scores=torch.tensor([0.9]),
                      labels=torch.zeros(1, dtype=torch.long)))
    metric = FROCMetric(dump_detections=False, froc_plot=None,
                        breakdowns=False)
    metric.dataset_meta = dict(DeepLesionDataset.METAINFO)
    metric.process({}, [sample])
    sens = metric.evaluate(1)['froc/sens@4']
    assert sens == (1.0 if hit else 0.0)
