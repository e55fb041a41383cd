# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :mod:`mmlesion.anchors.box_sources`.

Pinned, without the real data: transform type names (scoped, classes,
missing), scales given as one number or a pair, mmdet's ``Resize`` size
from ``scale_factor`` (a number or a pair, rounded half up), the nominal
scale of each random resize (the mean of candidate scales, a single scale,
``ratio_range``), ``FixShapeResize``, resizes composed and other transforms
skipped, the list of resize transforms, the DeepLesion CSV source (split
message, ``img_scale`` with and without ``keep_ratio``, both sources
refused together, an empty selection), the dataset pipeline looked up
through wrappers, image sizes read from the data_info or the file, and
the config source (its messages, ignored instances, the random-resize
log) (docs/mutation_testing.md).
"""
import numpy as np
import pytest
from mmengine.config import Config

from mmlesion.anchors import box_sources as bs
from mmlesion.anchors.box_sources import (_as_wh, _image_size,
                                          _nominal_scale, _resize_size,
                                          _type_name, boxes_from_config,
                                          boxes_from_dl_info,
                                          dataset_pipeline,
                                          pipeline_resize_factor,
                                          resize_transforms)
from tests.helpers.dl_info_rows import lesion_row, write_dl_info_csv


class Resize:
    pass


def test_type_names():
    assert _type_name(dict(type='mmdet.Resize')) == 'Resize'
    assert _type_name(dict(type='Resize')) == 'Resize'
    assert _type_name(dict(type=Resize)) == 'Resize'
    assert _type_name(dict()) == ''
    assert _type_name(dict(type=3)) == '3'


def test_as_wh():
    assert _as_wh(512) == (512, 512) and _as_wh(300.7) == (300, 300)
    assert _as_wh((640, 480.9)) == (640, 480)
    assert all(type(v) is int for v in _as_wh((640.0, 480.0)))


def test_resize_size():
    # scale_factor: rounded half up
    assert _resize_size(101, 51, None, 0.5, False) == (51, 26)
    assert _resize_size(100, 50, None, (2, 3), False) == (200, 150)
    assert _resize_size(100, 50, None, 2, True) == (200, 100)
    # an explicit scale
    assert _resize_size(100, 50, (300, 200), None, False) == (300, 200)
    assert _resize_size(100, 50, (300, 200), None, True) == (300, 150)
    assert _resize_size(100, 50, 400, None, True) == (400, 200)


def test_nominal_scales():
    assert _nominal_scale(dict(type='RandomResize', scale=(100, 200),
                               ratio_range=(0.5, 2))) == ((100, 200), False)
    assert _nominal_scale(dict(type='RandomResize',
                               scale=[(100, 200), (300, 401)],
                               keep_ratio=True)) == ((200, 300), True)
    # with a ratio range the two scales are not averaged
    with pytest.raises(TypeError):
        _nominal_scale(dict(type='RandomResize', scale=[(1, 2), (3, 4)],
                            ratio_range=(0.5, 2)))
    assert _nominal_scale(dict(type='RandomResize', scale=256)) == \
        ((256, 256), False)
    assert _nominal_scale(dict(type='RandomChoiceResize',
                               scales=[(100, 200), (301, 401)],
                               keep_ratio=True)) == ((200, 300), True)
    assert _nominal_scale(dict(type='RandomChoiceResize',
                               scales=(120, 240))) == ((120, 240), False)
    assert _nominal_scale(dict(type='FixShapeResize', width=64.0,
                               height=32, keep_ratio=True)) == ((64, 32),
                                                                True)
    assert _nominal_scale(dict(type='Resize', scale=(7, 8))) == ((7, 8),
                                                                False)
    assert _nominal_scale(dict(type='Resize')) == (None, False)


@pytest.mark.parametrize('pipeline,size,expected', [
    ([dict(type='FixShapeResize', width=256, height=128)], (512, 512),
     (0.5, 0.25)),
    ([dict(type='FixShapeResize', width=256, height=256, keep_ratio=True)],
     (512, 256), (0.5, 0.5)),
    ([dict(type='FixScaleResize', scale=(256, 256), keep_ratio=False)],
     (512, 1024), (0.5, 0.25)),
    ([dict(type='Resize', scale_factor=(2.0, 0.5))], (100, 100),
     (2.0, 0.5)),
    ([dict(type='RandomChoiceResize', scales=[(100, 100), (300, 300)])],
     (100, 50), (2.0, 4.0)),
    ([dict(type='RandomResize', scale=[(100, 100), (300, 300)])],
     (100, 50), (2.0, 4.0)),
    ([dict(type='RandomFlip'), dict(type='Pad', size=(999, 999))],
     (100, 50), (1.0, 1.0)),
])
def test_pipeline_resize_factor_edges(pipeline, size, expected):
    assert pipeline_resize_factor(pipeline, *size) == pytest.approx(expected)


def test_resize_transforms():
    p = [dict(type='Resize'), dict(type='RandomFlip'),
         dict(type='mmdet.RandomResize'), dict(type='FixShapeResize'),
         dict(type='RandomChoiceResize'), dict(type='FixScaleResize')]
    assert resize_transforms(p) == [p[0], p[2], p[3], p[4], p[5]]


def _csv(tmp_path):
    rows = [
        lesion_row(1, 10, (100, 120), 20, 10, split=1, image_size=1024),
        lesion_row(2, 20, (200, 200), 12, 6, split=3),
    ]
    return write_dl_info_csv(str(tmp_path / 'DL_info.csv'), rows)


def test_boxes_from_dl_info_edges(tmp_path):
    csv = _csv(tmp_path)
    boxes = boxes_from_dl_info(csv)
    assert boxes.dtype == np.float64 and boxes.shape == (2, 4)
    assert len(boxes_from_dl_info(csv, split='train')) == 1
    assert len(boxes_from_dl_info(csv, split='test')) == 1
    empty = boxes_from_dl_info(csv, split='val', img_scale=(256, 256))
    assert empty.shape == (0, 4)
    with pytest.raises(ValueError) as err:
        boxes_from_dl_info(csv, split='training')
    assert str(err.value) == ("Unknown split 'training'; expected one of "
                              "['test', 'train', 'val']")
    with pytest.raises(ValueError) as err:
        boxes_from_dl_info(csv, img_scale=(256, 256), pipeline=[])
    assert str(err.value) == ('boxes_from_dl_info: give img_scale or '
                              'pipeline, not both')
    # img_scale without keep_ratio: both sides forced
    scaled = boxes_from_dl_info(csv, img_scale=(256, 128), keep_ratio=False)
    np.testing.assert_allclose(scaled[0], boxes[0] * [.25, .125, .25, .125])
    np.testing.assert_allclose(scaled[1], boxes[1] * [.5, .25, .5, .25])
    kept = boxes_from_dl_info(csv, img_scale=(256, 128))
    np.testing.assert_allclose(kept[0], boxes[0] * 0.125)
    # a pipeline: the same factors per image
    piped = boxes_from_dl_info(
        csv, pipeline=[dict(type='Resize', scale=(256, 128),
                            keep_ratio=False)])
    np.testing.assert_allclose(piped, scaled)


def test_dataset_pipeline():
    p = [dict(type='Resize')]
    assert dataset_pipeline(dict(pipeline=p)) == p
    assert dataset_pipeline(dict(pipeline=[], dataset=dict(pipeline=p))) == p
    assert dataset_pipeline(dict(type='RepeatDataset',
                                 dataset=dict(pipeline=p))) == p
    assert dataset_pipeline(dict(datasets=[dict(pipeline=p),
                                           dict(pipeline=[])])) == p
    assert dataset_pipeline(dict(datasets=[])) == []
    assert dataset_pipeline(dict()) == []


def test_image_size(tmp_path):
    assert _image_size(dict(width=30.0, height=20)) == (30, 20)
    import cv2
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, np.zeros((7, 9), np.uint16))
    assert _image_size(dict(width=0, height=20, img_path=path)) == (9, 7)
    assert _image_size(dict(width=30, img_path=path)) == (9, 7)
    for info in (dict(), dict(img_path=str(tmp_path / 'missing.png'))):
        with pytest.raises(FileNotFoundError) as err:
            _image_size(info)
        assert str(err.value) == (
            'data_info has no width/height and its image is missing: '
            f"{info.get('img_path')}")


class _Dataset:
    """A registry-free dataset stand-in."""

    def __init__(self, infos):
        self.infos = infos
        self.initialised = False

    def full_init(self):
        self.initialised = True

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, i):
        assert self.initialised
        return self.infos[i]


def test_boxes_from_config_edges(monkeypatch):
    from mmdet.registry import DATASETS
    infos = [
        dict(width=200, height=100, instances=[
            dict(bbox=[0, 0, 10, 20]),
            dict(bbox=[5, 5, 6, 6], ignore_flag=1),
            dict(bbox=[1, 1, 3, 3], ignore_flag=0)]),
        dict(width=200, height=100, instances=[
            dict(bbox=[0, 0, 1, 1], ignore_flag=1)]),
        dict(width=100, height=100),
    ]
    monkeypatch.setattr(DATASETS, 'build', lambda cfg: _Dataset(infos))
    logs = []
    monkeypatch.setattr(bs, 'print_log', lambda msg, **kw: logs.append(
        (msg, kw)))
    pipeline = [dict(type='RandomResize', scale=(100, 50)),
                dict(type='RandomFlip')]
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='X', pipeline=pipeline))))
    boxes, info = boxes_from_config(cfg, 'train')
    np.testing.assert_allclose(boxes, [[0, 0, 5, 10], [0.5, 0.5, 1.5, 1.5]])
    assert info == dict(dataset='_Dataset', num_images=3,
                        resizes=[pipeline[0]], factors=[(0.5, 0.5)])
    assert logs == [('Random resize in the pipeline: boxes use its nominal '
                     'scale', dict(logger='current'))]
    logs.clear()
    boxes, info = boxes_from_config(cfg, 'train', apply_resize=False)
    np.testing.assert_allclose(boxes, [[0, 0, 10, 20], [1, 1, 3, 3]])
    assert info['factors'] == [(1.0, 1.0)] and info['resizes'] == []
    assert logs == []
    # a deterministic resize is not logged
    cfg.train_dataloader.dataset.pipeline = [dict(type='Resize',
                                                  scale=(100, 50))]
    boxes_from_config(cfg, 'train')
    assert logs == []
    # no box at all
    monkeypatch.setattr(DATASETS, 'build', lambda cfg: _Dataset(infos[1:]))
    with pytest.raises(ValueError) as err:
        boxes_from_config(cfg, 'train')
    assert str(err.value) == 'The train dataset of the config has no boxes'
    for bad in (Config(dict()), Config(dict(val_dataloader=None))):
        with pytest.raises(ValueError) as err:
            boxes_from_config(bad)
        assert str(err.value) == 'The config has no val_dataloader'


def test_random_resize_keeps_the_ratio_when_asked():
    p = [dict(type='RandomChoiceResize', scales=[(100, 100)],
              keep_ratio=True)]
    assert pipeline_resize_factor(p, 200, 100) == (0.5, 0.5)
    p = [dict(type='RandomChoiceResize', scales=[(100, 100)])]
    assert pipeline_resize_factor(p, 200, 100) == (0.5, 1.0)


def test_boxes_from_config_order_scope_imports_and_factors(monkeypatch):
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope
    infos = [
        dict(width=300, height=300),  # no instance first: skipped
        dict(width=300, height=300, instances=[dict(bbox=[0, 0, 30, 60])]),
    ]
    monkeypatch.setattr(DATASETS, 'build', lambda cfg: _Dataset(infos))
    cfg = Config(dict(val_dataloader=dict(dataset=dict(
        type='X', pipeline=[dict(type='Resize', scale=(100, 100))]))))
    boxes, info = boxes_from_config(cfg)
    np.testing.assert_allclose(boxes, [[0, 0, 10, 20]])
    # factors rounded to 6 decimals
    assert info['factors'] == [(0.333333, 0.333333)]
    assert DefaultScope.get_current_instance().scope_name == 'mmdet'
    cfg.default_scope = 'mmengine'
    boxes_from_config(cfg)
    assert DefaultScope.get_current_instance().scope_name == 'mmengine'
    cfg.default_scope = 'mmdet'
    boxes_from_config(cfg)
    assert DefaultScope.get_current_instance().scope_name == 'mmdet'
    cfg.custom_imports = dict(imports=['wt40c_no_such_module'],
                              allow_failed_imports=False)
    with pytest.raises(ImportError):
        boxes_from_config(cfg)
