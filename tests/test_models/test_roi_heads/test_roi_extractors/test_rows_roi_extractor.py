# Copyright (c) mmlesion contributors. All rights reserved.
"""``RowsRoIExtractor`` gives what mmdet's ``SingleRoIExtractor`` gives, and
the same gradients: one level or four, RoIs on every level or some,
``roi_scale_factor``, no RoI at all; a Faster R-CNN training step with it
has mmdet's losses and gradients; another RoI layer is refused."""
import copy

import pytest
import torch
from mmdet.registry import MODELS

from mmlesion.models.roi_heads import RowsRoIExtractor
from mmlesion.testing import get_config
from tests.test_apis.whole_scan.test_roi_align import _rois

LAYER = dict(type='RoIAlign', output_size=7, sampling_ratio=0)


def _pair(strides, **layer):
    cfg = dict(roi_layer=dict(LAYER, **layer), out_channels=8,
               featmap_strides=list(strides))
    return (MODELS.build(dict(cfg, type='SingleRoIExtractor')),
            MODELS.build(dict(cfg, type='RowsRoIExtractor')))


def _feats(strides, image=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 8, image // s, image // s, generator=g)
            for s in strides]


def _both(mmdet, rows, feats, rois, **kwargs):
    """Each extractor's output and the features' gradients under one
    random upstream gradient."""
    out = []
    for extractor in (mmdet, rows):
        leaves = [f.clone().requires_grad_() for f in feats]
        pooled = extractor(tuple(leaves), rois, **kwargs)
        grad = torch.randn(pooled.shape,
                           generator=torch.Generator().manual_seed(1))
        (pooled * grad).sum().backward()
        out.append((pooled.detach(), [f.grad for f in leaves]))
    return out


@pytest.mark.parametrize('strides,kwargs', [
    ((4, ), {}),
    ((4, 8, 16, 32), {}),
    ((4, 8, 16, 32), dict(roi_scale_factor=1.5)),
])
@pytest.mark.parametrize('aligned', [True, False])
def test_same_pooling_and_gradients_as_mmdet(strides, kwargs, aligned):
    mmdet, rows = _pair(strides, aligned=aligned)
    feats = _feats(strides)
    rois = _rois(60, 64, seed=2)
    rois[:20, 1:] *= 3.  # large RoIs: the coarse levels get some
    (want, want_grads), (got, got_grads) = _both(mmdet, rows, feats, rois,
                                                 **kwargs)
    assert got.shape == want.shape == (60, 8, 7, 7)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    for g, w in zip(got_grads, want_grads):
        assert w is not None and g is not None
        assert torch.allclose(g, w, atol=1e-4), (g - w).abs().max()


def test_levels_without_rois_and_no_rois():
    strides = (4, 8, 16, 32)
    mmdet, rows = _pair(strides)
    feats = _feats(strides)
    small = _rois(10, 20, seed=3)  # all on the finest level
    (want, want_grads), (got, got_grads) = _both(mmdet, rows, feats, small)
    assert torch.allclose(got, want, atol=1e-5)
    # the unused levels are in the graph (zero gradients), as mmdet's
    assert all(g is not None and not g.any() for g in got_grads[1:])
    none = rows(tuple(feats), torch.zeros(0, 5))
    assert none.shape == (0, 8, 7, 7)


def test_other_layers_are_refused():
    for layer in (dict(type='RoIPool', output_size=7),
                  dict(LAYER, pool_mode='max')):
        with pytest.raises(ValueError, match='use SingleRoIExtractor'):
            MODELS.build(dict(type='RowsRoIExtractor', roi_layer=layer,
                              out_channels=8, featmap_strides=[4]))


def test_a_training_step_has_mmdets_losses_and_gradients():
    """The demo Faster R-CNN's losses and gradients on one batch, with
    either extractor, the same weights and sampling."""
    from projects.study_demo.config_smoke import batch_2d
    cfg = get_config('demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py')
    results = []
    for kind in ('SingleRoIExtractor', 'RowsRoIExtractor'):
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.roi_head.bbox_roi_extractor.type = kind
        torch.manual_seed(0)
        model = MODELS.build(model_cfg)
        model.init_weights()
        model.train()
        data = model.data_preprocessor(batch_2d(0, 2, 128, 3), True)
        torch.manual_seed(1)  # the samplers' draws
        total, logged = model.parse_losses(
            model.loss(data['inputs'], data['data_samples']))
        total.backward()
        results.append(({k: float(v) for k, v in logged.items()},
                        model.backbone.conv1.weight.grad.clone()))
        assert isinstance(model.roi_head.bbox_roi_extractor,
                          RowsRoIExtractor) == (kind == 'RowsRoIExtractor')
    (want, want_grad), (got, got_grad) = results
    assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert torch.allclose(got_grad, want_grad, rtol=1e-3, atol=1e-6)


def test_the_backend_exports_a_box_head_behind_it():
    """The whole-scan backend takes the box branch behind either extractor
    (its RoIAlign the same), and says why not behind another."""
    from mmlesion.apis.whole_scan.backend.box_head import _box_head_of
    cfg = get_config('demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py')
    for kind in ('SingleRoIExtractor', 'RowsRoIExtractor'):
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.roi_head.bbox_roi_extractor.type = kind
        model = MODELS.build(model_cfg)
        assert _box_head_of(model) == (model.roi_head, '')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.roi_head.bbox_roi_extractor.roi_layer = dict(
        type='RoIPool', output_size=7)
    head, why = _box_head_of(MODELS.build(model_cfg))
    assert head is None and 'not mmdet\'s SingleRoIExtractor' in why
