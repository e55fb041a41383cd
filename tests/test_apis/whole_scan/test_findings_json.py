# Copyright (c) mmlesion contributors. All rights reserved.
"""``findings.json`` and ``candidates.csv`` of a whole-scan run keep their
schema, byte for byte.

A tiny synthetic scan (fixed values) goes through the whole run with a
stand-in detector that returns fixed boxes, labels and lesion maps per
slice (no network: the files depend only on the inference code). The
expected files in ``data/`` were written by the code before whole-scan
inference became one package (and ``findings.json`` recorded its
``schema_version``); what differs between two runs of the same
command (the temporary folder, the seconds, the software versions) is
replaced by placeholders before comparing.
"""
import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

from mmlesion.apis.whole_scan.results import FINDINGS_SCHEMA_VERSION
from mmlesion.apis.whole_scan.run import run_volume_inference
from mmlesion.apis.whole_scan.settings import DetectionSettings, RunSettings
from mmlesion.datasets.deeplesion.dl_info import COARSE_LESION_TYPES

DATA = Path(__file__).parent / 'data'
#: (first slice, last slice, centre x, centre y, largest half side, label,
#: best score, with a lesion map) of each planted lesion, in the voxels of
#: the resampled scan (20 slices of 2 mm, 43 x 50 px of 1 mm)
LESIONS = ((4, 9, 20., 18., 6., 3, .9, True),
           (12, 13, 35., 28., 8., 4, .4, False),
           (18, 18, 44., 8., 2.5, 0, .2, False))


def _boxes_of(z: int):
    """The stand-in detector's boxes, scores and labels on slice ``z``."""
    boxes, scores, labels, maps = [], [], [], []
    for first, last, cx, cy, half, label, best, has_map in LESIONS:
        if not first <= z <= last:
            continue
        mid = (first + last) / 2
        h = half * (1 - .15 * abs(z - mid))
        boxes.append([cx - h + .5, cy - .8 * h + .5, cx + h + .5,
                      cy + .8 * h + .5])
        scores.append(best - .03 * abs(z - mid))
        labels.append(label)
        maps.append(has_map)
    if z == 2:  # below the score threshold: never stacked
        boxes.append([5., 5., 9., 9.])
        scores.append(.03)
        labels.append(1)
        maps.append(False)
    return boxes, scores, labels, maps


class StandInDetector(torch.nn.Module):
    """Fixed detections per slice, DeepLesion's lesion types as classes, and
    a segmentation head's lesion map (a disc in the first lesion's boxes)."""

    with_seg_head = True

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.return_seg_map = False
        self.dataset_meta = dict(classes=tuple(COARSE_LESION_TYPES))

    def test_step(self, data):
        out = []
        for inputs, sample in zip(data['inputs'], data['data_samples']):
            z = int(sample.img_id.split('#')[-1])
            boxes, scores, labels, maps = _boxes_of(z)
            sample.pred_instances = InstanceData(
                bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                scores=torch.tensor(scores, dtype=torch.float32),
                labels=torch.tensor(labels, dtype=torch.int64))
            if self.return_seg_map:
                h, w = inputs.shape[-2:]
                yy, xx = torch.meshgrid(torch.arange(h) + .5,
                                        torch.arange(w) + .5, indexing='ij')
                prob = torch.zeros(h, w)
                for box, has_map in zip(boxes, maps):
                    if has_map:
                        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                        r = .4 * min(box[2] - box[0], box[3] - box[1])
                        prob[(xx - cx)**2 + (yy - cy)**2 <= r * r] = .9
                sample.pred_sem_seg = PixelData(sem_seg=prob[None])
            out.append(sample)
        return out


def stand_in_config() -> Config:
    """A 2.5D config (3 slices 2 mm apart, no ResampleToSpacing) whose
    training data is the demo set (so the run warns)."""
    return Config(dict(
        model=dict(type='StandInDetector'),
        train_dataloader=dict(dataset=dict(
            type='DeepLesionDataset', data_root='data/demo_deeplesion/')),
        test_dataloader=dict(dataset=dict(pipeline=[
            dict(type='LoadDeepLesionSlices', num_slices=3,
                 interval_mm=2.),
            dict(type='WindowHU', window=(-1024., 1050.)),
            dict(type='PackDetInputs',
                 meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                            'scale_factor'))
        ]))))


