# Copyright (c) mmlesion contributors. All rights reserved.
"""Slices prepared by worker processes while the detector runs
(mmlesion.apis.whole_scan.slices, detect_slices(workers=...))."""
import importlib.util

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from mmlesion.apis.detector_loader import init_lesion_detector
from mmlesion.apis.whole_scan.detect import detect_slices
from mmlesion.apis.whole_scan.infer import infer_volume
from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                               build_volume_pipeline,
                                               volume_settings_from_config)
from mmlesion.apis.whole_scan.slices import (VolumeSliceDataset,
                                             check_workers, outputs_to_cpu,
                                             volume_slice_loader)
from mmlesion.datasets.volumes import CTVolume
from mmlesion.testing import get_config, repo_root

DEMO_CFG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


@pytest.fixture(scope='module')
def demo():
    """The tiny demo detector (random weights, no pretrained backbone) and
    its volume settings."""
    cfg = get_config(DEMO_CFG)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = init_lesion_detector(cfg).model
    return model, volume_settings_from_config(cfg, 1.)


def _volume(depth: int = 9, size: int = 48) -> CTVolume:
    """Lung-like noise with a bright sphere: random weights then give a
    full set of boxes per slice, of different scores."""
    rng = np.random.default_rng(3)
    array = rng.normal(-700., 150., (depth, size, size)).astype(np.float32)
    z, y, x = np.ogrid[:depth, :size, :size]
    array[(z - depth // 2)**2 + (y - 20)**2 + (x - 26)**2 < 36] = 300.
    return CTVolume(array, (2., 1., 1.), (0., 0., 0.),
                    meta=dict(path='/scans/case.nii.gz'))


def _detect(model, settings, volume, workers, batch_size=4,
            worker_type='thread'):
    found = detect_slices(
        model, volume, settings, DetectionSettings(
            batch_size=batch_size, show_progress=False, workers=workers,
            worker_type=worker_type))
    return found.boxes, found.scores, found.labels


def test_workers_give_the_same_boxes_in_the_same_order(demo):
    model, settings = demo
    volume = _volume()
    serial = _detect(model, settings, volume, workers=0)
    boxes, scores, labels = serial
    assert len(boxes) == len(scores) == len(labels) == 9
    assert sum(len(b) for b in boxes) > 9  # boxes on every slice
    for worker_type in ('thread', 'process'):
        parallel = _detect(model, settings, volume, workers=2,
                           worker_type=worker_type)
        for got, want in zip(parallel, serial):
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.dtype == w.dtype and g.shape == w.shape
                np.testing.assert_array_equal(g, w)


def test_loader_keeps_the_slice_order(demo):
    _, settings = demo
    volume = _volume(depth=7, size=16)
    dataset = VolumeSliceDataset(volume.array, build_volume_pipeline(settings),
                                 2., 1., '/scans/case.nii.gz', 'case')
    item = dataset[3]
    assert item['data_samples'].img_id == 'case#3'
    assert tuple(item['inputs'].shape) == (3, 16, 16)
    for workers, kind in ((0, 'thread'), (2, 'thread'), (1, 'thread'),
                          (2, 'process')):
        batches = list(volume_slice_loader(dataset, 3, workers, kind))
        assert [len(b['inputs']) for b in batches] == [3, 3, 1]
        ids = [s.img_id for b in batches for s in b['data_samples']]
        assert ids == [f'case#{z}' for z in range(7)]
        np.testing.assert_array_equal(batches[1]['inputs'][0].numpy(),
                                      item['inputs'].numpy())
    with pytest.raises(ValueError, match=r'case.nii.gz: a \(z, y, x\)'):
        VolumeSliceDataset(volume.array[0], None, 2., 1.,
                           '/scans/case.nii.gz', 'case')


@pytest.mark.parametrize('workers', [-1, 1.5, True, '2'])
def test_bad_workers_are_refused(demo, workers):
    model, settings = demo
    volume = _volume(depth=3, size=16)
    with pytest.raises(ValueError, match='workers must be an integer >= 0'):
        check_workers(workers)
    with pytest.raises(ValueError, match='workers must be an integer >= 0'):
        detect_slices(model, volume, settings, DetectionSettings(
            workers=workers, show_progress=False))
    with pytest.raises(ValueError, match='workers must be an integer >= 0'):
        infer_volume(model, volume, settings, DetectionSettings(
            workers=workers, show_progress=False))
    assert check_workers(np.int64(2)) == 2
    with pytest.raises(ValueError, match="worker_type must be one of"):
        detect_slices(model, volume, settings, DetectionSettings(
            workers=1, worker_type='fibre', show_progress=False))


def test_a_pipeline_error_in_a_worker_thread_reaches_the_caller(demo):
    """The failing slice's error, not a hang or a partial result."""
    _, settings = demo
    pipeline = build_volume_pipeline(settings)

    def failing(results):
        if results['key_slice'] == 4:
            raise ValueError('slice 4 is broken')
        return pipeline(results)

    dataset = VolumeSliceDataset(_volume(8, 16).array, failing, 2., 1., 'x',
                                 'x')
    got = []
    with pytest.raises(ValueError, match='slice 4 is broken'):
        for batch in volume_slice_loader(dataset, 2, workers=2):
            got.append(batch)
    assert len(got) == 2  # slices 0-3 came, in order, before the error


def test_bad_batch_size_is_refused(demo):
    _, settings = demo
    dataset = VolumeSliceDataset(_volume(3, 16).array,
                                 build_volume_pipeline(settings), 2., 1.,
                                 'x', 'x')
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match='batch_size must be'):
            volume_slice_loader(dataset, bad)


def _sample(n: int, dtype=torch.float32, seg_shape=(1, 4, 5)):
    sample = DetDataSample()
    sample.pred_instances = InstanceData(
        bboxes=torch.arange(4 * n, dtype=dtype).reshape(n, 4),
        scores=torch.linspace(1., 0., n, dtype=dtype),
        labels=torch.arange(n))
    sample.pred_sem_seg = PixelData(sem_seg=torch.rand(seg_shape))
    return sample


def test_outputs_to_cpu_keeps_values_and_splits_per_slice():
    outputs = [_sample(3), _sample(0), _sample(2)]
    want = [(o.pred_instances.bboxes.clone(), o.pred_instances.scores.clone(),
             o.pred_instances.labels.clone()) for o in outputs]
    seg = outputs[0].pred_sem_seg.sem_seg
    outputs_to_cpu(outputs)
    for o, (b, s, lab) in zip(outputs, want):
        assert torch.equal(o.pred_instances.bboxes, b)
        assert torch.equal(o.pred_instances.scores, s)
        assert torch.equal(o.pred_instances.labels, lab)
        assert o.pred_instances.bboxes.dtype == b.dtype
    # the three slices' boxes now share one CPU copy
    assert outputs[0].pred_instances.bboxes.untyped_storage().data_ptr() == \
        outputs[2].pred_instances.bboxes.untyped_storage().data_ptr()
    assert outputs[0].pred_sem_seg.sem_seg is seg  # on the CPU already
    # mixed dtypes are not concatenated (that would change values' type)
    mixed = [_sample(2), _sample(1, dtype=torch.float64)]
    before = [o.pred_instances.bboxes for o in mixed]
    outputs_to_cpu(mixed)
    assert [o.pred_instances.bboxes for o in mixed] == before
    assert mixed[1].pred_instances.bboxes.dtype == torch.float64
    outputs_to_cpu([])  # nothing to do


def test_infer_volume_tool_refuses_negative_workers(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'infer_volume', repo_root() / 'tools' / 'infer_volume.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    # one worker thread by default (the tool shows the settings' value):
    # faster than the main thread where measured (docs/benchmarks.md)
    from mmlesion.apis.whole_scan.settings import DetectionSettings
    assert DetectionSettings().workers == 1
    code = tool.main([
        str(repo_root() / 'configs' / DEMO_CFG), str(tmp_path / 'w.pth'),
        str(tmp_path / 'scan.nii.gz'), '--out-dir', str(tmp_path / 'out'),
        '--workers', '-1'
    ])
    assert code == 1
    assert 'workers must be an integer >= 0, got -1' in \
        capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
