# Copyright (c) mmlesion contributors. All rights reserved.
"""Whole-scan inference of every shipped config whose test pipeline crops
the slice puts its findings where they are in the world: a scan with an
air border gives the findings of the same scan without one, at the same
world positions (the crop's offset added once, by the detector).

The configs are found, not listed: every config of ``configs/`` is loaded
and each transform of its test pipeline must be known as one that keeps
the image's pixel (0, 0) in place (:data:`STILL`: loaders, windowing,
packing, scaling) or one that crops it (:data:`CROPPING`); a new transform
fails :func:`test_every_test_transform_is_known` until it is put in one.
A cropping 2.5D config runs at tiny size (its own model family and test
settings, the demo configs' DenseNet, seeded weights); a 3D one is
refused by whole-scan inference, which reads 2.5D configs only.
"""
import copy
from typing import Dict, List

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmlesion.apis import init_lesion_detector
from mmlesion.apis.whole_scan.infer import ScanSteps, infer_volume
from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                               volume_settings_from_config)
from mmlesion.datasets.volumes import CTVolume
from mmlesion.testing import repo_root

#: Test-pipeline transforms that keep the image's pixel (0, 0) where it
#: is: loading, windowing, packing, and scaling (whose ``scale_factor``
#: every detector divides out).
STILL = frozenset({
    'LesionInferencerLoader', 'LoadDeepLesionSlices', 'LoadAnnotations',
    'WindowHU', 'Resize', 'ResampleToSpacing', 'PackDetInputs',
    'LoadCTVolume', 'PackVolumeDetInputs'
})
#: Test-pipeline transforms that crop the image (move its pixel (0, 0)).
CROPPING = frozenset({'ClipBlackBorder', 'CropToLungs'})
#: Left and top air border (pixels; and 5, 3 on the right and bottom).
BORDER = (16, 24)
#: The scan's voxel spacing (z, y, x) mm: the 2.5D configs' slice interval
#: and pixel spacing, so that resampling keeps the voxels.
SPACING = (2., .8, .8)
MULAN = 'lens/mulan_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice.py'

#: One step of the findings' 0.001 mm rounding, plus float noise.
ROUNDED = 1e-3 + 1e-6


def _file2dict_once(monkeypatch) -> None:
    """Parse each config file once while the test reads every config
    (their ``_base_`` files are shared; the merged configs are the same,
    each its own copy)."""
    parse = Config._file2dict
    done: Dict[tuple, tuple] = {}

    def once(filename, *args, **kwargs):
        key = (filename, args, tuple(sorted(kwargs.items())))
        if key not in done:
            done[key] = parse(filename, *args, **kwargs)
        return copy.deepcopy(done[key])

    monkeypatch.setattr(Config, '_file2dict', staticmethod(once))


@pytest.fixture(scope='module')
def shipped() -> Dict[str, Config]:
    """Every config of ``configs/`` (``_base_`` files aside), by path."""
    root = repo_root() / 'configs'
    with pytest.MonkeyPatch.context() as m:
        _file2dict_once(m)
        configs = {
            str(p.relative_to(root)): Config.fromfile(str(p))
            for p in sorted(root.rglob('*.py')) if '_base_' not in p.parts
        }
    assert len(configs) > 100
    return configs


