# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`LesionSegHead` (Improved RetinaNet, Sec. 2.2: "two
more upsampling layers [...] and a segmentation prediction layer", trained
with focal loss on the GrabCut masks).

The defaults and the weight init (RetinaNet's ``std=0.01`` and prior bias),
the configs reaching the hidden convs, the open interval of ``prior_prob``,
the bilinear resize of coarse logits to ``batch_input_shape`` (``(H, W)``,
``align_corners=False``), masks taller than wide, ``img_shape`` with a
channel entry or missing, Tensor masks, the normaliser of at least 1, the
count under a process group, and the error messages: the cases a small
change of the code would get wrong while ``test_lesion_seg_head.py`` still
passes (docs/mutation_testing.md).
"""
import math
import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmdet.models.losses import FocalLoss
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmlesion.methods.retinanet_lesion.models import LesionSegHead

#: sigmoid focal loss (gamma 2, alpha 0.25) of a logit 0 on a background
#: pixel: (1 - alpha) * p^2 * -log(1 - p) with p = 0.5.
NEG_AT_ZERO = 0.75 * 0.25 * math.log(2)


def _sample(masks, metainfo: Optional[dict] = None) -> DetDataSample:
    """A sample whose ``gt_instances.masks`` are ``masks`` (array -> mmdet
    ``BitmapMasks``; a Tensor is kept as is)."""
    sample = DetDataSample(metainfo=metainfo or {})
    gt = InstanceData()
    gt.masks = (BitmapMasks(masks, masks.shape[-2], masks.shape[-1])
                if isinstance(masks, np.ndarray) else masks)
    sample.gt_instances = gt
    return sample


def _zero_masks(shape: Sequence[int]) -> np.ndarray:
    return np.zeros(shape, np.uint8)


# ---------------------------------------------------------------------- #
# construction
# ---------------------------------------------------------------------- #
def test_defaults():
    """One 3x3 conv of 64 channels with ReLU and no norm, then the 1x1
    prediction conv; focal loss normalised by the lesion pixels, prior
    0.01 (RetinaNet's)."""
    head = LesionSegHead(in_channels=8)
    assert (head.in_channels, head.feat_channels) == (8, 64)
    assert (head.loss_normalizer, head.prior_prob) == ('foreground', 0.01)
    assert len(head.convs) == 1
    conv = head.convs[0]
    assert type(conv.conv) is nn.Conv2d
    assert (conv.conv.in_channels, conv.conv.out_channels) == (8, 64)
    assert conv.conv.kernel_size == (3, 3) and conv.conv.padding == (1, 1)
    assert conv.norm_cfg is None and not conv.with_norm
    assert isinstance(conv.activate, nn.ReLU)
    assert head.conv_seg.in_channels == 64
    assert isinstance(head.loss_seg, FocalLoss)
    assert (head.loss_seg.gamma, head.loss_seg.alpha) == (2.0, 0.25)


def test_conv_norm_act_configs_reach_every_hidden_conv():
    """``conv_cfg``, ``norm_cfg`` and ``act_cfg`` go to each hidden
    ``ConvModule`` (none of them is ``ConvModule``'s default)."""
    head = LesionSegHead(in_channels=8,
                         feat_channels=4,
                         num_convs=2,
                         conv_cfg=dict(type='Conv2dAdaptivePadding'),
                         norm_cfg=dict(type='BN'),
                         act_cfg=dict(type='LeakyReLU'))
    assert len(head.convs) == 2
    assert head.convs[1].conv.in_channels == 4
    for conv in head.convs:
        assert isinstance(conv.conv, Conv2dAdaptivePadding)
        assert isinstance(conv.norm, nn.BatchNorm2d)
        assert isinstance(conv.activate, nn.LeakyReLU)
    no_act = LesionSegHead(in_channels=8, feat_channels=4, act_cfg=None)
    assert not no_act.convs[0].with_activation


def test_init_is_retinanets():
    """Hidden convs N(0, 0.01) with zero bias, prediction conv N(0, 0.01)
    with the prior bias -log((1 - pi) / pi) (RetinaNet, Sec. 4.1)."""
    torch.manual_seed(0)
    head = LesionSegHead(in_channels=8, feat_channels=16)
    head.init_weights()
    hidden = head.convs[0].conv
    assert 0.008 < float(hidden.weight.detach().std()) < 0.012  # 1152 weights
    assert not bool(hidden.bias.any())
    seg_std = float(head.conv_seg.weight.detach().std())  # 16 weights
    assert 0.004 < seg_std < 0.02
    torch.testing.assert_close(head.conv_seg.bias,
                               torch.tensor([-math.log(0.99 / 0.01)]))


@pytest.mark.parametrize('prior_prob', [0., 1., 1.5, -0.1])
def test_prior_prob_outside_the_open_interval(prior_prob: float):
    """A probability of 0 or 1 gives an infinite bias: refused."""
    msg = re.escape('LesionSegHead: prior_prob must be in (0, 1), got '
                    f'{prior_prob}')
    with pytest.raises(ValueError, match=msg):
        LesionSegHead(in_channels=4, prior_prob=prior_prob)


def test_prior_prob_inside_the_open_interval():
    head = LesionSegHead(in_channels=4, prior_prob=0.999)
    head.init_weights()
    assert head.prior_prob == 0.999
    torch.testing.assert_close(head.conv_seg.bias.sigmoid(),
                               torch.tensor([0.999]))


def test_loss_normalizer_message():
    msg = re.escape("LesionSegHead: loss_normalizer must be 'foreground' or "
                    "'pixels', got 'mean'")
    with pytest.raises(ValueError, match=msg):
        LesionSegHead(in_channels=4, loss_normalizer='mean')


# ---------------------------------------------------------------------- #
# resize to the network input
# ---------------------------------------------------------------------- #
def test_coarse_logits_resized_bilinearly_to_the_batch_input():
    """Logits of a coarser level are resized to ``batch_input_shape``
    with ``align_corners=False`` (half-pixel centres): a 2x2 map
    [[0, 1], [2, 3]] becomes [0, .25, .75, 1] on its first row."""
    logits = torch.arange(4.).view(1, 1, 2, 2)
    meta = dict(batch_input_shape=(4, 4), img_shape=(4, 4))
    probs = LesionSegHead(in_channels=4).predict_by_feat(
        logits, [_sample(_zero_masks((0, 4, 4)), meta)])[0]
    expected = torch.tensor([[0., .25, .75, 1.], [.5, .75, 1.25, 1.5],
                             [1.5, 1.75, 2.25, 2.5], [2., 2.25, 2.75, 3.]])
    torch.testing.assert_close(probs, expected.sigmoid())


def test_batch_input_shape_is_height_then_width():
    """A tall batch (H=6, W=4) from 3x2 logits: (6, 4), not (4, 4)."""
    logits = torch.zeros(1, 1, 3, 2)
    meta = dict(batch_input_shape=(6, 4), img_shape=(6, 4))
    head = LesionSegHead(in_channels=4)
    probs = head.predict_by_feat(logits,
                                 [_sample(_zero_masks((0, 6, 4)), meta)])
    assert probs[0].shape == (6, 4)
    loss = head.loss_by_feat(logits, [_sample(_zero_masks(
        (0, 6, 4)), meta)])['loss_seg']
    # 24 background pixels at logit 0, no lesion: divided by 1
    torch.testing.assert_close(loss, torch.tensor(24 * NEG_AT_ZERO))


def test_without_batch_input_shape_the_logits_keep_their_size():
    """No ``batch_input_shape``: the logits' own size is the input's."""
    logits = torch.zeros(1, 1, 3, 5)
    probs = LesionSegHead(in_channels=4).predict_by_feat(
        logits, [_sample(_zero_masks((0, 3, 5)), dict(img_shape=(3, 5)))])
    assert probs[0].shape == (3, 5)


# ---------------------------------------------------------------------- #
# targets
# ---------------------------------------------------------------------- #
def test_tall_mask_keeps_its_lower_rows():
    """A 24x20 mask (taller than wide) in a 32x32 batch: its rows 20-23
    are kept (rows are bounded by the mask's height, not its width)."""
    m = _zero_masks((1, 24, 20))
    m[0, 20:24, 0:4] = 1
    fg, _ = LesionSegHead(in_channels=4).get_targets(
        [_sample(m, dict(img_shape=(24, 20)))], (32, 32), torch.device('cpu'))
    assert int(fg.sum()) == 16 and bool(fg[0, 20:24, 0:4].all())


def test_mask_larger_than_the_batch_is_cropped():
    m = _zero_masks((1, 10, 12))
    m[0, 6:10, 6:12] = 1
    fg, valid = LesionSegHead(in_channels=4).get_targets(
        [_sample(m, dict(img_shape=(10, 12)))], (8, 8), torch.device('cpu'))
    assert fg.shape == (1, 8, 8) and bool(valid.all())
    assert int(fg.sum()) == 2 * 2 and bool(fg[0, 6:8, 6:8].all())


def test_img_shape_with_channels_and_missing():
    """``img_shape`` may carry a channel entry (h, w, c): only (h, w) is
    read; without ``img_shape`` the whole batch is valid."""
    head = LesionSegHead(in_channels=4)
    samples = [
        _sample(_zero_masks((0, 6, 5)), dict(img_shape=(6, 5, 3))),
        _sample(_zero_masks((0, 8, 8)))
    ]
    _, valid = head.get_targets(samples, (8, 8), torch.device('cpu'))
    assert int(valid[0].sum()) == 30 and bool(valid[0, :6, :5].all())
    assert bool(valid[1].all())
    probs = head.predict_by_feat(torch.zeros(2, 1, 8, 8), samples)
    assert probs[0].shape == (6, 5) and probs[1].shape == (8, 8)


def test_tensor_masks():
    """``gt_instances.masks`` as a Tensor (N, H, W) of 0/1: its union."""
    masks = torch.zeros(2, 8, 8, dtype=torch.uint8)
    masks[0, 0:2, 0:2] = 1
    masks[1, 1:3, 1:3] = 1
    fg, _ = LesionSegHead(in_channels=4).get_targets(
        [_sample(masks, dict(img_shape=(8, 8)))], (8, 8), torch.device('cpu'))
    assert fg.dtype == torch.bool and int(fg.sum()) == 4 + 4 - 1


def test_masks_of_wrong_rank_message():
    msg = re.escape('LesionSegHead: gt masks must be (N, H, W), got (8, 8)')
    with pytest.raises(ValueError, match=msg):
        LesionSegHead(in_channels=4).get_targets(
            [_sample(torch.zeros(8, 8), dict(img_shape=(8, 8)))], (8, 8),
            torch.device('cpu'))


def _no_masks(metainfo: dict) -> DetDataSample:
    sample = DetDataSample(metainfo=metainfo)
    sample.gt_instances = InstanceData(bboxes=torch.zeros(0, 4))
    return sample


@pytest.mark.parametrize('img_path,name', [('ct/0001.png', 'ct/0001.png'),
                                           (None, '1')])
def test_missing_masks_message_names_the_image(img_path: Optional[str],
                                               name: str):
    """The image is named by its ``img_path``, else by its batch index."""
    meta = dict(img_shape=(8, 8))
    if img_path is not None:
        meta['img_path'] = img_path
    samples = [
        _sample(_zero_masks((0, 8, 8)), dict(img_shape=(8, 8))),
        _no_masks(meta)
    ]
    msg = re.escape(
        'LesionSegHead needs gt_instances.masks (the GrabCut lesion masks) '
        f'for image {name}: add the RECIST-to-mask transform (gt_masks) to '
        'the train pipeline before PackDetInputs.')
    with pytest.raises(ValueError, match=msg):
        LesionSegHead(in_channels=4).get_targets(samples, (8, 8),
                                                 torch.device('cpu'))


# ---------------------------------------------------------------------- #
# loss normaliser
# ---------------------------------------------------------------------- #
def test_no_lesion_pixel_divides_by_one():
    """An image without lesion pixels: the foreground count 0 is clamped
    to 1 (as RetinaNet's number of positives), not to 2."""
    meta = dict(img_shape=(8, 8), batch_input_shape=(8, 8))
    loss = LesionSegHead(in_channels=4).loss_by_feat(torch.zeros(
        1, 1, 8, 8), [_sample(_zero_masks((1, 8, 8)), meta)])['loss_seg']
    torch.testing.assert_close(loss, torch.tensor(64 * NEG_AT_ZERO))


def test_normaliser_under_a_process_group(tmp_path: Path):
    """Under DDP ``reduce_mean`` divides the count in place by the world
    size: the count must be a float tensor (an integer one cannot hold
    the quotient). A one-process gloo group runs that path on the CPU."""
    m = _zero_masks((1, 8, 8))
    m[0, 0:2, 0:3] = 1  # 6 lesion pixels
    meta = dict(img_shape=(8, 8), batch_input_shape=(8, 8))
    head = LesionSegHead(in_channels=4)
    logits = torch.zeros(1, 1, 8, 8)
    expected = head.loss_by_feat(logits, [_sample(m, meta)])['loss_seg']
    assert not dist.is_initialized()
    dist.init_process_group('gloo',
                            init_method=(tmp_path / 'store').as_uri(),
                            rank=0,
                            world_size=1)
    try:
        loss = head.loss_by_feat(logits, [_sample(m, meta)])['loss_seg']
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(loss, expected)


def test_targets_on_the_requested_device():
    """``get_targets`` makes its maps on the device it is given (the
    logits'); the data-free 'meta' device shows it without a GPU."""
    m = _zero_masks((1, 8, 8))
    fg, valid = LesionSegHead(in_channels=4).get_targets(
        [_sample(m, dict(img_shape=(8, 8)))], (8, 8), torch.device('meta'))
    assert fg.device.type == valid.device.type == 'meta'
    assert fg.shape == valid.shape == (1, 8, 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('as_tensor', [False, True])
def test_targets_on_the_device_of_the_logits(as_tensor: bool):
    """CPU masks (BitmapMasks or Tensor), CUDA logits: the targets are
    made on the logits' device."""
    m = _zero_masks((1, 8, 8))
    m[0, 2:4, 2:4] = 1
    masks = torch.from_numpy(m) if as_tensor else m
    meta = dict(img_shape=(8, 8), batch_input_shape=(8, 8))
    head = LesionSegHead(in_channels=4).cuda()
    loss = head.loss_by_feat(torch.zeros(1, 1, 8, 8, device='cuda'),
                             [_sample(masks, meta)])
    assert loss['loss_seg'].is_cuda
