# Copyright (c) mmlesion contributors. All rights reserved.
"""Whole-scan detection's faster path finds what the earlier one found.

The earlier path: SimpleITK resampling and the configured test transforms
slice by slice. The current one: torch resampling
(``resample_volume_torch``) and batched windowing
(``WindowedVolumeSlices``). The model inputs are compared bit for bit
(windowing) and the findings of a detector whose boxes follow the image
(a smooth function of the pixels: a shift of the resampling grid or a
wrong window moves them) are compared on a synthetic and, where present,
a real scan. And the lesion maps of a model with a segmentation head.
"""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmlesion.apis.whole_scan import detect
from mmlesion.apis.whole_scan.detect import (lesion_map_collector,
                                             lesion_map_of)
from mmlesion.apis.whole_scan.infer import infer_volume
from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                               build_volume_pipeline,
                                               volume_settings_from_config)
from mmlesion.apis.whole_scan.slices import (VolumeSliceDataset,
                                             WindowedVolumeSlices,
                                             volume_slice_dataset,
                                             volume_slice_loader)
from projects.study_demo.synthetic.volumes import generate_demo_volumes
from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing import get_config, shared_data_root

DEMO_CFG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def _settings(pixel_spacing=1., num_slices=3, **window):
    """The demo config's volume settings; ``window`` may set ``window``,
    ``out_range`` (``WindowHU``) and ``hu_clip`` (``LoadVolumeSlices``)."""
    settings = volume_settings_from_config(get_config(DEMO_CFG),
                                           pixel_spacing)
    load, win = settings.pipeline[:2]
    assert (load['type'], win['type']) == ('LoadVolumeSlices', 'WindowHU')
    load['num_slices'] = settings.num_slices = num_slices
    if 'hu_clip' in window:
        load['hu_clip'] = window.pop('hu_clip')
    win.update(window)
    return settings


def _assert_same_batches(array, settings, slice_interval=2.):
    pipeline = build_volume_pipeline(settings)
    slow = VolumeSliceDataset(array, pipeline, slice_interval, .8, 'p', 's')
    fast = volume_slice_dataset(array, pipeline, slice_interval, .8, 'p',
                                's')
    assert isinstance(fast, WindowedVolumeSlices)
    count = 0
    for workers in (0, 1):
        for a, b in zip(volume_slice_loader(slow, 4, workers),
                        volume_slice_loader(fast, 4, workers)):
            for x, y in zip(a['inputs'], b['inputs']):
                assert x.dtype == y.dtype and x.shape == y.shape
                # bit for bit (NaN where NaN)
                assert torch.equal(x.isnan(), y.isnan())
                assert torch.equal(x.nan_to_num(), y.nan_to_num())
                count += 1
            for x, y in zip(a['data_samples'], b['data_samples']):
                assert x.metainfo == y.metainfo
                assert x.all_keys() == y.all_keys()
    assert count == 2 * len(array)
    # one item alone, as a DataLoader's worker process asks for it
    z = len(array) - 1
    assert torch.equal(slow[z]['inputs'], fast[z]['inputs'])


def test_batched_windowing_gives_the_inputs_of_the_pipeline():
    rng = np.random.default_rng(0)
    array = rng.uniform(-2000., 4000., (11, 24, 20)).astype(np.float32)
    array[3, 4, 5] = np.nan
    _assert_same_batches(array, _settings())
    # another window and output range, no HU clamp
    _assert_same_batches(
        array, _settings(window=(-160.5, 240.25), out_range=(0., 255.),
                         hu_clip=None))
    # 9 channels: neighbours +-4 slices, clamped at both ends
    _assert_same_batches(array, _settings(num_slices=9))
    # a volume at half the channel interval: channels 2 slices apart
    _assert_same_batches(array, _settings(), slice_interval=1.)


