# Copyright (c) mmlesion contributors. All rights reserved.
"""The CPU path's RPN proposals equal mmdet's own, box for box and score for
score, on a full-size config's RPN head; only mmdet's own ``RPNHead`` takes
them, and the backend's detach gives the head its own back."""
import pytest
import torch
from torch import nn

from mmlesion.apis.whole_scan.backend import detach_backend
from mmlesion.apis.whole_scan.backend.proposals import attach_proposals
from mmlesion.testing import get_config

R50_CFG = 'elixirnet/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'


def _rpn_head(**test_cfg):
    from mmdet.registry import MODELS
    model = get_config(R50_CFG).model
    head_cfg = model.rpn_head
    head_cfg.update(train_cfg=None, test_cfg=model.test_cfg.rpn)
    head_cfg.test_cfg.update(test_cfg)
    return MODELS.build(head_cfg).eval()


def _maps(head, hw=(416, 384), batch=2, seed=0):
    """Random RPN maps whose scores all differ (ties may come in either
    order)."""
    generator = torch.Generator().manual_seed(seed)
    shapes = [(batch, head.num_base_priors, -(-hw[0] // s[0]),
               -(-hw[1] // s[0])) for s in head.prior_generator.strides]
    sizes = [torch.Size(shape).numel() for shape in shapes]
    logits = torch.linspace(-4, 4, sum(sizes))[torch.randperm(
        sum(sizes), generator=generator)]
    cls = [part.reshape(shape)
           for part, shape in zip(logits.split(sizes), shapes)]
    reg = [torch.randn(batch, head.num_base_priors * 4, *c.shape[2:],
                       generator=generator) * .2 for c in cls]
    metas = [dict(img_shape=hw, scale_factor=(1., 1.))] * batch
    return cls, reg, metas


@pytest.mark.parametrize('test_cfg', [{}, dict(nms_pre=300, min_bbox_size=4,
                                               max_per_img=50)])
def test_the_proposals_equal_mmdets(test_cfg):
    head = _rpn_head(**test_cfg)
    cls, reg, metas = _maps(head)
    with torch.no_grad():
        expected = head.predict_by_feat(cls, reg, batch_img_metas=metas)
        assert attach_proposals(head, 'marker')
        got = head.predict_by_feat(cls, reg, batch_img_metas=metas)
    for a, b in zip(got, expected):
        assert len(b) > 0 and len(a) == len(b)
        assert torch.equal(a.bboxes, b.bboxes)
        assert torch.equal(a.scores, b.scores)
        assert torch.equal(a.labels, b.labels)
    # what a two-stage predict never asks stays mmdet's
    with torch.no_grad():
        rescaled = head.predict_by_feat(cls, reg, batch_img_metas=metas,
                                        rescale=True)
    assert torch.equal(rescaled[0].bboxes, expected[0].bboxes)


def test_only_mmdets_own_rpn_head_and_detach_gives_it_back():
    from mmdet.models.dense_heads import RPNHead

    class OtherProposals(RPNHead):
        """A subclass: its proposals may differ from mmdet's."""

    other = _rpn_head()
    other.__class__ = OtherProposals
    assert not attach_proposals(other, 'marker')
    assert '_predict_by_feat_single' not in other.__dict__

    holder = nn.Module()
    holder.rpn_head = _rpn_head()
    assert attach_proposals(holder.rpn_head, 'marker')
    assert '_predict_by_feat_single' in holder.rpn_head.__dict__
    detach_backend(holder)
    assert '_predict_by_feat_single' not in holder.rpn_head.__dict__
