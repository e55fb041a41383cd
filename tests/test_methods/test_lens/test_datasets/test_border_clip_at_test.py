# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS clips the black border at test as in training (Sec. VI-A: "The black
borders in images were clipped", in all images): a slice with a border gives
the boxes of the same slice without one, moved by the border, in the
coordinates of the whole slice (the 2D FROC, the 3D evaluation and mining all
read them so)."""
import copy
import functools

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.registry import MODELS
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.methods.lens.mining.proposals import embed_boxes
from mmlesion.testing import get_config

FULL = ('lens/lens-afp-multi-fusion_densenet121-2.5d_fpn_1xb4-radam-8e_'
        'deeplesion-luna16-lits-nihln-9slice.py')
TINY = {
    'LENS': 'lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_'
    'deeplesion-demo-2sets.py',
    'UncroppedFasterRCNN': 'lens/demo/mulan_densenet-tiny_fpn_radam-12e_'
    'deeplesion-demo-partial.py',
}
#: left, top, right, bottom air border (pixels)
BORDER = (16, 24, 20, 8)


def _body(seed: int = 0) -> np.ndarray:
    """(64, 56, 9) HU: soft tissue to every edge, two brighter lesions."""
    rng = np.random.default_rng(seed)
    img = rng.normal(40., 15., size=(64, 56, 9)).astype(np.float32)
    yy, xx = np.mgrid[:64, :56]
    for cy, cx, r in ((22, 20, 8), (45, 38, 5)):
        img[(yy - cy)**2 + (xx - cx)**2 < r * r] += 120.
    return img


def _bordered(img: np.ndarray) -> np.ndarray:
    left, top, right, bottom = BORDER
    return np.pad(img, ((top, bottom), (left, right), (0, 0)),
                  constant_values=-1000.)


@functools.lru_cache(maxsize=None)
def _model(kind: str):
    cfg = get_config(TINY[kind])
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.type = kind
    model_cfg.test_cfg.rcnn.score_thr = 0.  # random weights: weak boxes
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    model.init_weights()
    return model.eval()


def _pack(pipeline, img):
    with DefaultScope.overwrite_default_scope('mmdet'):
        packed = pipeline(dict(img=img, img_path=None, spacing=1.,
                               slice_interval=2., instances=[]))
    return dict(inputs=[packed['inputs']],
                data_samples=[packed['data_samples']])


@pytest.fixture(scope='module')
def pipeline():
    steps = get_config(FULL).test_dataloader.dataset.pipeline
    assert [t.type for t in steps].count('ClipBlackBorder') == 1
    with DefaultScope.overwrite_default_scope('mmdet'):
        return Compose(steps)


@pytest.mark.parametrize('kind', sorted(TINY))
def test_bordered_slice_gives_the_same_boxes_moved(pipeline, kind):
    model = _model(kind)
    img = _body()
    with torch.no_grad():
        (plain, ) = model.test_step(_pack(pipeline, img))
        (framed, ) = model.test_step(_pack(pipeline, _bordered(img)))
    assert framed.metainfo['crop_offset'] == (BORDER[0], BORDER[1])
    assert framed.metainfo['ori_shape'] == (96, 92)
    a, b = plain.pred_instances, framed.pred_instances
    assert len(a.bboxes) > 0
    shift = torch.tensor(BORDER[:2], dtype=torch.float32).repeat(2)
    torch.testing.assert_close(b.bboxes, a.bboxes + shift, atol=1e-3,
                               rtol=0)
    torch.testing.assert_close(b.scores, a.scores)


def test_mining_embeds_the_same_lesion_either_way(pipeline):
    """Mining's embeddings of a box given in whole-slice coordinates
    (:func:`embed_boxes`) and of the experts' own boxes agree with and
    without the border."""
    model = _model('LENS')
    img = _body()
    box = np.array([[12., 14., 28., 30.]], np.float32)
    left, top = BORDER[:2]
    out = []
    for image, offset in ((img, (0, 0)), (_bordered(img), (left, top))):
        data = model.data_preprocessor(_pack(pipeline, image), False)
        moved = box + np.tile(np.array(offset, np.float32), 2)
        with torch.no_grad():
            experts = model.predict_experts(data['inputs'],
                                            data['data_samples'],
                                            experts=[0], rescale=True,
                                            with_embeddings=True)
        out.append((embed_boxes(model, data, moved), experts[0][0]))
    np.testing.assert_allclose(out[0][0], out[1][0], atol=1e-5)
    torch.testing.assert_close(out[0][1].embeddings, out[1][1].embeddings,
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(
        out[1][1].bboxes,
        out[0][1].bboxes + torch.tensor([left, top] * 2,
                                        dtype=torch.float32), atol=1e-3,
        rtol=0)
