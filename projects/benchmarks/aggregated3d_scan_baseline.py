# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D-AG whole-scan steps as they were before the 2x goal, kept
so that ``benchmark_aggregated3d_scan.py --baseline`` times them beside
the current ones in the same rounds and the tests can check that both give
the same output.

* :func:`resample_volume_torch_v1`: the output of torch's trilinear kernel
  in a tensor torch allocates (now numpy's buffer, huge pages advised);
* :func:`compute_lung_box_v1`: connected components of the whole volume
  (now of the in-plane box of its voxels that are not air);
* :func:`mask_region_v1`: the mask's box in four passes over it (now
  two);
* :func:`window_hu_v1`: the HU window in four new arrays, on a contiguous
  copy of the crop that the benchmark made first (now one contiguous copy
  made by ``window_hu`` of the cropped view, as ``WindowHU`` gets it, then
  the same operations in place);
* :func:`predict_volume_v1`: every window cut, padded (``F.pad``) and
  stacked (``torch.stack``) into new tensors, and the RPN head's score
  maps flattened, by torch (:func:`torch_copies`; now copied into one
  reused buffer, and both copies made by numpy on the calling thread,
  :mod:`mmlesion.utils.host_copy`).

Each is the code of the time, unchanged but for names and one fix: the
gas test's region image is kept alive while its array view is read (the
view of a temporary read freed memory: random gas counts on small
volumes).
"""
import contextlib
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmlesion.datasets.volumes import CTVolume
from mmlesion.datasets.volumes.resampling import (_output_grid,
                                                  resample_boxes_3d,
                                                  source_positions)
from mmlesion.methods.aggregated3d.models import \
    aggregated_faster_rcnn_3d as det_module


def resample_volume_torch_v1(volume: CTVolume,
                             spacing_zyx: Sequence[float],
                             default_value: Optional[float] = None
                             ) -> CTVolume:
    """``resample_volume_torch`` before: the same grid and values."""
    spacing_zyx = tuple(float(s) for s in spacing_zyx)
    default_value = -1024. if default_value is None else float(default_value)
    new_sp, new_size, _, origin = _output_grid(volume, spacing_zyx)
    old_sp = np.asarray(volume.spacing_zyx, dtype=np.float64)
    src = torch.from_numpy(
        np.ascontiguousarray(volume.array, dtype=np.float32))
    scales = [float(o / n) for o, n in zip(old_sp, new_sp)]
    for axis in range(3):
        if new_size[axis] == src.shape[axis] and scales[axis] != 1.:
            src = torch.cat([src, src.narrow(axis, src.shape[axis] - 1, 1)],
                            dim=axis)
    with torch.no_grad():
        out = torch.ops.aten.upsample_trilinear3d(
            src[None, None], [int(s) for s in new_size], False,
            *scales)[0, 0].numpy()
    sizes = volume.shape_zyx
    for axis, pos in enumerate(source_positions(volume, spacing_zyx)):
        outside = np.flatnonzero((pos < -0.5) | (pos >= sizes[axis] - 0.5))
        if len(outside):
            index = [slice(None)] * 3
            index[axis] = outside
            out[tuple(index)] = default_value
    meta = dict(volume.meta, resampled_from=tuple(volume.spacing_zyx))
    return CTVolume(out, tuple(float(s) for s in new_sp),
                    tuple(float(v) for v in origin), volume.direction,
                    meta=meta)


def compute_lung_box_v1(volume: CTVolume,
                        threshold_hu: float = -320.,
                        gas_hu: float = -950.,
                        max_gas_fraction: float = 0.25,
                        num_components: int = 2,
                        min_component_ratio: float = 0.1
                        ) -> Optional[Tuple[Tuple[int, ...],
                                            Tuple[int, ...]]]:
    """``compute_lung_box`` before: the components of the whole volume."""
    img = np.asarray(volume.array)
    air = sitk.GetImageFromArray((img < threshold_hu).view(np.uint8))
    components = sitk.ConnectedComponent(air, False)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputePerimeterOff()
    stats.Execute(components)
    nz, ny, nx = img.shape
    candidates = []
    for label in stats.GetLabels():
        x0, y0, z0, sx, sy, sz = stats.GetBoundingBox(label)
        if x0 == 0 or y0 == 0 or x0 + sx == nx or y0 + sy == ny:
            continue
        candidates.append((int(stats.GetNumberOfPixels(label)), (z0, y0, x0),
                           (z0 + sz, y0 + sy, x0 + sx), label))
    candidates.sort(key=lambda c: (-c[0], c[1]))
    kept = []
    for size, start, stop, label in candidates:
        if len(kept) == num_components:
            break
        roi = sitk.RegionOfInterest(
            components, [b - a for a, b in zip(start, stop)][::-1],
            list(start)[::-1])
        # a view of the region's pixels: ``roi`` must outlive it
        labels = sitk.GetArrayViewFromImage(roi)
        box = tuple(slice(a, b) for a, b in zip(start, stop))
        gas = np.count_nonzero((labels == label) & (img[box] < gas_hu))
        if gas > max_gas_fraction * max(size, 1):
            continue
        kept.append((size, start, stop))
    if not kept:
        return None
    kept = [c for c in kept if c[0] >= min_component_ratio * kept[0][0]]
    start = tuple(min(c[1][a] for c in kept) for a in range(3))
    stop = tuple(max(c[2][a] for c in kept) for a in range(3))
    return start, stop


def mask_region_v1(mask: CTVolume,
                   target: CTVolume,
                   margin_mm: float = 0.) -> Optional[Tuple[Tuple[int, ...],
                                                            Tuple[int, ...]]]:
    """``mask_region`` before: the same region."""
    arr = np.asarray(mask.array, dtype=bool)
    if not arr.any():
        return None
    lo, hi = [], []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        idx = np.flatnonzero(arr.any(axis=other))
        lo.append(idx[0] - 0.5)
        hi.append(idx[-1] + 0.5)
    box = np.array([lo[::-1] + hi[::-1]], dtype=np.float64)
    mapped = resample_boxes_3d(box, mask, target)[0].astype(np.float64)
    margin = margin_mm / np.asarray(target.spacing_zyx)[::-1]
    a = mapped[:3] - margin
    b = mapped[3:] + margin
    shape_xyz = np.asarray(target.shape_zyx)[::-1]
    start = np.clip(np.floor(a + 0.5 + 1e-6), 0, shape_xyz).astype(int)
    stop = np.clip(np.ceil(b - 0.5 - 1e-6) + 1, 0, shape_xyz).astype(int)
    if np.any(stop <= start):
        return None
    return tuple(start[::-1].tolist()), tuple(stop[::-1].tolist())


@contextlib.contextmanager
def torch_copies():
    """A context in which the RPN head flattens its score maps with
    ``Tensor.reshape`` (torch's threads), as it did."""
    from mmlesion.methods.aggregated3d.models import \
        aggregated_rpn_head_3d as head
    original = head.flatten
    head.flatten = lambda tensor: tensor.reshape(-1)
    try:
        yield
    finally:
        head.flatten = original


def window_hu_v1(img: np.ndarray, window: Tuple[float, float],
                 out_range: Tuple[float, float]) -> np.ndarray:
    """``window_hu`` before: the same values."""
    low, high = float(window[0]), float(window[1])
    out_low, out_high = float(out_range[0]), float(out_range[1])
    img = np.clip(img.astype(np.float32, copy=False), low, high)
    scale = (out_high - out_low) / (high - low)
    img = (img - np.float32(low)) * np.float32(scale) + np.float32(out_low)
    return img.astype(np.float32, copy=False)


def predict_volume_v1(model, volume: Tensor) -> InstanceData:
    """``AggregatedFasterRCNN3D.predict_volume`` before (without the
    progress bar), for ``model`` (its ``_predict_window`` and ``test_cfg``;
    the merge NMS through the detector module's ``nms_3d``, so that the
    benchmark times it the same way)."""
    cfg = model.test_cfg
    size = cfg.get('window_size', 128)
    size = (size, ) * 3 if isinstance(size, int) else tuple(size)
    overlap = cfg.get('overlap', 16)
    overlap = (overlap, ) * 3 if isinstance(overlap, int) else tuple(
        overlap)
    pad_value = float(cfg.get('pad_value', 0.))
    batch = int(cfg.get('window_batch_size', 1))
    divisor = 16
    dhw = volume.shape[1:]
    win = [min(s, int(math.ceil(n / divisor) * divisor))
           for s, n in zip(size, dhw)]
    starts: List[List[int]] = [
        det_module.window_starts(n, w, o)
        for n, w, o in zip(dhw, win, overlap)]
    cores = [det_module.window_cores(st, w, n)
             for st, w, n in zip(starts, win, dhw)]
    origins = [(z, y, x) for z in starts[0] for y in starts[1]
               for x in starts[2]]
    parts = []
    with torch_copies():
        _windows_v1(model, volume, origins, win, batch, pad_value, starts,
                    cores, parts)
    dets = InstanceData.cat(parts)
    keep = dets.scores > cfg.get('score_thr', 0.)
    dets = dets[keep]
    _, inds = det_module.nms_3d(dets.bboxes, dets.scores,
                                cfg.get('merge_iou_thr', 0.1))
    dets = dets[inds[:cfg.get('max_per_img', 100)]]
    out = InstanceData(
        bboxes=dets.bboxes - det_module.VOXEL_CENTRE_OFFSET,
        scores=dets.scores,
        labels=dets.bboxes.new_zeros(len(dets), dtype=torch.long),
        rpn_scores=dets.rpn_scores)
    if model.with_fprn:
        out.fprn_scores = dets.fprn_scores
    return out


def _windows_v1(model, volume: Tensor, origins: list, win: List[int],
                batch: int, pad_value: float, starts: List[List[int]],
                cores: list, parts: list) -> None:
    """The window loop of :func:`predict_volume_v1`: each window's
    detections kept in its core, appended to ``parts``."""
    for b in range(0, len(origins), batch):
        chunk = origins[b:b + batch]
        crops = []
        for z, y, x in chunk:
            crop = volume[:, z:z + win[0], y:y + win[1], x:x + win[2]]
            pad = [0, win[2] - crop.shape[3], 0, win[1] - crop.shape[2],
                   0, win[0] - crop.shape[1]]
            crops.append(F.pad(crop, pad, value=pad_value))
        for (z, y, x), det in zip(chunk,
                                  model._predict_window(torch.stack(crops))):
            det.bboxes = det.bboxes + det.bboxes.new_tensor(
                [x, y, z, x, y, z])
            ctr = (det.bboxes[:, :3] + det.bboxes[:, 3:]) / 2
            core = [cores[a][starts[a].index(o)]
                    for a, o in zip((2, 1, 0), (x, y, z))]
            lo = ctr.new_tensor([c[0] for c in core])
            hi = ctr.new_tensor([c[1] for c in core])
            parts.append(det[((ctr >= lo) & (ctr < hi)).all(1)])
