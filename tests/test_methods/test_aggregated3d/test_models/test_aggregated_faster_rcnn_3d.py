# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmlesion.methods.aggregated3d.models.aggregated_faster_rcnn_3d import window_starts
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg, volume_sample


def _data(n=2):
    boxes = [[10., 12., 8., 16., 18., 14.], [20., 4., 20., 28., 12., 28.]]
    return {
        'inputs': [torch.randn(1, 32, 32, 32) for _ in range(n)],
        'data_samples': [volume_sample((32, 32, 32), boxes[i % 2])
                         for i in range(n)]
    }


def test_one_training_step_joint():
    torch.manual_seed(0)
    model = MODELS.build(tiny_aggregated3d_cfg())
    model.init_weights()
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='SGD',
                                                           lr=0.01)))
    before = [p.detach().clone() for p in model.fprn_head.parameters()]
    log_vars = model.train_step(_data(), optim)
    assert {'loss', 'loss_rpn_cls', 'loss_rpn_bbox',
            'loss_fprn_cls'} <= set(log_vars)
    assert torch.isfinite(log_vars['loss'])
    after = list(model.fprn_head.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_schedules():
    cfg = tiny_aggregated3d_cfg()
    cfg.train_cfg.update(mode='alternating', rpn_only_iters=2,
                         alternate_interval=1)
    model = MODELS.build(cfg)
    hub = MessageHub.get_instance('test_aggregated3d_schedules')
    expected = {0: (True, False), 1: (True, False), 2: (True, False),
                3: (False, True), 4: (True, False)}
    for it, branches in expected.items():
        hub.update_info('iter', it)
        assert model.active_branches() == branches
    data = model.data_preprocessor(_data(1), True)
    hub.update_info('iter', 3)  # FPRN-only step: RPN loss is a zero
    losses = model.loss(data['inputs'], data['data_samples'])
    assert losses['loss_rpn_cls'].item() == 0 and 'loss_rpn_bbox' not in losses
    assert losses['loss_fprn_cls'].item() > 0
    hub.update_info('iter', 0)
    cfg.fprn_head = None  # the RPN baseline
    rpn = MODELS.build(cfg)
    assert rpn.active_branches() == (True, False)
    assert 'loss_fprn_cls' not in rpn.loss(data['inputs'],
                                           data['data_samples'])
    with pytest.raises(ValueError, match='mode'):
        cfg.train_cfg.mode = 'sequential'
        MODELS.build(cfg)


def test_window_starts():
    assert window_starts(100, 128, 16) == [0]
    assert window_starts(128, 128, 16) == [0]
    assert window_starts(300, 128, 16) == [0, 112, 172]
    with pytest.raises(ValueError, match='overlap'):
        window_starts(300, 16, 16)


def test_sliding_window_merges_duplicates():
    """A volume covered by overlapping windows: window detections are moved
    to volume voxels and a lesion seen by two windows is kept once."""
    torch.manual_seed(0)
    cfg = tiny_aggregated3d_cfg(window_size=32)
    cfg.test_cfg.update(overlap=16, merge_iou_thr=0.1, max_per_img=1000)
    model = MODELS.build(cfg).eval()
    seen = []

    def fake_windows(box_in_window):
        def predict(windows):
            outs = []
            for _ in windows:
                outs.append(InstanceData(
                    bboxes=torch.tensor([box_in_window(len(seen))]),
                    scores=torch.tensor([0.9 - 0.1 * len(seen)]),
                    rpn_scores=torch.tensor([0.5]),
                    fprn_scores=torch.tensor([0.5]), logits=torch.zeros(1),
                    level_ids=torch.zeros(1, dtype=torch.long),
                    labels=torch.zeros(1, dtype=torch.long)))
                seen.append(1)
            return outs
        return predict

    volume = torch.zeros(1, 48, 32, 32)  # z windows start at 0 and 16
    # one detection at the same window position in both windows: two
    # different lesions in the volume (z 8..14 and 24..30), both kept
    model._predict_window = fake_windows(
        lambda i: [8., 8., 8., 14., 14., 14.])
    dets = model.predict_volume(volume)
    assert len(seen) == 2
    # (the output is in voxel-centre coordinates: -0.5 voxel)
    assert sorted(dets.bboxes[:, 2].tolist()) == [7.5, 23.5]
    # one lesion in the overlap, seen by both windows: kept once, with the
    # higher score
    seen.clear()
    model._predict_window = fake_windows(
        lambda i: [8., 8., 18. - 16 * i, 14., 14., 24. - 16 * i])
    dets = model.predict_volume(volume)
    assert len(dets) == 1 and dets.bboxes[0, 2].item() == 17.5
    assert dets.scores.item() == pytest.approx(0.9)


def test_predict_real_forward():
    torch.manual_seed(0)
    cfg = tiny_aggregated3d_cfg(window_size=32)
    cfg.test_cfg.update(overlap=8, max_per_img=20)
    model = MODELS.build(cfg).eval()
    data = {'inputs': [torch.randn(1, 40, 32, 48)],
            'data_samples': [volume_sample((40, 32, 48))]}
    with torch.no_grad():
        out = model.test_step(data)[0]
    pred = out.pred_instances
    assert pred.bboxes.shape[1] == 6 and len(pred) <= 20
    assert torch.allclose(pred.scores,
                          (pred.rpn_scores + pred.fprn_scores) / 2)
    assert out.metainfo['series_uid'] == 'test'
    ctr = (pred.bboxes[:, :3] + pred.bboxes[:, 3:]) / 2
    assert (ctr >= -0.5).all()
    assert (ctr < torch.tensor([47.5, 31.5, 39.5])).all()
