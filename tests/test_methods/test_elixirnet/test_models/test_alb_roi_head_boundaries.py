# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`ALBRoIHead` (ElixirNet: the Non-local operator of
the Auto-lesion Block builds one graph over the proposals of *each image*,
so the box head needs the RoIs per image).

The RoI counts of ``rois_to_num_rois`` at their edges (two RoIs out of
order, a batch index equal to the number of images, one image), the count
of trailing images without RoIs in ``loss``, ``predict`` and the tensor
``forward`` (and its reset, even after an error), the RoI extractor fed
only its own levels, the shared head, the detached ``last_rois``,
``rescale`` passed on, and the error messages: the cases a small change of
the code would get wrong while ``test_alb_roi_head.py`` still passes
(docs/mutation_testing.md). A standalone RoI head on random features
(no backbone) keeps the file fast.
"""
import re
from typing import List, Optional, Sequence

import pytest
import torch
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.models import ALBRoIHead

STRIDES = (4, 8, 16, 32)


def _head(shared_head: bool = False) -> ALBRoIHead:
    """A tiny ALBRoIHead: 16-channel RoI features (64 into a ResNet-18
    stage-1 shared head, 128 out of it), ALBBBoxHead with one class."""
    register_all_modules()
    channels = 64 if shared_head else 16
    cfg = dict(type='ALBRoIHead',
               bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                       roi_layer=dict(type='RoIAlign',
                                                      output_size=7,
                                                      sampling_ratio=0),
                                       out_channels=channels,
                                       featmap_strides=list(STRIDES)),
               bbox_head=dict(type='ALBBBoxHead',
                              num_classes=1,
                              in_channels=128 if shared_head else 16,
                              roi_feat_size=7,
                              conv_out_channels=16,
                              bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                              target_means=[0., 0., 0., 0.],
                                              target_stds=[0.1, 0.1, 0.2,
                                                           0.2]),
                              reg_class_agnostic=False,
                              loss_cls=dict(type='CrossEntropyLoss',
                                            use_sigmoid=False,
                                            loss_weight=1.0),
                              loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
               train_cfg=dict(assigner=dict(type='MaxIoUAssigner',
                                            pos_iou_thr=0.5,
                                            neg_iou_thr=0.5,
                                            min_pos_iou=0.5,
                                            match_low_quality=False,
                                            ignore_iof_thr=-1),
                              sampler=dict(type='RandomSampler',
                                           num=8,
                                           pos_fraction=0.25,
                                           neg_pos_ub=-1,
                                           add_gt_as_proposals=True),
                              pos_weight=-1,
                              debug=False),
               test_cfg=dict(score_thr=0.0,
                             nms=dict(type='nms', iou_threshold=0.5),
                             max_per_img=20))
    if shared_head:
        cfg['shared_head'] = dict(type='ResLayer',
                                  depth=18,
                                  stage=1,
                                  stride=1,
                                  norm_eval=False)
    torch.manual_seed(0)
    return MODELS.build(ConfigDict(cfg))


def _feats(num_imgs: int, channels: int = 16, levels: int = 4) -> tuple:
    """Random features of 64x64 images at strides 4, 8, 16, 32 (64...)."""
    torch.manual_seed(1)
    return tuple(
        torch.randn(num_imgs, channels, 64 // 2**(i + 2), 64 // 2**(i + 2))
        for i in range(levels))


def _proposals(boxes: Sequence[Sequence[float]]) -> InstanceData:
    bboxes = torch.tensor(boxes, dtype=torch.float).reshape(-1, 4)
    return InstanceData(bboxes=bboxes, scores=torch.ones(len(bboxes)))


def _sample(
    gt_boxes: Sequence[Sequence[float]],
    scale_factor=(1., 1.)) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64),
                                         ori_shape=(64, 64),
                                         scale_factor=scale_factor,
                                         batch_input_shape=(64, 64)))
    gt = torch.tensor(gt_boxes, dtype=torch.float).reshape(-1, 4)
    sample.gt_instances = InstanceData(bboxes=gt,
                                       labels=torch.zeros(len(gt),
                                                          dtype=torch.long))
    return sample


class _Spy:
    """Records ``num_rois`` (and the head's image count) of each box-head
    call; raises instead when ``fail``."""

    def __init__(self, head: ALBRoIHead, fail: bool = False) -> None:
        self.head = head
        self.forward = head.bbox_head.forward
        self.counts: List[List[int]] = []
        self.num_imgs: List[Optional[int]] = []
        self.fail = fail
        head.bbox_head.forward = self

    def __call__(self, x, num_rois=None):
        self.counts.append(list(num_rois))
        self.num_imgs.append(self.head._num_imgs)
        if self.fail:
            raise RuntimeError('box head failed')
        return self.forward(x, num_rois=num_rois)


TWO_THEN_NONE = [[[4., 4., 30., 30.], [20., 20., 50., 50.]], []]


# ---------------------------------------------------------------------- #
# rois_to_num_rois
# ---------------------------------------------------------------------- #
def _rois(inds: Sequence[int]) -> torch.Tensor:
    rois = torch.tensor([[0., 1., 1., 5., 5.]]).repeat(len(inds), 1)
    rois[:, 0] = torch.tensor(inds, dtype=torch.float)
    return rois


GROUPING = re.escape('ALBRoIHead needs the RoIs grouped by image in '
                     'increasing batch index (as bbox2roi makes them)')


@pytest.mark.parametrize('inds', [[1, 0], [0, 2, 1], [0, 1, 1, 0]])
def test_rois_out_of_order(inds: List[int]):
    """Any decrease of the batch index is refused: two RoIs, or one in the
    middle or at the end of the list."""
    with pytest.raises(ValueError, match=GROUPING):
        ALBRoIHead.rois_to_num_rois(_rois(inds))


def test_rois_in_order_edges():
    """One RoI, repeated indices, no RoI at all (no count without
    ``num_imgs``; ``num_imgs=0`` is the same as none)."""
    assert ALBRoIHead.rois_to_num_rois(_rois([1])) == [0, 1]
    assert ALBRoIHead.rois_to_num_rois(_rois([0, 0, 1, 1])) == [2, 2]
    assert ALBRoIHead.rois_to_num_rois(torch.zeros(0, 5)) == []
    assert ALBRoIHead.rois_to_num_rois(_rois([3]), num_imgs=0) == [0, 0, 0, 1]


def test_batch_index_range_is_half_open():
    """Indices 0 .. num_imgs - 1 are images; ``num_imgs`` itself is not,
    also for a single image."""
    assert ALBRoIHead.rois_to_num_rois(_rois([0, 0]), num_imgs=1) == [2]
    assert ALBRoIHead.rois_to_num_rois(_rois([0, 1]), num_imgs=2) == [1, 1]
    msg = re.escape('RoI batch index 1 is out of range for 1 images')
    with pytest.raises(ValueError, match=msg):
        ALBRoIHead.rois_to_num_rois(_rois([0, 1]), num_imgs=1)


# ---------------------------------------------------------------------- #
# construction
# ---------------------------------------------------------------------- #
def test_without_a_box_head_nothing_is_checked():
    """A RoI head without box head (``with_bbox`` False) builds."""
    head = ALBRoIHead()
    assert not head.with_bbox
    assert head._num_imgs is None and head.last_rois is None


def test_refusal_message_names_the_head():
    register_all_modules()
    msg = re.escape('ALBRoIHead passes num_rois to its bbox_head, but '
                    'Shared2FCBBoxHead.forward has no num_rois argument; use '
                    'ALBBBoxHead/RTMBBoxHead or StandardRoIHead')
    with pytest.raises(TypeError, match=msg):
        MODELS.build(
            dict(type='ALBRoIHead',
                 bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                         roi_layer=dict(type='RoIAlign',
                                                        output_size=7),
                                         out_channels=16,
                                         featmap_strides=list(STRIDES)),
                 bbox_head=dict(type='Shared2FCBBoxHead',
                                in_channels=16,
                                fc_out_channels=16,
                                roi_feat_size=7,
                                num_classes=1)))


def test_positional_arguments_reach_the_standard_head():
    """``ALBRoIHead(extractor, box_head)`` as ``StandardRoIHead(...)``."""
    register_all_modules()
    extractor = dict(type='SingleRoIExtractor',
                     roi_layer=dict(type='RoIAlign', output_size=7),
                     out_channels=16,
                     featmap_strides=list(STRIDES))
    box_head = dict(type='ALBBBoxHead',
                    num_classes=1,
                    in_channels=16,
                    roi_feat_size=7,
                    conv_out_channels=16)
    head = ALBRoIHead(ConfigDict(extractor), ConfigDict(box_head))
    assert head.with_bbox
    assert head.bbox_roi_extractor.featmap_strides == list(STRIDES)


def test_fresh_head_has_no_state():
    head = _head()
    assert head._num_imgs is None and head.last_rois is None


# ---------------------------------------------------------------------- #
# _bbox_forward
# ---------------------------------------------------------------------- #
def test_extractor_gets_only_its_levels():
    """An FPN gives 5 levels, the extractor has 4: a RoI large enough for
    a 5th level (sqrt(wh) >= 56 * 2^4) still goes to the 4th."""
    head = _head().eval()
    x = _feats(1, levels=5)
    rois = torch.tensor([[0., 0., 0., 1000., 1000.], [0., 8., 8., 40., 40.]])
    with torch.no_grad():
        res = head._bbox_forward(x, rois)
        expected = head.bbox_roi_extractor(x[:4], rois)
    torch.testing.assert_close(res['bbox_feats'], expected)
    assert res['cls_score'].shape == (2, 2)
    assert res['bbox_pred'].shape == (2, 4)


def test_shared_head_output_is_the_box_features():
    """With a shared head, ``bbox_feats`` (returned and fed to the box
    head) are the shared head's output."""
    head = _head(shared_head=True).eval()
    x = _feats(1, channels=64)
    rois = torch.tensor([[0., 4., 4., 30., 30.], [0., 8., 8., 40., 40.]])
    with torch.no_grad():
        res = head._bbox_forward(x, rois)
        expected = head.shared_head(head.bbox_roi_extractor(x, rois))
        cls_score, _ = head.bbox_head(expected, num_rois=[2])
    assert expected.shape == (2, 128, 7, 7)
    torch.testing.assert_close(res['bbox_feats'], expected)
    torch.testing.assert_close(res['cls_score'], cls_score)


def test_last_rois_are_detached_and_counts_follow_the_rois():
    head = _head()
    spy = _Spy(head)
    rois = torch.tensor([[0., 4., 4., 30., 30.], [1., 8., 8., 40., 40.],
                         [1., 2., 2., 20., 20.]],
                        requires_grad=True)
    head._bbox_forward(_feats(2), rois)
    assert spy.counts == [[1, 2]]
    assert not head.last_rois.requires_grad
    torch.testing.assert_close(head.last_rois, rois.detach())


# ---------------------------------------------------------------------- #
# loss / predict / forward: every image counted, state reset
# ---------------------------------------------------------------------- #
def test_loss_counts_a_trailing_image_without_rois():
    head = _head()
    spy = _Spy(head)
    samples = [_sample([[6., 6., 28., 28.]]), _sample([])]
    losses = head.loss(_feats(2), [_proposals(b) for b in TWO_THEN_NONE],
                       samples)
    assert {'loss_cls', 'loss_bbox'} <= set(losses)
    assert spy.num_imgs == [2]
    assert len(spy.counts[0]) == 2 and spy.counts[0][1] == 0
    assert spy.counts[0][0] > 0
    assert head._num_imgs is None


def test_predict_counts_a_trailing_image_without_rois():
    head = _head().eval()
    spy = _Spy(head)
    samples = [_sample([]), _sample([])]
    with torch.no_grad():
        results = head.predict(_feats(2),
                               [_proposals(b) for b in TWO_THEN_NONE], samples)
    assert spy.counts == [[2, 0]] and spy.num_imgs == [2]
    assert len(results) == 2 and len(results[1].bboxes) == 0
    assert head._num_imgs is None


def test_predict_passes_rescale_on():
    """``rescale=True`` maps the boxes back by ``scale_factor``."""
    head = _head().eval()
    proposals = [_proposals(TWO_THEN_NONE[0])]
    with torch.no_grad():
        plain = head.predict(_feats(1), proposals,
                             [_sample([], scale_factor=(2., 4.))])[0]
        scaled = head.predict(_feats(1),
                              proposals, [_sample([], scale_factor=(2., 4.))],
                              rescale=True)[0]
    assert len(plain.bboxes) > 0
    torch.testing.assert_close(scaled.bboxes,
                               plain.bboxes / torch.tensor([2., 4., 2., 4.]))


def test_forward_counts_a_trailing_image_without_rois():
    """The tensor-mode forward (used by ``get_flops``/export) counts every
    image too, and returns the box branch's outputs."""
    head = _head().eval()
    spy = _Spy(head)
    proposals = [_proposals(b) for b in TWO_THEN_NONE + [[]]]
    with torch.no_grad():
        cls_score, bbox_pred = head.forward(_feats(3), proposals)
    assert spy.counts == [[2, 0, 0]] and spy.num_imgs == [3]
    assert cls_score.shape == (2, 2) and bbox_pred.shape == (2, 4)
    assert head._num_imgs is None


@pytest.mark.parametrize('mode', ['loss', 'predict', 'forward'])
def test_image_count_is_reset_after_an_error(mode: str):
    """A failing box head leaves no image count behind (the next call,
    e.g. ``_bbox_forward`` from a tool, must not see a stale one)."""
    head = _head()
    _Spy(head, fail=True)
    proposals = [_proposals(b) for b in TWO_THEN_NONE]
    samples = [_sample([[6., 6., 28., 28.]]), _sample([])]
    with pytest.raises(RuntimeError, match='box head failed'):
        if mode == 'loss':
            head.loss(_feats(2), proposals, samples)
        elif mode == 'predict':
            head.predict(_feats(2), proposals, samples)
        else:
            head.forward(_feats(2), proposals, samples)
    assert head._num_imgs is None


class _SamplesRecorder(StandardRoIHead):
    """Sits after ALBRoIHead in a subclass's MRO and records what
    ``forward`` is given."""

    seen: list = []

    def forward(self, x, rpn_results_list, batch_data_samples=None):
        type(self).seen.append(batch_data_samples)
        return super().forward(x, rpn_results_list, batch_data_samples)


class _RecordingALBRoIHead(ALBRoIHead, _SamplesRecorder):
    """ALBRoIHead with :class:`_SamplesRecorder` next in its MRO."""


def test_forward_passes_the_samples_on():
    """Cooperative inheritance: ALBRoIHead's tensor-mode ``forward`` hands
    ``batch_data_samples`` to the next class in the MRO (a subclass may
    mix in a head that reads them)."""
    head = _head()
    head.__class__ = _RecordingALBRoIHead
    _SamplesRecorder.seen = []
    samples = [_sample([]), _sample([])]
    with torch.no_grad():
        head.forward(_feats(2), [_proposals(b) for b in TWO_THEN_NONE],
                     samples)
    assert len(_SamplesRecorder.seen) == 1
    assert _SamplesRecorder.seen[0] is samples
