# Copyright (c) mmlesion contributors. All rights reserved.
"""Train a 2.5D detector briefly on slices of the synthetic volume set.

For tests and demos of volume inference: the training samples are made
with the very pipeline :mod:`mmlesion.apis.whole_scan.infer` runs on a scan
(:func:`~mmlesion.apis.whole_scan.resample.prepare_volume` then the config's
test pipeline with :class:`~mmlesion.datasets.transforms.LoadVolumeSlices`),
with ground-truth boxes from ``ground_truth.json``: the cross-section of
each planted ellipsoid on each resampled slice.
"""
import copy
import json
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper

from mmlesion.apis.detector_loader import init_lesion_detector
from mmlesion.apis.whole_scan.resample import prepare_volume
from mmlesion.apis.whole_scan.results import Box2D, Finding
from mmlesion.apis.whole_scan.settings import (VolumeInferenceSettings,
                                               build_volume_pipeline)
from projects.study_demo.synthetic.volumes import generate_demo_volumes
from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing import get_config

#: The demo detector the whole-scan tests run.
DEMO_CFG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def finding_of_boxes(id: int, boxes_2d: List[dict]) -> Finding:
    """A :class:`Finding` of only its 2D boxes (its 3D geometry zeros), for
    what is computed from them (RECIST axes, lesion type)."""
    boxes = [Box2D.from_dict(b) for b in boxes_2d]
    return Finding(id=id, score=max(b.score for b in boxes),
                   center_world=[0.] * 3, bbox_world=[0.] * 6,
                   bbox_voxel=[0.] * 6, bbox_voxel_resampled=[0.] * 6,
                   largest_box_side_mm=0., slice_range=[0, 0], key_slice=0,
                   slice_range_original=[0, 0], boxes_2d=boxes)


def scans_and_random_checkpoint(tmp_path_factory,
                                seed: int = 3,
                                num_luna: int = 1,
                                size_range: Tuple[int, int] = (64, 64),
                                num_slices_range: Tuple[int, int] = (12, 12)
                                ) -> Tuple[List[Path], Path]:
    """Small synthetic chest scans (.mhd, one nodule each) and random
    weights of :data:`DEMO_CFG`'s detector (``torch.manual_seed(0)``) in a
    checkpoint saved by hand: no ``dataset_meta``, no config (the case
    where mmdet falls back to its COCO classes).

    Returns:
        tuple: the scans' paths and the checkpoint's.
    """
    root = tmp_path_factory.mktemp('vol') / 'volumes'
    generate_demo_volumes(
        root, seed=seed, num_luna=num_luna, num_kits=0, num_lits=0,
        val_fraction=0., size_range=size_range,
        num_slices_range=num_slices_range, nodules_per_scan=(1, 1))
    gt = json.loads((root / 'ground_truth.json').read_text())
    torch.manual_seed(0)
    model = init_lesion_detector(get_config(DEMO_CFG)).model
    ckpt = tmp_path_factory.mktemp('ckpt') / 'random.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    return [root / s['file'] for s in gt['scans']], ckpt


def lesion_boxes_on_slices(lesion: dict, volume, margin: float = 1.,
                           min_fraction: float = .1) -> dict:
    """2D boxes of a planted ellipsoid on the slices of a volume.

    Args:
        lesion (dict): a ``ground_truth.json`` lesion (``center_world``,
            ``semi_axes_mm``, ``angle``).
        volume (CTVolume): the (resampled) scan, identity direction.
        margin (float): pixels added on each side.
        min_fraction (float): slices where the section's semi-axes are
            below this fraction of the lesion's are skipped.

    Returns:
        dict: slice index -> ``[x1, y1, x2, y2]`` in mmdet pixel
        coordinates (pixel ``i`` spans ``[i, i + 1)``).
    """
    cz, cy, cx = volume.world_to_voxel(np.asarray(lesion['center_world']))[0]
    a, b, c = lesion['semi_axes_mm']
    ang = lesion['angle']
    ex = np.hypot(a * np.cos(ang), b * np.sin(ang))
    ey = np.hypot(a * np.sin(ang), b * np.cos(ang))
    sz, sy, sx = volume.spacing_zyx
    out = {}
    for z in range(volume.shape_zyx[0]):
        dz = (z - cz) * sz / c
        if dz * dz >= 1. - min_fraction**2:
            continue
        s = np.sqrt(1. - dz * dz)
        out[z] = [cx + .5 - ex * s / sx - margin, cy + .5 - ey * s / sy -
                  margin, cx + .5 + ex * s / sx + margin,
                  cy + .5 + ey * s / sy + margin]
    return out


