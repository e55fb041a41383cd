# Copyright (c) mmlesion contributors. All rights reserved.
"""The floor of the 3D-AG whole-scan steps times the steps' own library
calls on the same data (no timing is asserted)."""
import numpy as np
import pytest
import torch

from mmlesion.datasets.volumes import CTVolume, resample_volume
from tests.helpers.lung_phantom import chest_phantom
from tests.helpers.tool_modules import load_tool


@pytest.fixture(scope='module')
def floor():
    return load_tool('projects/benchmarks/aggregated3d_scan_floor.py')


def _scan():
    vol = chest_phantom()[0]
    return CTVolume(vol.array, (.7, .8, .8), vol.origin_xyz)


def test_the_three_parts_on_a_chest(floor):
    vol = _scan()
    res = resample_volume(vol, (1., 1., 1.), backend='torch')
    volume = torch.from_numpy(np.clip(res.array, -1, 1))[None]
    parts = floor.floor_seconds(vol, res, volume, dict(window_size=16,
                                                       overlap=4))
    assert tuple(parts) == floor.FLOOR_PARTS
    assert all(s > 0 for s in parts.values()), parts


@pytest.mark.parametrize('spacing', [(.7, .8, .8), (1.25, 1., .6)])
def test_the_kernel_is_checked_against_the_resampled_volume(floor, spacing):
    vol = CTVolume(_scan().array, spacing, (0., 0., 0.))
    res = resample_volume(vol, (1., 1., 1.), backend='torch')
    assert floor._resample_kernel(vol, res) > 0
    res.array = res.array.copy()
    res.array[1, 2, 3] += 1.
    with pytest.raises(RuntimeError, match='other values'):
        floor._resample_kernel(vol, res)


def test_every_window_is_copied(floor, monkeypatch):
    from mmlesion.methods.aggregated3d.models import \
        aggregated_faster_rcnn_3d as det
    seen = []
    cut = det._cut_windows

    def spy(volume, origins, buffer, pad_value):
        seen.extend(origins)
        out = cut(volume, origins, buffer, pad_value)
        z, y, x = origins[0]
        d, h, w = buffer.shape[2:]
        crop = volume[:, z:z + d, y:y + h, x:x + w]
        assert torch.equal(out[0, :, :crop.shape[1], :crop.shape[2],
                               :crop.shape[3]], crop)
        return out

    monkeypatch.setattr(det, '_cut_windows', spy)
    volume = torch.rand((1, 20, 40, 70))
    floor._window_copies(volume, dict(window_size=32, overlap=8), 0.)
    # z: one window of 32 (20 rounded up to 32); y: 0, 8; x: 0, 24, 38
    assert sorted(seen) == [(0, y, x) for y in (0, 8) for x in (0, 24, 38)]


def test_all_air_has_no_components(floor):
    air = CTVolume(np.full((6, 10, 12), -1000., np.float32), (1., ) * 3,
                   (0., ) * 3)
    assert floor._components(air) == 0.
