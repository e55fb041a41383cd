# Copyright (c) mmlesion contributors. All rights reserved.
"""A 2.5D detector of no cost for the whole-scan benchmarks: what a GPU
forward pass looks like to the CPU, on a machine without a GPU."""
import time
from typing import Tuple

import numpy as np
import torch
from mmengine.structures import InstanceData


class StandInDetector(torch.nn.Module):
    """``test_step`` waits ``ms`` per slice in ``time.sleep`` (no GIL held,
    like a process waiting for its GPU) and predicts ``boxes`` boxes per
    slice: the same random boxes (seed 0; by default centred at 64-320 px
    and 16-128 px wide, scores near 0.5) on every slice, moved by up to
    1 px from slice to slice, so that stacking links them into long chains
    as it would a detector's; and ``low_boxes`` more boxes per slice with
    low scores (0.06-0.2) and half their sides, new random ones on every
    slice (seeded by the slice), as a poorly trained detector gives: each
    one a finding of its own.

    Args:
        ms (float): milliseconds per slice (>= 0).
        boxes (int): boxes per slice (>= 0). Defaults to 0.
        centre_range (tuple): the range of the boxes' centres (x and y),
            pixels. Defaults to (64, 320).
        half_range (tuple): the range of their half widths and heights,
            pixels. Defaults to (8, 64).
        low_boxes (int): low-score boxes per slice (>= 0). Defaults to 0.

    Raises:
        ValueError: a negative ``ms`` or ``boxes``.
    """

    def __init__(self, ms: float, boxes: int = 0,
                 centre_range: Tuple[float, float] = (64., 320.),
                 half_range: Tuple[float, float] = (8., 64.),
                 low_boxes: int = 0) -> None:
        super().__init__()
        if not ms >= 0:
            raise ValueError(f'--stand-in-ms must be >= 0, got {ms}')
        if boxes < 0 or low_boxes < 0:
            raise ValueError(f'--stand-in-boxes must be >= 0, got {boxes} '
                             f'and {low_boxes} low-score boxes')
        rng = np.random.default_rng(0)
        centre = rng.uniform(*centre_range, (boxes, 2))
        half = rng.uniform(*half_range, (boxes, 2))
        self.boxes = np.concatenate([centre - half, centre + half], 1)
        self.scores = np.clip(rng.normal(.5, .03, boxes), .06, 1.)
        self.ms = ms
        self.low_boxes = low_boxes
        self.ranges = (centre_range, half_range)
        # a parameter, so that the device can be asked as of a detector
        self.probe = torch.nn.Parameter(torch.zeros(0), requires_grad=False)
        self.dataset_meta = dict(classes=('lesion', ))

    def test_step(self, data: dict) -> list:
        """Wait, then give every slice the jittered boxes."""
        time.sleep(self.ms / 1000. * len(data['inputs']))
        outputs = []
        for sample in data['data_samples']:
            z = int(str(sample.metainfo.get('img_id', '#0')).rsplit('#')[-1])
            rng = np.random.default_rng(z)
            jitter = rng.uniform(-1, 1, self.boxes.shape)
            centre = rng.uniform(*self.ranges[0], (self.low_boxes, 2))
            half = rng.uniform(*self.ranges[1], (self.low_boxes, 2)) / 2
            boxes = np.concatenate([self.boxes + jitter, np.concatenate(
                [centre - half, centre + half], 1)])
            scores = np.concatenate([self.scores,
                                     rng.uniform(.06, .2, self.low_boxes)])
            sample.pred_instances = InstanceData(
                bboxes=torch.from_numpy(boxes).float(),
                scores=torch.from_numpy(scores).float(),
                labels=torch.zeros(len(scores), dtype=torch.long))
            outputs.append(sample)
        return outputs
