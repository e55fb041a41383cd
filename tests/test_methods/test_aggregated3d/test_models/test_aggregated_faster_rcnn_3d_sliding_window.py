# Copyright (c) mmlesion contributors. All rights reserved.
"""Sliding-window inference of ``AggregatedFasterRCNN3D``: a window keeps a
detection only in its core, so every lesion comes back once, and whole when
it is not longer than the overlap.

The stub detector returns the ground-truth boxes clipped to each window (a
perfect detector that sees only its window); the volume's channels carry the
voxel coordinates, from which the stub reads where its window lies."""
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmlesion.methods.aggregated3d.models.aggregated_faster_rcnn_3d import (
    VOXEL_CENTRE_OFFSET, window_cores, window_starts)
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg

SHAPE = (80, 16, 16)  # z windows of 64 (z 0..64 and 16..80 at overlap 16)


def _coordinate_volume(shape=SHAPE):
    z, y, x = torch.meshgrid(*[torch.arange(n, dtype=torch.float32)
                               for n in shape], indexing='ij')
    return torch.stack([z, y, x])


def _stub_model(gt_boxes, overlap):
    cfg = tiny_aggregated3d_cfg(window_size=64)
    cfg.fprn_head = None
    cfg.test_cfg.update(overlap=overlap, merge_iou_thr=0.1, max_per_img=100)
    model = MODELS.build(cfg).eval()
    # ground truth in the model's internal (pixel-edge) convention
    gt = torch.as_tensor(gt_boxes, dtype=torch.float32) + VOXEL_CENTRE_OFFSET
    windows_seen = []

    def predict(windows):
        outs = []
        for win in windows:
            z0, y0, x0 = (int(win[c, 0, 0, 0]) for c in range(3))
            size = torch.tensor(win.shape[1:][::-1], dtype=torch.float32)
            lo = torch.tensor([x0, y0, z0], dtype=torch.float32)
            windows_seen.append(z0)
            boxes = torch.cat([torch.maximum(gt[:, :3], lo),
                               torch.minimum(gt[:, 3:], lo + size)], 1)
            boxes = boxes[(boxes[:, 3:] > boxes[:, :3]).all(1)] - lo.repeat(2)
            outs.append(InstanceData(
                bboxes=boxes, scores=torch.full((len(boxes), ), 0.9),
                rpn_scores=torch.full((len(boxes), ), 0.9),
                labels=torch.zeros(len(boxes), dtype=torch.long)))
        return outs

    model._predict_window = predict
    return model, windows_seen


def _z_box(z1, z2):
    return [2., 3., float(z1), 12., 13., float(z2)]


def test_window_cores_tile_the_axis():
    starts = window_starts(80, 64, 16)
    assert starts == [0, 16]
    assert window_cores(starts, 64, 80) == [(0., 40.), (40., 80.)]
    starts = window_starts(300, 128, 40)
    cores = window_cores(starts, 128, 300)
    assert cores[0][0] == 0 and cores[-1][1] == 300
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))
    # every core is at least half an overlap inside its window's inner
    # borders
    for i, (s, (lo, hi)) in enumerate(zip(starts, cores)):
        assert i == 0 or lo - s >= 20
        assert i == len(starts) - 1 or s + 128 - hi >= 20
    # one window larger than the axis: detections in the padding dropped
    assert window_cores([0], 32, 20) == [(0., 20.)]


# lesions on and across every window border of windows z 0..64 and 16..80
# (cores z 0..40 and 40..80); all are at most 48 voxels (the effective
# overlap of the two windows) long
BORDER_CASES = [
    (6, 16),    # ends on the start of window 2 (the sliver case)
    (16, 26),   # starts on it
    (12, 20),   # across it
    (36, 44),   # across the border of the cores
    (30, 40),   # ends on it
    (40, 50),   # starts on it
    (56, 64),   # ends on the end of window 1
    (64, 72),   # starts on it
    (60, 68),   # across it
    (0, 8),     # on the volume's first slice
    (71, 79),   # on its last (voxel 79 spans 78.5 .. 79.5)
    (20, 60),   # 40 voxels across both windows' overlap
]


@pytest.mark.parametrize('z1, z2', BORDER_CASES)
def test_lesion_on_or_across_a_border_comes_back_once_whole(z1, z2):
    box = _z_box(z1, z2)
    model, seen = _stub_model([box], overlap=16)
    dets = model.predict_volume(_coordinate_volume())
    assert seen == [0, 16]
    assert len(dets) == 1, dets.bboxes
    assert dets.bboxes[0].tolist() == pytest.approx(box)


def test_all_border_lesions_together():
    # spread over y / x so that they do not overlap one another
    boxes = [[i % 4 * 4., i // 4 * 5., z1, i % 4 * 4. + 3, i // 4 * 5. + 4,
              z2] for i, (z1, z2) in enumerate(BORDER_CASES)]
    model, _ = _stub_model(boxes, overlap=16)
    dets = model.predict_volume(_coordinate_volume())
    got = sorted(map(tuple, dets.bboxes.tolist()))
    assert got == sorted(map(tuple, boxes))


def test_lesion_longer_than_the_overlap():
    """z 10..70 (60 voxels): with 48 voxels of overlap it is reported once
    (by the window whose core holds its centre), necessarily truncated; an
    overlap of at least its length makes a window see it whole."""
    box = _z_box(10, 70)
    model, _ = _stub_model([box], overlap=16)
    dets = model.predict_volume(_coordinate_volume())
    assert len(dets) == 1
    model, seen = _stub_model([box], overlap=60)
    dets = model.predict_volume(_coordinate_volume())
    assert seen == [0, 4, 8, 12, 16]
    assert len(dets) == 1
    assert dets.bboxes[0].tolist() == pytest.approx(box)