def test_batched_windowing_only_where_it_applies():
    array = np.zeros((5, 8, 8), np.float32)
    settings = _settings()
    pipeline = build_volume_pipeline(settings)
    # channels between two slices: interpolated, so slice by slice
    assert not WindowedVolumeSlices.applies(pipeline, 1.5)
    assert type(volume_slice_dataset(array, pipeline, 1.5, .8, 'p',
                                     's')) is VolumeSliceDataset
    with pytest.raises(ValueError, match='whole number of slices'):
        WindowedVolumeSlices(array, pipeline, 1.5, .8, 'p', 's')
    # another transform in the pipeline: slice by slice
    settings.pipeline.insert(2, dict(type='ClipBlackBorder'))
    assert not WindowedVolumeSlices.applies(build_volume_pipeline(settings),
                                            2.)


class _ImageFollowingDetector(torch.nn.Module):
    """Boxes that follow the image smoothly: per slice, the connected
    regions of the key channel above ``low`` (in windowed units), each
    weighted by ``clip((x - low) / (high - low), 0, 1)``; a region's box is
    its weighted centre +- 2 weighted standard deviations, its score
    0.5 + 0.4 (1 - exp(-its total weight / 50)). A pixel that crosses
    ``low`` adds a weight near 0, so tiny input changes move the boxes by
    tiny amounts, while a grid shift of a voxel moves them by about a
    voxel."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def test_step(self, data: dict) -> list:
        from scipy import ndimage
        out = []
        for img, sample in zip(data['inputs'], data['data_samples']):
            key = img[img.shape[0] // 2].double().numpy()
            w = np.clip((key - self.low) / (self.high - self.low), 0., 1.)
            labels, num = ndimage.label(w > 0)
            boxes, scores = [], []
            ys, xs = np.mgrid[:w.shape[0], :w.shape[1]] + .5
            for i in range(1, num + 1):
                m = np.where(labels == i, w, 0.)
                total = m.sum()
                if total < 3.:
                    continue
                cx, cy = (m * xs).sum() / total, (m * ys).sum() / total
                sx = np.sqrt((m * (xs - cx)**2).sum() / total)
                sy = np.sqrt((m * (ys - cy)**2).sum() / total)
                boxes.append([cx - 2 * sx, cy - 2 * sy, cx + 2 * sx,
                              cy + 2 * sy])
                scores.append(.5 + .4 * (1. - np.exp(-total / 50.)))
            sample.pred_instances = InstanceData(
                bboxes=torch.tensor(boxes, dtype=torch.float64).reshape(
                    -1, 4),
                scores=torch.tensor(scores, dtype=torch.float64),
                labels=torch.zeros(len(scores), dtype=torch.long))
            out.append(sample)
        return out


def _detector(settings, low_hu, high_hu):
    window = [t for t in settings.pipeline if t['type'] == 'WindowHU'][0]
    lo, hi = window.get('window', (-1024., 1050.))
    out_lo, out_hi = window.get('out_range', (-1., 1.))

    def windowed(hu):
        return out_lo + (hu - lo) * (out_hi - out_lo) / (hi - lo)

    return _ImageFollowingDetector(windowed(low_hu), windowed(high_hu))


def _findings_both_ways(volume, settings, model, monkeypatch):
    new = infer_volume(model, volume, settings, DetectionSettings(
        batch_size=8, show_progress=False, workers=1))
    with monkeypatch.context() as m:  # the earlier path
        m.setattr(detect, 'volume_slice_dataset',
                  VolumeSliceDataset)
        old = infer_volume(model, volume, settings, DetectionSettings(
            batch_size=8, show_progress=False, resample_backend='sitk'))
    assert new.detection.resample_backend == 'torch'
    assert old.detection.resample_backend == 'sitk'
    return old, new


def _assert_same_findings(old, new):
    assert len(new.findings) == len(old.findings) > 0
    assert new.num_boxes_2d == old.num_boxes_2d
    assert new.resampled_geometry == old.resampled_geometry
    def canonical(findings):  # equal scores may come in either order
        return sorted(findings, key=lambda f: (
            f.slice_range, f.key_slice,
            [round(v) for v in f.bbox_voxel_resampled]))

    for a, b in zip(canonical(old.findings), canonical(new.findings)):
        assert a.slice_range == b.slice_range
        assert a.key_slice == b.key_slice
        assert a.slice_range_original == b.slice_range_original
        for key in ('bbox_voxel', 'bbox_voxel_resampled', 'bbox_world',
                    'center_world'):
            np.testing.assert_allclose(getattr(b, key), getattr(a, key),
                                       rtol=0, atol=1e-2, err_msg=key)
        assert b.score == pytest.approx(a.score, abs=1e-5)
        assert [d.slice for d in a.boxes_2d] == [d.slice for d in b.boxes_2d]
        np.testing.assert_allclose([d.bbox for d in b.boxes_2d],
                                   [d.bbox for d in a.boxes_2d],
                                   rtol=0, atol=1e-2)


def test_same_findings_as_the_earlier_path_on_a_synthetic_scan(
        tmp_path, monkeypatch):
    generate_demo_volumes(tmp_path / 'v', seed=3, num_luna=1, num_kits=0,
                          num_lits=0, val_fraction=0., size_range=(96, 96),
                          num_slices_range=(50, 50), nodules_per_scan=(3, 3),
                          nodule_diameter_range=(10., 20.),
                          nodule_hu_range=(250., 350.))
    volume = load_ct_volume(str(next((tmp_path / 'v').rglob('*.mhd'))))
    settings = _settings(pixel_spacing=.8)
    old, new = _findings_both_ways(volume, settings,
                                   _detector(settings, 120., 250.),
                                   monkeypatch)
    _assert_same_findings(old, new)
    # the check sees a grid shifted by a fraction of a voxel
    shifted = load_ct_volume(str(next((tmp_path / 'v').rglob('*.mhd'))))
    shifted.array = np.ascontiguousarray(
        np.roll(volume.array, 1, axis=2))
    moved = infer_volume(_detector(settings, 120., 250.), shifted, settings,
                         DetectionSettings(batch_size=8,
                                           show_progress=False))
    with pytest.raises(AssertionError):
        _assert_same_findings(old, moved)


REAL_SCAN = 'ct_volumes/totalsegmentator/example_ct.nii.gz'


@pytest.mark.skipif(
    shared_data_root() is None
    or not (shared_data_root() / REAL_SCAN).is_file(),
    reason=f'no real CT scan: {REAL_SCAN} of the shared data folder '
    '(MMLESION_SHARED_DATA, ../shared/data) is absent')
def test_same_findings_as_the_earlier_path_on_a_real_scan(monkeypatch):
    """A real abdominal CT (3 mm voxels) at 2 mm slices and 1.4 mm pixels:
    bones and contrast-filled vessels (above 200 HU) are the "lesions"."""
    volume = load_ct_volume(str(shared_data_root() / REAL_SCAN))
    settings = _settings(pixel_spacing=1.4)
    old, new = _findings_both_ways(volume, settings,
                                   _detector(settings, 200., 350.),
                                   monkeypatch)
    _assert_same_findings(old, new)


def test_only_models_with_a_seg_head_give_lesion_maps():
    assert lesion_map_collector(torch.nn.Linear(1, 1)) is None

    class WithSeg(torch.nn.Module):
        with_seg_head = True
        return_seg_map = False

    model = WithSeg()
    assert lesion_map_collector(model) == [] and model.return_seg_map


def test_lesion_map_is_thresholded_and_placed_at_the_crop_offset():
    from mmdet.structures import DetDataSample
    from mmengine.structures import PixelData

    sample = DetDataSample()
    prob = torch.zeros(1, 4, 6)
    prob[0, 1:3, 2:5] = .7
    prob[0, 0, 0] = .4
    sample.pred_sem_seg = PixelData(sem_seg=prob)
    model = torch.nn.Linear(1, 1)
    model.score_calibration = dict(mask_thr=.5)
    out = lesion_map_of(model, sample, (8, 10), (3., 2.))
    assert out.shape == (8, 10) and out.sum() == 6
    assert out[3:5, 5:8].all()
    model.score_calibration = dict(mask_thr=.3)
    assert lesion_map_of(model, sample, (8, 10), (3., 2.))[2, 3]
