# Copyright (c) mmlesion contributors. All rights reserved.
"""A detector with a segmentation head that needs no training
(:class:`StubSegDetector`), registered in mmdet's ``MODELS`` so that a
config names it: :func:`write_stub_config` writes such a config (the demo
config's pipeline, ``custom_imports`` of this module) and its checkpoint,
for runs in other processes (Slurm jobs) that build the model from files.
"""
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from mmlesion.datasets.deeplesion.dl_info import COARSE_LESION_TYPES

DEMO_CFG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


class StubSegDetector(torch.nn.Module):
    """A detector with a 'segmentation head' that needs no training: the
    bright (> ``thr``) components of the middle input channel are its masks
    and their boxes its detections (score 0.9), of lesion type 'liver'
    when larger than 50 px, else 'lung'."""
    with_seg_head = True
    dataset_meta = dict(classes=COARSE_LESION_TYPES)

    def __init__(self, thr: float, largest_only: bool = False) -> None:
        super().__init__()
        self.thr = thr
        self.largest_only = largest_only
        self.return_seg_map = False
        self.score_calibration = None
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def test_step(self, data):
        outs = []
        for img, sample in zip(data['inputs'], data['data_samples']):
            mid = img[img.shape[0] // 2].float().numpy()
            mask = (mid > self.thr).astype(np.uint8)
            num, comp, stats, _ = cv2.connectedComponentsWithStats(mask)
            if self.largest_only and num > 2:
                best = 1 + int(np.argmax(stats[1:, 4]))
                mask = (comp == best).astype(np.uint8)
                num, stats = 2, stats[[0, best]]
            boxes = [[x, y, x + w, y + h]  # mmdet: pixel i spans [i, i+1)
                     for x, y, w, h, _ in stats[1:]]
            out = DetDataSample(metainfo=sample.metainfo)
            out.pred_instances = InstanceData(
                bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(
                    -1, 4),
                scores=torch.full((num - 1, ), .9),
                labels=torch.tensor(
                    [3 if a > 50 else 4 for a in stats[1:, 4]],
                    dtype=torch.long).reshape(-1))
            if self.return_seg_map:
                out.pred_sem_seg = PixelData(
                    sem_seg=torch.from_numpy(mask[None]).float())
            outs.append(out)
        return outs


MODELS.register_module('StubSegDetector', module=StubSegDetector,
                       force=True)


def stub_threshold(cfg, hu_thr: float, pixel_spacing: float = 1.2) -> float:
    """``hu_thr`` HU as the model's input value (the config's
    ``WindowHU``)."""
    from mmlesion.apis.whole_scan.settings import volume_settings_from_config
    from mmlesion.datasets.transforms.windowing import window_hu
    settings = volume_settings_from_config(cfg, pixel_spacing)
    wh = next(t for t in settings.pipeline if t['type'] == 'WindowHU')
    return float(window_hu(np.array([hu_thr]), wh['window'],
                           wh.get('out_range', (-1., 1.)))[0])


def write_stub_config(folder: Path, hu_thr: float = 150.,
                      largest_only: bool = True) -> Tuple[Path, Path]:
    """A config of :data:`DEMO_CFG`'s pipeline whose model is a
    :class:`StubSegDetector` (bright components above ``hu_thr`` HU), and
    its checkpoint, in ``folder``.

    Returns:
        tuple[Path, Path]: the config's and the checkpoint's paths.
    """
    from mmlesion.testing import get_config, repo_root
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    thr = stub_threshold(get_config(DEMO_CFG), hu_thr)
    config = folder / 'stub_seg.py'
    config.write_text(
        f"_base_ = [{str(repo_root() / 'configs' / DEMO_CFG)!r}]\n"
        "custom_imports = dict(imports=['tests.helpers.stub_seg_detector'],"
        " allow_failed_imports=False)\n"
        f"model = dict(_delete_=True, type='StubSegDetector', thr={thr!r}, "
        f"largest_only={largest_only!r})\n")
    checkpoint = folder / 'stub_seg.pth'
    torch.save(dict(state_dict=StubSegDetector(thr).state_dict()),
               checkpoint)
    return config, checkpoint
