# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmlesion.methods.retinanet_lesion.models import LesionSegHead


def _sample(masks: np.ndarray, img_shape, batch_shape) -> DetDataSample:
    sample = DetDataSample(
        metainfo=dict(img_shape=img_shape, batch_input_shape=batch_shape))
    gt = InstanceData()
    gt.bboxes = torch.zeros((len(masks), 4))
    gt.labels = torch.zeros(len(masks), dtype=torch.long)
    gt.masks = BitmapMasks(masks, masks.shape[1], masks.shape[2])
    sample.gt_instances = gt
    return sample


def _batch():
    m0 = np.zeros((2, 32, 32), np.uint8)
    m0[0, 2:6, 2:6] = 1
    m0[1, 4:10, 4:8] = 1  # overlaps the first: union 16 + 24 - 4 = 36
    m1 = np.zeros((1, 24, 20), np.uint8)  # smaller image, padded batch
    m1[0, 10:14, 10:12] = 1
    return [_sample(m0, (32, 32), (32, 32)), _sample(m1, (24, 20), (32, 32))]


def test_forward_shape_and_prior():
    head = LesionSegHead(in_channels=8, feat_channels=4, num_convs=2)
    head.init_weights()
    logits = head(torch.randn(2, 8, 32, 32))
    assert logits.shape == (2, 1, 32, 32)
    # bias initialised to the prior probability 0.01
    torch.testing.assert_close(
        head.conv_seg.bias.sigmoid(), torch.tensor([0.01]), atol=1e-4, rtol=0)
    assert head(torch.randn(1, 8, 16, 16)).shape == (1, 1, 16, 16)
    assert head([torch.randn(1, 8, 16, 16)]).shape == (1, 1, 16, 16)


def test_targets_union_and_padding():
    head = LesionSegHead(in_channels=4)
    fg, valid = head.get_targets(_batch(), (32, 32), torch.device('cpu'))
    assert fg.shape == valid.shape == (2, 32, 32)
    assert int(fg[0].sum()) == 36
    assert int(fg[1].sum()) == 8
    assert bool(fg[1, 10:14, 10:12].all())
    assert int(valid[0].sum()) == 32 * 32
    assert int(valid[1].sum()) == 24 * 20
    assert not bool(valid[1, 24:].any()) and not bool(valid[1, :, 20:].any())


def test_loss_values():
    head = LesionSegHead(in_channels=4)
    batch = _batch()
    fg, _ = head.get_targets(batch, (32, 32), torch.device('cpu'))
    good = (fg.float() * 20 - 10)[:, None]  # confident and right
    bad = -good  # confident and wrong
    loss_good = head.loss_by_feat(good, batch)['loss_seg']
    loss_bad = head.loss_by_feat(bad, batch)['loss_seg']
    assert torch.isfinite(loss_good) and torch.isfinite(loss_bad)
    assert float(loss_good) < 1e-4 < float(loss_bad)
    # padded pixels carry no loss
    padded = good.clone()
    padded[1, :, 24:, :] = 10.
    padded[1, :, :, 20:] = 10.
    torch.testing.assert_close(
        head.loss_by_feat(padded, batch)['loss_seg'], loss_good)
    # hand value: sigmoid focal loss (gamma 2, alpha .25) of logits 0 on
    # the 44 lesion pixels and 0 elsewhere, normalised by the 44 lesion px
    zero = torch.zeros(2, 1, 32, 32)
    n_valid = 32 * 32 + 24 * 20
    pos = 0.25 * 0.25 * np.log(2)  # alpha * (1 - p)^2 * -log(p), p = 0.5
    neg = 0.75 * 0.25 * np.log(2)
    expected = (44 * pos + (n_valid - 44) * neg) / 44
    torch.testing.assert_close(
        head.loss_by_feat(zero, batch)['loss_seg'],
        torch.tensor(expected, dtype=torch.float32))
    head_px = LesionSegHead(in_channels=4, loss_normalizer='pixels')
    torch.testing.assert_close(
        head_px.loss_by_feat(zero, batch)['loss_seg'],
        torch.tensor(expected * 44 / n_valid, dtype=torch.float32))


def test_loss_backward_and_coarser_logits():
    head = LesionSegHead(in_channels=4, feat_channels=4)
    head.init_weights()
    x = torch.randn(2, 4, 16, 16)  # stride 2: logits resized to the input
    loss = head.loss(x, _batch())['loss_seg']
    loss.backward()
    assert head.conv_seg.weight.grad is not None


def test_predict_crops_to_img_shape():
    head = LesionSegHead(in_channels=4)
    head.init_weights()
    with torch.no_grad():
        probs = head.predict(torch.randn(2, 4, 32, 32), _batch())
    assert probs[0].shape == (32, 32) and probs[1].shape == (24, 20)
    assert all(float(p.min()) >= 0 and float(p.max()) <= 1 for p in probs)


def test_missing_masks_and_bad_args():
    head = LesionSegHead(in_channels=4)
    sample = DetDataSample(metainfo=dict(img_shape=(8, 8)))
    sample.gt_instances = InstanceData(bboxes=torch.zeros(0, 4))
    with pytest.raises(ValueError, match='gt_instances.masks'):
        head.loss_by_feat(torch.zeros(1, 1, 8, 8), [sample])
    with pytest.raises(ValueError, match='loss_normalizer'):
        LesionSegHead(in_channels=4, loss_normalizer='mean')
