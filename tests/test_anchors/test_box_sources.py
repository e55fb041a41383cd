# Copyright (c) mmlesion contributors. All rights reserved.
"""Boxes for the anchor search: DeepLesion CSV and config datasets."""
import numpy as np
import pytest
from mmengine.config import Config

from mmlesion.anchors.box_sources import (anchor_config_from_model,
                                          boxes_from_config,
                                          boxes_from_dl_info,
                                          pipeline_resize_factor)
from tests.helpers.dl_info_rows import (lesion_row, write_dl_info_csv,
                                           write_key_slices)


@pytest.mark.parametrize('pipeline,size,expected', [
    ([], (512, 512), (1.0, 1.0)),
    ([dict(type='Resize', scale=(512, 512), keep_ratio=True)], (1024, 1024),
     (0.5, 0.5)),
    ([dict(type='Resize', scale=(800, 512), keep_ratio=True)], (512, 256),
     (1.5625, 1.5625)),
    ([dict(type='Resize', scale=(256, 128), keep_ratio=False)], (512, 512),
     (0.5, 0.25)),
    ([dict(type='mmdet.Resize', scale_factor=2.0, keep_ratio=True)], (100, 60),
     (2.0, 2.0)),
    ([
        dict(
            type='RandomResize',
            scale=(1024, 1024),
            ratio_range=(0.8, 1.2),
            keep_ratio=True)
    ], (512, 512), (2.0, 2.0)),
    ([
        dict(
            type='RandomChoiceResize',
            scales=[(256, 256), (768, 768)],
            keep_ratio=True)
    ], (512, 512), (1.0, 1.0)),
    ([
        dict(type='Resize', scale=(256, 256), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='Resize', scale_factor=2.0, keep_ratio=True)
    ], (512, 512), (1.0, 1.0)),
])
def test_pipeline_resize_factor(pipeline, size, expected):
    assert pipeline_resize_factor(pipeline, *size) == pytest.approx(expected)


def _rows():
    return [
        lesion_row(1, 10, (100, 120), 20, 10, split=2),
        lesion_row(1, 10, (300, 300), 40, 30, angle_deg=30, split=2),
        lesion_row(2, 20, (200, 200), 12, 6, split=3),
        lesion_row(
            3, 30, (400, 400), 30, 20, split=2, noisy=True, image_size=1024),
    ]


def test_boxes_from_dl_info(tmp_path):
    csv = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), _rows())
    boxes = boxes_from_dl_info(csv)
    assert boxes.shape == (4, 4)
    # RECIST 20 x 10 along x, padded by 5 px -> pixels 85-115 x 110-130,
    # 0-based, x2 and y2 one past the last pixel (as the dataset's boxes)
    np.testing.assert_allclose(boxes[0], [85, 110, 116, 131], atol=1e-3)
    assert len(boxes_from_dl_info(csv, split='val')) == 3
    assert len(boxes_from_dl_info(csv, split='val', skip_noisy=True)) == 2
    # the 1024 px image is brought to 512 px by Resize((512, 512))
    scaled = boxes_from_dl_info(csv, img_scale=(512, 512))
    np.testing.assert_allclose(scaled[:3], boxes[:3])
    np.testing.assert_allclose(scaled[3], boxes[3] * 0.5)
    with pytest.raises(ValueError, match='split'):
        boxes_from_dl_info(csv, split='training')


def test_boxes_from_config_applies_the_pipeline_resize(tmp_path):
    rows = _rows()[:3]
    csv = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), rows)
    write_key_slices(str(tmp_path / 'Images_png'), rows)
    dataset = dict(
        type='DeepLesionDataset',
        data_root=str(tmp_path),
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        split=None,
        test_mode=True,
        pipeline=[
            dict(type='LoadDeepLesionSlices'),
            dict(type='Resize', scale=(256, 256), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
        ])
    cfg = Config(
        dict(
            custom_imports=dict(
                imports=['mmlesion'], allow_failed_imports=False),
            default_scope='mmdet',
            model=dict(
                bbox_head=dict(
                    anchor_generator=dict(
                        type='AnchorGenerator',
                        octave_base_scale=4,
                        scales_per_octave=3,
                        ratios=[0.5, 1.0, 2.0],
                        strides=[4, 8, 16, 32, 64]))),
            val_dataloader=dict(dataset=dataset)))
    boxes, info = boxes_from_config(cfg, 'val')
    ref = boxes_from_dl_info(csv)
    assert info['dataset'] == 'DeepLesionDataset'
    assert info['num_images'] == 2
    assert info['factors'] == [(0.5, 0.5)]
    np.testing.assert_allclose(
        np.sort(boxes, axis=0), np.sort(ref * 0.5, axis=0), atol=1e-4)
    raw, _ = boxes_from_config(cfg, 'val', apply_resize=False)
    np.testing.assert_allclose(np.sort(raw, 0), np.sort(ref, 0), atol=1e-4)
    anchors = anchor_config_from_model(cfg)
    assert anchors.strides == (4, 8, 16, 32, 64)
    assert anchors.sizes == (16., 32., 64., 128., 256.)
    with pytest.raises(ValueError, match='train_dataloader'):
        boxes_from_config(cfg, 'train')