def _test_transforms(cfg: Config) -> List[str]:
    """The types of the test pipeline (inside dataset wrappers)."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    while 'pipeline' not in dataset and (dataset.get('dataset')
                                         or dataset.get('datasets')):
        dataset = dataset.get('dataset') or dataset['datasets'][0]
    return [t['type'] for t in dataset.get('pipeline', [])]


def test_every_test_transform_is_known(shipped):
    unknown = sorted({(t, name) for name, cfg in shipped.items()
                      for t in _test_transforms(cfg)
                      if t not in STILL | CROPPING})
    assert not unknown, (
        'test-pipeline transforms not known to keep or to crop the image '
        f'(add each to STILL or CROPPING): {unknown}')


def _tiny(model: dict) -> dict:
    """The model at tiny size: the demo configs' DenseNet and 32-channel
    FPN, heads to match; at most 10 boxes of any score per slice."""
    if 'detector' in model:  # one detector per dataset
        _tiny(model['detector'])
        return model
    assert model['backbone']['type'] == 'MULANDenseNet', (
        'shrink this backbone too', model['backbone']['type'])
    model['backbone'].update(growth_rate=8, block_config=(2, 2, 2),
                             num_init_features=16, bn_size=2, init_cfg=None)
    model['neck'].update(in_channels=[32, 32, 32], out_channels=32)
    for head in (model.get('rpn_head'), model.get('bbox_head')):
        for key in ('in_channels', 'feat_channels'):
            if head is not None and key in head:
                head[key] = 32
    if 'roi_head' in model:
        model['roi_head']['bbox_roi_extractor']['out_channels'] = 32
        model['roi_head']['bbox_head'].update(in_channels=32,
                                              fc_out_channels=64)

    def few(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ('max_per_img', 'nms_pre'):
                    node[key] = min(value, 10 if key == 'max_per_img'
                                    else 50)
                elif key == 'score_thr':
                    node[key] = 0.  # random weights: weak scores
                else:
                    few(value)

    few(model.get('test_cfg'))
    return model


def _scans():
    """A synthetic scan (soft tissue to every edge, two brighter blobs)
    and the same scan in an air border, placed so that each voxel of the
    body has the same world position in both."""
    rng = np.random.default_rng(0)
    body = rng.normal(40., 15., (4, 48, 40)).astype(np.float32)
    zz, yy, xx = np.mgrid[:4, :48, :40]
    for cy, cx, r in ((16, 14, 7), (34, 28, 5)):
        body[((yy - cy)**2 + (xx - cx)**2 < r * r) & (zz > 0)] += 150.
    origin = np.array([-20., 30., 100.])
    left, top = BORDER
    framed = np.pad(body, ((0, 0), (top, 3), (left, 5)),
                    constant_values=-1000.)
    return (CTVolume(body, SPACING, origin),
            CTVolume(framed, SPACING,
                     origin - np.array([left * SPACING[2],
                                        top * SPACING[1], 0.])))


def _findings(model, volume, settings):
    result = infer_volume(model, volume, settings, DetectionSettings(
        batch_size=4, score_thr=0., show_progress=False, workers=0),
                          steps=ScanSteps(measure=False))
    return sorted(result.findings,
                  key=lambda f: (-f.score, f.slice_range, f.center_world))


def test_cropping_configs_find_the_same_world_positions(shipped):
    cropping = {name: cfg for name, cfg in shipped.items()
                if CROPPING & set(_test_transforms(cfg))}
    runs: Dict[str, list] = {}
    for name, cfg in cropping.items():
        if 'LoadDeepLesionSlices' not in _test_transforms(cfg):  # 3D
            with pytest.raises(ValueError, match='not a 2.5D config'):
                volume_settings_from_config(cfg, cfg_name=name)
            continue
        settings = volume_settings_from_config(cfg, cfg_name=name)
        assert CROPPING & {t['type'] for t in settings.pipeline}, name
        tiny = copy.deepcopy(cfg)
        tiny.model = _tiny(tiny.model.to_dict())
        # configs of one model and one pipeline compute the same: run once
        key = repr((tiny.model, settings))
        runs.setdefault(key, [tiny, settings, []])[2].append(name)
    assert sum(len(r[2]) for r in runs.values()) >= 17  # LENS, MULAN
    plain, framed = _scans()
    for tiny, settings, names in runs.values():
        torch.manual_seed(0)
        model = init_lesion_detector(tiny).model
        a = _findings(model, plain, settings)
        b = _findings(model, framed, settings)
        assert len(a) == len(b) > 0, names
        # world boxes are rounded to 0.001 mm (stack.py): two positions
        # equal to float noise may round one step apart
        for x, y in zip(a, b):
            np.testing.assert_allclose(y.bbox_world, x.bbox_world,
                                       atol=ROUNDED, rtol=0,
                                       err_msg=str(names))
            np.testing.assert_allclose(y.center_world, x.center_world,
                                       atol=ROUNDED, rtol=0)
            assert y.score == pytest.approx(x.score, abs=1e-5)
            assert y.slice_range == x.slice_range


def test_a_detector_that_leaves_its_boxes_in_the_crop_is_refused(shipped):
    """MULAN's config with mmdet's plain Faster R-CNN, which does not add
    the crop's offset back: refused, not a finding moved by the border."""
    cfg = copy.deepcopy(shipped[MULAN])
    cfg.model = _tiny(cfg.model.to_dict())
    assert cfg.model['type'] == 'UncroppedFasterRCNN'
    cfg.model['type'] = 'FasterRCNN'
    settings = volume_settings_from_config(cfg, cfg_name=MULAN)
    torch.manual_seed(0)
    model = init_lesion_detector(cfg).model
    with pytest.raises(ValueError, match=r'FasterRCNN: the test pipeline '
                       r'crops the image \(crop_offset \(16.0, 24.0\)'):
        _findings(model, _scans()[1], settings)
