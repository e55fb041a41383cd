# Copyright (c) mmlesion contributors. All rights reserved.
import math

import pytest
import torch

from mmlesion.methods.aggregated3d.models import RoIAlign3D, roi_align_3d


def _trilinear(vol, z, y, x):
    """8-neighbour trilinear interpolation, zero outside (plain loop)."""
    d, h, w = vol.shape[-3:]
    z0, y0, x0 = math.floor(z), math.floor(y), math.floor(x)
    val = vol.new_zeros(vol.shape[0])
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                zi, yi, xi = z0 + dz, y0 + dy, x0 + dx
                wgt = ((1 - abs(z - zi)) * (1 - abs(y - yi)) *
                       (1 - abs(x - xi)))
                if 0 <= zi < d and 0 <= yi < h and 0 <= xi < w:
                    val = val + wgt * vol[:, zi, yi, xi]
    return val


def _reference(feats, rois, out, scale, ratio):
    res = []
    for roi in rois:
        b = int(roi[0])
        x1, y1, z1, x2, y2, z2 = [float(v) * scale - 0.5 for v in roi[1:]]
        bw, bh, bd = (x2 - x1) / out, (y2 - y1) / out, (z2 - z1) / out
        cells = feats.new_zeros(feats.shape[1], out, out, out)
        for k in range(out):
            for j in range(out):
                for i in range(out):
                    acc = 0
                    for sk in range(ratio):
                        for sj in range(ratio):
                            for si in range(ratio):
                                z = z1 + (k + (sk + .5) / ratio) * bd
                                y = y1 + (j + (sj + .5) / ratio) * bh
                                x = x1 + (i + (si + .5) / ratio) * bw
                                acc = acc + _trilinear(feats[b], z, y, x)
                    cells[:, k, j, i] = acc / ratio**3
        res.append(cells)
    return torch.stack(res)


@pytest.fixture
def case():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 3, 5, 6, 7, generator=g, dtype=torch.float64)
    rois = torch.tensor([[0, 2.0, 3.0, 1.0, 9.0, 8.0, 7.5],
                         [1, 0.0, 0.0, 0.0, 14.0, 12.0, 10.0],
                         [0, 10.5, 1.0, 4.0, 13.0, 5.0, 9.0],  # near border
                         [1, 5.0, 5.0, 5.0, 5.6, 5.6, 5.6]],  # tiny
                        dtype=torch.float64)
    return feats, rois


def test_values_against_loop_reference(case):
    feats, rois = case
    out = roi_align_3d(feats, rois, 2, spatial_scale=0.5, sampling_ratio=2)
    ref = _reference(feats, rois, 2, 0.5, 2)
    assert out.shape == (4, 3, 2, 2, 2)
    assert torch.allclose(out, ref, atol=1e-10)
    # a constant map gives the constant inside the map
    const = torch.full((1, 1, 8, 8, 8), 3.0)
    mod = RoIAlign3D(output_size=(2, 3, 4), spatial_scale=1.0,
                     sampling_ratio=1)
    val = mod(const, torch.tensor([[0, 2., 2., 2., 6., 6., 6.]]))
    assert val.shape == (1, 1, 2, 3, 4) and torch.allclose(val,
                                                           torch.tensor(3.))


def test_gradients_gradcheck(case):
    feats, rois = case
    feats = feats.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda f: roi_align_3d(f, rois, 2, 0.5, 2), (feats, ))
    # and equal to the reference's gradients
    f1 = feats.detach().clone().requires_grad_(True)
    f2 = feats.detach().clone().requires_grad_(True)
    w = torch.randn(4, 3, 2, 2, 2, dtype=torch.float64)
    (roi_align_3d(f1, rois, 2, 0.5, 2) * w).sum().backward()
    (_reference(f2, rois, 2, 0.5, 2) * w).sum().backward()
    assert torch.allclose(f1.grad, f2.grad, atol=1e-10)


def test_bad_input():
    with pytest.raises(ValueError, match=r'\(K, 7\)'):
        roi_align_3d(torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 5), 2)
    with pytest.raises(ValueError, match='B, C, D, H, W'):
        roi_align_3d(torch.zeros(1, 2, 2, 2), torch.zeros(1, 7), 2)


def test_float32_sampling_into_half_features(monkeypatch):
    """CUDA's autocast runs ``grid_sample`` in float32 while the features
    are float16: the samples are written back in the features' dtype (an
    indexed write of float32 into float16 failed on a GPU under AMP)."""
    import torch.nn.functional as F
    real = F.grid_sample
    monkeypatch.setattr(
        F, 'grid_sample',
        lambda x, grid, **kw: real(x.float(), grid.float(), **kw))
    feats = torch.randn(2, 3, 8, 8, 8)
    rois = torch.tensor([[0, 1., 1., 1., 6., 6., 6.],
                         [1, 2., 0., 3., 7., 5., 8.]])
    out = roi_align_3d(feats.half(), rois, 2, 1.0, 2)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(),
                               roi_align_3d(feats, rois, 2, 1.0, 2),
                               atol=2e-2, rtol=1e-2)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_one_roi_per_image_is_the_per_image_result(dtype):
    """RoI i on image i (Local Magnification's crops) is sampled in one
    batched call: the same values as one image at a time, bit for bit, for
    RoIs inside, across and outside the maps; RoIs in another order take
    the per-image loop and agree too."""
    gen = torch.Generator().manual_seed(0)
    k = 7
    feats = torch.randn(k, 3, 5, 6, 7, generator=gen, dtype=dtype)
    lo = torch.rand(k, 3, generator=gen, dtype=dtype) * 8 - 2
    size = torch.rand(k, 3, generator=gen, dtype=dtype) * 6 + 0.5
    boxes = torch.cat([lo, lo + size], 1)
    rois = torch.cat([torch.arange(k, dtype=dtype)[:, None], boxes], 1)
    out = roi_align_3d(feats, rois, (2, 3, 2), 1.0, 2)
    single = torch.cat([
        roi_align_3d(feats[i:i + 1],
                     torch.cat([rois.new_zeros(1, 1), boxes[i:i + 1]], 1),
                     (2, 3, 2), 1.0, 2) for i in range(k)
    ])
    assert out.shape == (k, 3, 2, 3, 2)
    assert torch.equal(out, single)
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])
    rois_perm = torch.cat([perm[:, None].to(dtype), boxes], 1)
    out_perm = roi_align_3d(feats, rois_perm, (2, 3, 2), 1.0, 2)
    expected = torch.cat([
        roi_align_3d(feats[j:j + 1],
                     torch.cat([rois.new_zeros(1, 1), boxes[i:i + 1]], 1),
                     (2, 3, 2), 1.0, 2) for i, j in enumerate(perm.tolist())
    ])
    assert torch.equal(out_perm, expected)


def test_one_roi_per_image_gradient():
    feats = torch.randn(3, 2, 4, 4, 4, dtype=torch.float64,
                        requires_grad=True)
    rois = torch.tensor([[0., .5, .5, .5, 3., 3., 3.],
                         [1., 0., 1., 0., 4., 4., 2.],
                         [2., -1., 0., 1., 2., 3., 4.]], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda f: roi_align_3d(f, rois, 2, 1.0, 2), (feats, ))
