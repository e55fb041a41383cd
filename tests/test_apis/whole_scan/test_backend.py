# Copyright (c) mmlesion contributors. All rights reserved.
"""The ONNX Runtime and OpenVINO backends find what eager torch finds (the
same kept boxes, each within 0.5 px and its score within 1e-3), on the demo
config and on a full-size 2.5D config (ResNet-50 FPN, 3 slices) with random
weights; the exports (convolutions, box head) are cached beside the
checkpoint by the checkpoint and config and read back, by either backend; a
detector whose trace bakes a value of the data in runs in torch, and a box
head that cannot be exported stays in torch, each saying why; bf16 only when
asked; the comparison sees a different kept set."""
import os
import os.path as osp

import numpy as np
import pytest
import torch

from mmlesion.apis.whole_scan.backend import (Agreement, AttachedParts,
                                              BackendKey, attached_parts,
                                              compare_detections,
                                              detach_backend, use_backend)
from mmlesion.apis.whole_scan.detect import detect_slices
from mmlesion.apis.whole_scan.results import SliceDetections
from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                               RunSettings,
                                               volume_settings_from_config)
from mmlesion.datasets.volumes import CTVolume
from mmlesion.testing import get_config
from mmlesion.utils.checkpoints.checksum import sha256_file

pytest.importorskip('onnxruntime')
pytest.importorskip('openvino')
#: OpenVINO's runtime, once loaded, makes the process die at a later
#: fork (an xdist worker died on its next subprocess): these tests run in a
#: fresh interpreter of their own, from test_backend_process.py.
pytestmark = pytest.mark.skipif(
    os.environ.get('MMLESION_BACKEND_PROCESS') != '1',
    reason='run in their own process by test_backend_process.py')

DEMO_CFG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
R50_CFG = 'elixirnet/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'


def _detector(name: str, seed: int = 0):
    """The config's detector with random weights (no pretrained ones); the
    full-size one keeps 100 proposals per slice, not 1,000 (its RoI head's
    fully connected layers: seconds a slice here)."""
    from mmdet.registry import MODELS
    cfg = get_config(name)
    cfg.model.backbone.init_cfg = None
    if name == R50_CFG:
        cfg.model.test_cfg.rpn.update(nms_pre=300, max_per_img=100)
    torch.manual_seed(seed)
    return cfg, MODELS.build(cfg.model).eval()


def _scan(size: int = 96, slices: int = 5) -> CTVolume:
    """A smooth random body with two bright blobs, 1 mm pixels, 2 mm
    slices."""
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:slices, :size, :size].astype(np.float32)
    hu = -900. + 950. * ((y - size / 2)**2 + (x - size / 2)**2
                         < (size / 2.5)**2)
    for cy, cx, r in ((30, 40, 8), (60, 55, 5)):
        hu += 200. * (((y - cy)**2 + (x - cx)**2) < r * r)
    hu += rng.normal(0., 30., hu.shape)
    return CTVolume(hu.astype(np.float32), (2., 1., 1.), (0., 0., 0.))


def _detect(model, cfg, volume) -> SliceDetections:
    return detect_slices(
        model, volume, volume_settings_from_config(cfg, 1.),
        DetectionSettings(batch_size=3, show_progress=False, workers=0))


