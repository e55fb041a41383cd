# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D-AG whole-scan steps made cheaper for the 2x goal give what
they gave before, bit for bit: the steps as they were are kept in
``projects/benchmarks/aggregated3d_scan_baseline.py`` (the benchmark's
``--baseline``), and are compared here with the current ones on small
volumes."""
import importlib.util

import numpy as np
import pytest
import torch

from mmdet.registry import MODELS
from mmlesion.datasets.volumes import CTVolume, resample_volume
from mmlesion.datasets.volumes.lung_mask import (LungMaskSettings, _solid_box,
                                                 compute_lung_box)
from mmlesion.testing import repo_root
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg
from tests.helpers.lung_phantom import chest_phantom


def _load(name: str):
    path = repo_root() / 'projects' / 'benchmarks' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def v1():
    return _load('aggregated3d_scan_baseline')


def _volume(shape, spacing, seed=0):
    rng = np.random.default_rng(seed)
    return CTVolume(rng.uniform(-1024, 3071, shape).astype(np.float32),
                    spacing, (-10., 5., 2.))


@pytest.mark.parametrize('shape, spacing, new', [
    ((30, 41, 37), (.7, .7, .7), (1., 1., 1.)),
    ((24, 40, 40), (1.25, .6, .8), (1., 1., 1.)),
    # an axis whose size does not change (the repeated last slice)
    ((300, 8, 8), (1.25, 1., 1.), (2., 1., 1.)),
])
def test_resampling_same_values(v1, shape, spacing, new):
    vol = _volume(shape, spacing)
    now = resample_volume(vol, new, backend='torch')
    before = v1.resample_volume_torch_v1(vol, new)
    assert now.array.dtype == before.array.dtype == np.float32
    assert np.array_equal(now.array, before.array)
    assert now.spacing_zyx == before.spacing_zyx
    assert now.origin_xyz == before.origin_xyz


def _noise_scan(seed: int, shape=(12, 22, 20), rim=None) -> CTVolume:
    """Random blobs of air (-1000) and tissue (40 HU), some gas (-990),
    optionally all air ``rim`` voxels in from the in-plane border."""
    rng = np.random.default_rng(seed)
    from scipy import ndimage as ndi
    field = ndi.gaussian_filter(rng.normal(size=shape), 1.2)
    img = np.where(field < np.quantile(field, rng.uniform(.3, .7)), -1000.,
                   40.)
    img[rng.random(shape) < .05] = -990.
    if rim is not None:
        img[:, :rim[0]] = img[:, -rim[1]:] = -1000.
        img[:, :, :rim[2]] = img[:, :, -rim[3]:] = -1000.
    return CTVolume(img.astype(np.float32), (1., 1., 1.), (0., 0., 0.))


@pytest.mark.parametrize('seed', range(12))
def test_lung_box_same_on_random_air(v1, seed):
    rng = np.random.default_rng(100 + seed)
    rim = None if seed % 3 == 0 else rng.integers(1, 5, 4).tolist()
    vol = _noise_scan(seed, rim=rim)
    for kwargs in (dict(), dict(num_components=3, min_component_ratio=0.),
                   dict(max_gas_fraction=0.02)):
        assert compute_lung_box(vol, LungMaskSettings(**kwargs)) == \
            v1.compute_lung_box_v1(vol, **kwargs), kwargs


def test_lung_box_same_on_a_chest_phantom(v1):
    vol = chest_phantom()[0]
    box = compute_lung_box(vol)
    assert box is not None
    assert box == v1.compute_lung_box_v1(vol)
    # the air around the patient widened: a smaller labelled box, the
    # same lungs
    wide = np.full((vol.shape_zyx[0], vol.shape_zyx[1] + 10,
                    vol.shape_zyx[2] + 6), -1000., np.float32)
    wide[:, 4:-6, 2:-4] = vol.array
    wide = CTVolume(wide, vol.spacing_zyx, vol.origin_xyz)
    shifted = compute_lung_box(wide)
    assert shifted == v1.compute_lung_box_v1(wide)
    assert shifted == (tuple(np.add(box[0], (0, 4, 2))),
                       tuple(np.add(box[1], (0, 4, 2))))


def test_solid_box_edge_cases(v1):
    air = np.ones((3, 5, 6), bool)
    assert _solid_box(air) is None
    vol = CTVolume(np.full((3, 5, 6), -1000., np.float32), (1., ) * 3,
                   (0., ) * 3)
    assert compute_lung_box(vol) is None
    assert v1.compute_lung_box_v1(vol) is None
    air[1, 2, 3] = air[2, 1, 4] = False
    assert _solid_box(air) == ((1, 3), (3, 5))
    no_air = CTVolume(np.zeros((3, 5, 6), np.float32), (1., ) * 3,
                      (0., ) * 3)
    assert compute_lung_box(no_air) is None
    assert v1.compute_lung_box_v1(no_air) is None


def _tiny_model(batch: int, with_fprn: bool = True):
    torch.manual_seed(0)
    cfg = tiny_aggregated3d_cfg(window_size=32, overlap=8)
    if not with_fprn:
        cfg.fprn_head = None
    cfg.test_cfg.update(window_batch_size=batch,
                        rpn=dict(nms_pre=50, score_thr=0., iou_thr=0.1,
                                 max_per_img=10))
    return MODELS.build(cfg).eval()


@pytest.mark.parametrize('batch, shape, with_fprn', [
    (1, (40, 30, 52), True),   # 2 x 1 x 2 windows, y padded (30 -> 32)
    (3, (40, 36, 52), True),   # 8 windows in batches of 3, 3 and 2
    (2, (20, 18, 40), False),  # z and y padded, the RPN alone
])
def test_sliding_windows_same_detections(v1, batch, shape, with_fprn):
    model = _tiny_model(batch, with_fprn)
    volume = torch.rand((1, ) + shape, generator=torch.Generator()
                        .manual_seed(1)) * 2 - 1
    seen = []
    predict_window = model._predict_window

    def spy(windows):
        seen.append(windows.clone())
        return predict_window(windows)

    model._predict_window = spy
    with torch.no_grad():
        now = model.predict_volume(volume)
        windows_now = seen[:]
        seen.clear()
        before = v1.predict_volume_v1(model, volume)
    assert len(now) > 0
    assert sorted(now.keys()) == sorted(before.keys())
    for key in now.keys():
        assert torch.equal(now.get(key), before.get(key)), key
    assert len(windows_now) == len(seen)
    for a, b in zip(windows_now, seen):
        assert a.is_contiguous() and torch.equal(a, b)


def test_sliding_windows_with_autograd_on(v1):
    """Outside ``no_grad`` each batch gets its own windows (autograd may
    keep them): the same detections."""
    model = _tiny_model(1)
    volume = torch.rand(1, 40, 30, 40, generator=torch.Generator()
                        .manual_seed(2))
    now = model.predict_volume(volume)
    before = v1.predict_volume_v1(model, volume)
    assert torch.equal(now.bboxes, before.bboxes)
    assert torch.equal(now.scores, before.scores)


def test_benchmark_baseline_and_replay_on_a_tiny_scan(tmp_path, capsys):
    tool = _load('benchmark_aggregated3d_scan')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = tool.main([
            '--config', str(repo_root() / tool.DEFAULT_CONFIG),
            '--scan-size', '24', '40', '--repeats', '2', '--warmup', '1',
            '--baseline', '--replay-network'
        ])
    finally:
        torch.set_num_threads(threads)
    base = result['baseline']
    assert base['same_output'] and result['replay_network']
    for part in tool.BASELINE_PARTS:
        assert base['parts'][part]['median'] >= 0, part
    assert base['non_network_over_read'] > 0 and result['goal'] == 2.
    out = capsys.readouterr().out
    assert 'before the 2x goal (--baseline)' in out
    assert 'network replayed from the warm-up' in out


def test_host_copies_give_torchs_values():
    from mmlesion.utils.host_copy import copy_into, fill, flatten, numpy_view
    gen = torch.Generator().manual_seed(3)
    src = torch.randn(1, 20, 18, 30, generator=gen)[:, 2:12, 3:15, 5:25]
    dst = torch.empty(1, 10, 12, 20)
    assert copy_into(dst, src) is dst and torch.equal(dst, src)
    assert torch.equal(fill(dst, -1.), torch.full_like(dst, -1.))
    for d in (4, 32):  # under and over torch's parallel grain
        out = torch.randn(2, 10, d, d, d, generator=gen)
        score = out.view(2, -1, 5, d, d, d).permute(0, 3, 4, 5, 1, 2)[1, ...,
                                                                      0]
        assert torch.equal(flatten(score), score.reshape(-1))
    assert flatten(out).data_ptr() == out.data_ptr()  # contiguous: a view
    # where numpy cannot view a tensor, torch copies
    for tensor in (src.requires_grad_(), src.detach().bfloat16()):
        assert numpy_view(tensor) is None
        assert torch.equal(flatten(tensor.permute(3, 2, 1, 0)),
                           tensor.permute(3, 2, 1, 0).reshape(-1))
    half = torch.empty(1, 10, 12, 20, dtype=torch.bfloat16)
    assert torch.equal(copy_into(half, src.detach().bfloat16()),
                       src.detach().bfloat16())
    assert torch.equal(fill(half, 2.), torch.full_like(half, 2.))


@pytest.mark.parametrize('seed', range(4))
def test_mask_region_same(v1, seed):
    from mmlesion.datasets.volumes import mask_region
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(4, 12, 3))
    arr = rng.random(shape) < (0. if seed == 0 else .02 * seed)
    mask = CTVolume(arr, (1.5, .8, .7), (3., -2., 1.))
    target = CTVolume(np.zeros((9, 14, 13), np.float32), (1., 1., 1.),
                      (2., -3., 0.))
    for margin in (0., 2.5):
        assert mask_region(mask, target, margin) == \
            v1.mask_region_v1(mask, target, margin)


def test_hu_window_same(v1):
    from mmlesion.datasets.transforms.windowing import window_hu
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64, np.int16):
        img = rng.uniform(-3000, 3000, (6, 9, 11)).astype(dtype)
        before = img.copy()
        view = img[1:5, 2:8, 3:10]
        for window, out in (((-1200., 600.), (-1., 1.)),
                            ((-1024., 3071.), (0., 255.))):
            now = window_hu(view, window, out)
            assert now.flags['C_CONTIGUOUS'] and now.dtype == np.float32
            assert np.array_equal(now, v1.window_hu_v1(
                np.ascontiguousarray(view), window, out))
        assert np.array_equal(img, before)  # the input is not changed