def write_scan(path: Path) -> Path:
    """16 x 48 x 56 voxels of 2.5 x 0.9 x 0.9 mm (z, y, x): air, noise,
    and soft-tissue blobs where the stand-in detector finds lesions."""
    rng = np.random.default_rng(7)
    array = (-800. + 40. * rng.standard_normal((16, 48, 56))).astype(
        np.float32)
    zz, yy, xx = np.meshgrid(np.arange(16) * 2.5, np.arange(48) * .9,
                             np.arange(56) * .9, indexing='ij')
    for first, last, cx, cy, half, *_ in LESIONS:
        cz = (first + last) / 2 * 2.
        r = np.sqrt(((xx - cx) / half)**2 + ((yy - cy) / half)**2 +
                    ((zz - cz) / (last - first + 2.))**2)
        array[r < 1.] = 60.
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((.9, .9, 2.5))
    image.SetOrigin((-20., -30., 100.))
    sitk.WriteImage(image, str(path))
    return path


def normalised(text: str, tmp_path: Path) -> str:
    """What differs between two runs of the same command, as placeholders:
    the temporary folder, the seconds and the software versions."""
    text = text.replace(str(tmp_path), '<TMP>')
    text = re.sub(r'("(?:detect_seconds|slices_per_second)": )[0-9.e+-]+',
                  r'\1<SECONDS>', text)
    return re.sub(
        r'("(?:mmlesion|mmdet|mmcv|mmengine|torch|python)": )"[^"]*"',
        r'\1"<VERSION>"', text)


def run_stand_in(tmp_path: Path) -> Path:
    """The whole run on the synthetic scan; returns the output folder."""
    scan = write_scan(tmp_path / 'stand_in_scan.mhd')
    out = tmp_path / 'out'
    run_volume_inference(
        stand_in_config(), None, str(scan), out_dir=str(out),
        run_settings=RunSettings(
            detection=DetectionSettings(score_thr=.05, workers=0,
                                        show_progress=False),
            pixel_spacing=1., cfg_name='stand_in.py'),
        model=StandInDetector())
    return out


#: ``settings.sources`` (new): where the slice interval and the pixel
#: spacing came from, after ``pixel_spacing_source``.
SOURCES = ('\n  "sources": {\n   "interval_mm": "config",\n'
           '   "pixel_spacing": "option"\n  },')
#: The stacking's lesion steps (new), after ``min_slices``: off.
LESION_STEPS = ('\n  "contain_thr": null,\n  "join_gap": null,\n'
                '  "merge_iou": null,\n  "merge_inside": null,')
#: ``operating_point`` and ``num_candidates`` (new), before ``findings``: a
#: model without a checkpoint keeps every finding above ``score_thr``.
OPERATING_POINT = (
    '\n "operating_point": {\n  "source": "none",\n  "threshold": 0.05,\n'
    + ''.join(f'  "{k}": null,\n' for k in (
        'fp_rate', 'fp_unit', 'sensitivity', 'split', 'epoch', 'note'))
    + '  "lesion_steps": null,\n  "scan_z_mm": null\n },\n "num_candidates": 3,')


#: ``threads`` (new), after ``slices_per_second``: the run's torch threads
#: and OpenMP variables (those of this process).
THREADS = ('\n "threads": {{\n  "torch_threads": {},\n'
           '  "omp_num_threads": {},\n  "omp_wait_policy": {}\n }},')


def test_findings_json_is_unchanged_but_for_its_schema_version(tmp_path):
    """The files of the code before the package, byte for byte, and
    ``schema_version`` (new) after ``model_warning``, ``settings.sources``
    (new) after ``settings.pixel_spacing_source``, ``threads`` (new) after
    ``slices_per_second``, ``operating_point`` and ``num_candidates`` (new)
    before ``findings``."""
    import json
    import os
    out = run_stand_in(tmp_path)
    got = normalised((out / 'findings.json').read_text(encoding='utf-8'),
                     tmp_path)
    threads = THREADS.format(torch.get_num_threads(), *(
        json.dumps(os.environ.get(k))
        for k in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY')))
    assert got.count(threads) == 1
    got = got.replace(threads, '')
    version = f'\n "schema_version": {FINDINGS_SCHEMA_VERSION},\n'
    assert got.startswith('{\n "model_warning": "trained on synthetic demo '
                          'data: findings are not clinically meaningful",'
                          + version)
    assert got.count(version) == 1
    assert got.count('"pixel_spacing_source": "argument",' + SOURCES) == 1
    expected = (DATA / 'stand_in_findings.json').read_text(encoding='utf-8')
    assert got.count(OPERATING_POINT) == 1
    assert got.count('"min_slices": 1,' + LESION_STEPS) == 1
    assert got.replace(version, '\n').replace(SOURCES, '').replace(
        OPERATING_POINT, '').replace(LESION_STEPS, '') == expected
    got = normalised((out / 'candidates.csv').read_text(encoding='utf-8'),
                     tmp_path)
    assert got == (DATA / 'stand_in_candidates.csv').read_text(
        encoding='utf-8')