def _checkpoint(model, folder) -> str:
    path = osp.join(str(folder), 'epoch_1.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def _counted(obj, name: str, calls: list) -> None:
    """Count the calls of ``obj.name`` (on the instance)."""
    method = getattr(obj, name)
    setattr(obj, name, lambda *a, **k: calls.append(1) or method(*a, **k))


@pytest.mark.parametrize('name', [DEMO_CFG, R50_CFG])
def test_each_backend_finds_what_torch_finds(name, tmp_path):
    """ONNX Runtime and OpenVINO (f32): the convolutions and the box head
    in the backend, the same findings; the second backend reads the first
    one's export back from beside the checkpoint."""
    cfg, model = _detector(name)
    volume = _scan(96 if name == DEMO_CFG else 64)
    eager = _detect(model, cfg, volume)
    checkpoint = _checkpoint(model, tmp_path)
    key = BackendKey(checkpoint, sha256_file(checkpoint), cfg.pretty_text)
    for backend, action in (('onnxruntime', 'exported'),
                            ('openvino', 'reused')):
        status = use_backend(model, backend, key)
        assert (status.backend, status.action) == (backend, action)
        assert 'dense head' in status.part  # the RPN head's convs too
        assert f'box head FCs {action}' in status.box_head
        assert status.precision == 'f32'  # asked: OpenVINO's CPU default
        # on a bf16-capable CPU is bf16
        features, box_head = (attached_parts(model).features,
                              attached_parts(model).box_head)
        assert features.session.precision == box_head.session.precision \
            == 'f32'
        calls, box_calls, head_calls, fc_calls = [], [], [], []
        _counted(features.session, 'run', calls)
        _counted(box_head.session, 'run', box_calls)
        _counted(model.rpn_head, 'forward_single', head_calls)
        _counted(model.roi_head.bbox_head, 'forward', fc_calls)
        exported = _detect(model, cfg, volume)
        for obj, attr in ((features.session, 'run'),
                          (box_head.session, 'run'),
                          (model.rpn_head, 'forward_single'),
                          (model.roi_head.bbox_head, 'forward')):
            delattr(obj, attr)
        assert len(calls) == len(box_calls) == 2  # 5 slices, batches of 3
        assert head_calls == fc_calls == []  # their outputs: the backend's
        agreement = compare_detections(eager, exported)
        assert agreement.boxes >= 10 * len(volume.array)  # boxes compared
        assert agreement.same, (backend, agreement)
    assert sorted(p.name for p in tmp_path.glob('*.onnx')) == sorted(
        osp.basename(key.cache_path(part)) for part in ('', 'box_head'))
    detach_backend(model)
    assert attached_parts(model) == AttachedParts(None, None)
    assert '_bbox_forward' not in model.roi_head.__dict__
    if name == DEMO_CFG:
        again = compare_detections(eager, _detect(model, cfg, volume))
        assert again.same and again.box_px == 0 and again.score == 0


def test_a_box_head_that_cannot_be_exported_runs_in_torch():
    """The convolutions still go to the backend; the log line says why the
    box head does not."""
    cfg, model = _detector(DEMO_CFG)
    volume = _scan(64, 3)
    eager = _detect(model, cfg, volume)
    for layer in model.roi_head.bbox_roi_extractor.roi_layers:
        layer.pool_mode = 'max'  # no ONNX RoiAlign of mmcv's max mode
    status = use_backend(model, 'openvino',
                         BackendKey(None, None, cfg.pretty_text))
    assert status.backend == 'openvino'
    assert status.box_head.startswith('the box head in torch (its RoI '
                                      'extractor')
    assert status.box_head in status.line()
    assert attached_parts(model).box_head is None
    detach_backend(model)
    for layer in model.roi_head.bbox_roi_extractor.roi_layers:
        layer.pool_mode = 'avg'
    use_backend(model, 'openvino', BackendKey(None, None, cfg.pretty_text))
    assert compare_detections(eager, _detect(model, cfg, volume)).same


def test_bf16_only_when_asked():
    """``openvino-bf16`` computes in bf16 where the CPU has it (checked at
    its own looser tolerance) and says f32 where it has not (checked at
    f32's); ``openvino`` in f32 on the same CPU."""
    import openvino as ov
    bf16 = 'BF16' in ov.Core().get_property('CPU',
                                             'OPTIMIZATION_CAPABILITIES')
    want = 'bf16' if bf16 else 'f32'
    cfg, model = _detector(DEMO_CFG)
    status = use_backend(model, 'openvino-bf16',
                         BackendKey(None, None, cfg.pretty_text))
    assert (status.backend, status.precision) == ('openvino-bf16', want)
    assert status.line().startswith(f'backend openvino-bf16 ({want}): ')
    assert attached_parts(model).box_head.session.precision == want
    _, model = _detector(DEMO_CFG)
    status = use_backend(model, 'openvino',
                         BackendKey(None, None, cfg.pretty_text))
    assert (status.backend, status.precision) == ('openvino', 'f32')


def test_the_export_is_cached_by_checkpoint_and_config(tmp_path):
    cfg, model = _detector(DEMO_CFG)
    checkpoint = _checkpoint(model, tmp_path)
    key = BackendKey(checkpoint, sha256_file(checkpoint), cfg.pretty_text)
    first = use_backend(model, 'onnxruntime', key)
    assert first.action == 'exported'
    assert first.model_file == key.cache_path()
    assert osp.dirname(first.model_file) == str(tmp_path)
    assert osp.basename(first.model_file).startswith('epoch_1.pth.')
    # a later run (a new model of the same weights) reads it back
    _, later = _detector(DEMO_CFG, seed=1)
    later.load_state_dict(torch.load(checkpoint)['state_dict'])
    assert use_backend(later, 'onnxruntime', key).action == 'reused'
    volume = _scan(64, 3)
    detach_backend(model)
    assert compare_detections(_detect(model, cfg, volume),
                              _detect(later, cfg, volume)).same
    # another config or other weights: another file
    other = BackendKey(checkpoint, key.checkpoint_sha256,
                       cfg.pretty_text + '\n# changed')
    assert other.cache_path() != key.cache_path()
    assert BackendKey(checkpoint, '0' * 64, cfg.pretty_text).cache_path() \
        != key.cache_path()
    # a file of another model under the name: exported again
    with open(other.cache_path(), 'wb') as f, open(key.cache_path(),
                                                   'rb') as g:
        f.write(g.read())
    again = use_backend(later, 'onnxruntime', other)
    assert again.action == 'exported' and 'another model' in again.reason
    # the same key, a detector that computes otherwise now (its code
    # changed): the cached file fails the check and is exported again
    _, changed = _detector(DEMO_CFG, seed=2)
    stale = use_backend(changed, 'onnxruntime', key)
    assert stale.action == 'exported' and 'differs from torch' in \
        stale.reason
    assert use_backend(changed, 'onnxruntime', key).action == 'reused'


def test_a_trace_that_bakes_the_data_in_runs_in_torch():
    cfg, model = _detector(DEMO_CFG)
    torch_extract = model.extract_feat

    def extract_feat(x):  # a branch on the values: traced on zeros
        feats = torch_extract(x)
        return tuple(f * 2 for f in feats) if x.amax() > 0 else feats

    model.extract_feat = extract_feat
    status = use_backend(model, 'onnxruntime',
                         BackendKey(None, None, cfg.pretty_text))
    assert status.backend == 'torch' and 'differs from torch' in \
        status.reason
    assert model.extract_feat is extract_feat  # left in torch
    assert status.line().endswith('the detector runs in torch')


def test_the_comparison_sees_another_kept_set():
    boxes = np.array([[0., 0., 10., 10.], [20., 20., 30., 30.]])
    ref = SliceDetections([boxes], [np.array([.9, .5])], [np.zeros(2, int)])
    near = SliceDetections([boxes[::-1] + .2], [np.array([.5, .9005])],
                           [np.zeros(2, int)])
    agreement = compare_detections(ref, near)
    assert agreement.same and agreement.unmatched == 0
    assert agreement.box_px == pytest.approx(.2)
    assert agreement.score == pytest.approx(5e-4)
    fewer = SliceDetections([boxes[:1]], [np.array([.9])],
                            [np.zeros(1, int)])
    assert compare_detections(ref, fewer) == Agreement(1, 2, 1, 0., 0.)
    relabeled = SliceDetections([boxes], [np.array([.9, .5])],
                                [np.array([0, 1])])
    assert not compare_detections(ref, relabeled).same
    moved = SliceDetections([boxes + .6], [np.array([.9, .5])],
                            [np.zeros(2, int)])
    assert not compare_detections(ref, moved).same


def test_the_backend_runs_on_the_cpu_only():
    with pytest.raises(ValueError, match='--backend onnxruntime runs on'):
        RunSettings(backend='onnxruntime', device='cuda:0')
    with pytest.raises(ValueError, match='RunSettings.backend'):
        RunSettings(backend='tensorrt')
    with pytest.raises(ValueError, match='--backend openvino runs on'):
        RunSettings(backend='openvino', device='cuda:0')


def test_a_run_uses_the_backend_through_its_settings(tmp_path):
    """``RunSettings(backend='onnxruntime')`` (``--backend``): the export
    lands beside the checkpoint, the result records the backend, and the
    findings are torch's."""
    import SimpleITK as sitk

    from mmlesion.apis.whole_scan.run import run_volume_inference
    cfg, model = _detector(DEMO_CFG)
    checkpoint = _checkpoint(model, tmp_path)
    volume = _scan(64, 4)
    scan = str(tmp_path / 'scan.nii.gz')
    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing((1., 1., 2.))
    sitk.WriteImage(image, scan)
    results = {
        backend: run_volume_inference(
            cfg, checkpoint, scan, run_settings=RunSettings(
                backend=backend, pixel_spacing=1., interval_mm=2.,
                fp_rate=None, fp_per_scan=None,
                detection=DetectionSettings(show_progress=False)))
        for backend in ('torch', 'onnxruntime')}
    exported = list(tmp_path.glob('epoch_1.pth.*.onnx'))
    assert len(exported) == 2  # the convolutions, the box head
    assert results['onnxruntime'].model_settings == dict(
        backend='onnxruntime')
    assert 'backend' not in results['torch'].model_settings
    eager, other = (results[b].findings for b in ('torch', 'onnxruntime'))
    assert len(eager) == len(other) > 0
    for a, b in zip(eager, other):
        assert abs(a.score - b.score) <= 1e-3
        assert np.abs(np.subtract(a.bbox_voxel, b.bbox_voxel)).max() <= .5


def test_a_batch_with_openvino_forks_its_workers_and_finishers(tmp_path):
    """A batch run with ``--backend openvino`` (OpenVINO's runtime loaded
    in the batch's process) forks its slice workers and its finishing
    processes, scan after scan, and finishes every scan with the findings
    of a torch batch."""
    import SimpleITK as sitk

    from mmlesion.apis.whole_scan.settings import Finishing
    from mmlesion.apps.whole_scan.batch import (BatchOptions,
                                                run_batch_inference)
    from mmlesion.utils.distributed.forked_call import fork_available
    if not fork_available():
        pytest.skip('no fork on this platform')
    cfg, model = _detector(DEMO_CFG)
    checkpoint = _checkpoint(model, tmp_path)
    scans = []
    for k in range(3):
        volume = _scan(48 + 8 * k, 3 + k)
        scans.append(str(tmp_path / f'scan{k}.nii.gz'))
        image = sitk.GetImageFromArray(volume.array)
        image.SetSpacing((1., 1., 2.))
        sitk.WriteImage(image, scans[-1])
    rows = {}
    for backend in ('openvino', 'torch'):
        rows[backend] = run_batch_inference(
            cfg, checkpoint, scans, str(tmp_path / backend), RunSettings(
                backend=backend, pixel_spacing=1., interval_mm=2.,
                fp_rate=None, fp_per_scan=None,
                detection=DetectionSettings(show_progress=False, workers=1,
                                            worker_type='process')),
            BatchOptions(finishing=Finishing(processes=2)))
    for ours, eager in zip(rows['openvino'], rows['torch']):
        assert ours.status == eager.status == 'done', (ours, eager)
        assert ours.findings == eager.findings > 0