def volume_training_samples(root: Union[str, Path],
                            settings: VolumeInferenceSettings,
                            datasets=('luna16', ),
                            negatives_per_scan: int = 3,
                            seed: int = 0) -> List[dict]:
    """Packed training samples from a generated volume set.

    Every slice that shows an annotated lesion, plus a few random slices
    per scan as negatives. Unannotated lesions are not boxed: generate the
    set with ``unannotated_prob=0`` for clean labels.

    Args:
        root (str | Path): a :func:`generate_demo_volumes` folder.
        settings (VolumeInferenceSettings): the detector's convention.
        datasets (tuple): which scans to use.
        negatives_per_scan (int): random extra slices per scan.
        seed (int): for the negatives.

    Returns:
        list[dict]: ``PackDetInputs`` outputs (``inputs``,
        ``data_samples`` with ``gt_instances``).
    """
    root = Path(root)
    gt = json.loads((root / 'ground_truth.json').read_text())
    pipeline = build_volume_pipeline(settings)
    rng = np.random.default_rng(seed)
    samples = []
    for scan in gt['scans']:
        if scan['dataset'] not in datasets:
            continue
        volume = prepare_volume(load_ct_volume(root / scan['file']),
                                settings)
        per_slice = {}
        for les in gt['lesions']:
            if les['scan'] == scan['id'] and les['annotated']:
                for z, box in lesion_boxes_on_slices(les, volume).items():
                    per_slice.setdefault(z, []).append(box)
        depth = volume.shape_zyx[0]
        extra = rng.choice(depth, min(negatives_per_scan, depth),
                           replace=False)
        for z in sorted(set(per_slice) | {int(z) for z in extra}):
            boxes = np.array(per_slice.get(z, []),
                             dtype=np.float32).reshape(-1, 4)
            samples.append(pipeline(dict(
                volume=volume.array, key_slice=z,
                slice_interval=volume.spacing_zyx[0],
                spacing=volume.spacing_zyx[2], img_path=scan['file'],
                img_id=f"{scan['id']}#{z}", scale_factor=(1., 1.),
                gt_bboxes=HorizontalBoxes(boxes),
                gt_bboxes_labels=np.zeros(len(boxes), np.int64),
                gt_ignore_flags=np.zeros(len(boxes), bool))))
    return samples


def train_on_samples(cfg: Config,
                     samples: List[dict],
                     iterations: int,
                     batch_size: int = 4,
                     seed: int = 0,
                     model: Optional[torch.nn.Module] = None
                     ) -> torch.nn.Module:
    """A short training run of ``cfg.model`` with ``cfg.optim_wrapper``.

    mmengine's ``train_step`` (data preprocessor, losses, optimiser wrapper
    with the config's gradient clipping) over random batches, with random
    horizontal and vertical flips; no scheduler.

    Args:
        cfg (Config): the detector's config.
        samples (list[dict]): packed samples (:func:`volume_training_samples`).
        iterations (int): optimiser steps.
        batch_size (int): samples per step.
        seed (int): batch order, flips and weights.
        model (nn.Module, optional): continue training this model.

    Returns:
        nn.Module: the trained model, in eval mode.
    """
    torch.manual_seed(seed)
    if model is None:
        model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(iterations):
        idx = rng.choice(len(samples), min(batch_size, len(samples)),
                         replace=False)
        batch = [_flipped(samples[i], rng) for i in idx]
        model.train_step(pseudo_collate(batch), optim_wrapper)
    model.eval()
    return model


def _flipped(sample: dict, rng: np.random.Generator) -> dict:
    """A randomly flipped copy of a packed sample (image and boxes)."""
    img = sample['inputs']
    data = copy.deepcopy(sample['data_samples'])  # clone() is shallow
    boxes = data.gt_instances.bboxes  # HorizontalBoxes (PackDetInputs)
    h, w = img.shape[-2:]
    if rng.random() < .5:
        img = img.flip(-1)
        boxes.flip_((h, w), 'horizontal')
    if rng.random() < .5:
        img = img.flip(-2)
        boxes.flip_((h, w), 'vertical')
    return dict(inputs=img, data_samples=data)
