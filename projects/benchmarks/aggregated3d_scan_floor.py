# Copyright (c) mmlesion contributors. All rights reserved.
"""The floor of the 3D-AG whole-scan steps: the library calls that they
cannot do without, timed alone (``benchmark_aggregated3d_scan.py
--floor``).

Everything but the network is made of glue (thresholds, boxes, copies into
SimpleITK, decoding, the per-window bookkeeping) around three calls on the
whole volume, each already one library call:

* **resample kernel**: torch's trilinear kernel
  (``aten.upsample_trilinear3d``) over the whole scan, by
  :func:`~mmlesion.datasets.volumes.resampling.trilinear_into` as
  :func:`~mmlesion.datasets.volumes.resampling.resample_volume_torch`
  calls it, into memory already written once (no page faults; the output's
  allocation and the voxels outside the scan left out);
* **components**: SimpleITK's ``ConnectedComponent`` and
  ``LabelShapeStatisticsImageFilter`` (sizes and boxes) on the air mask of
  the in-plane box that is not air, as
  :func:`~mmlesion.datasets.volumes.lung_mask.compute_lung_box` calls them
  (the mask and its image made before the clock starts);
* **window copies**: every sliding window of the cropped volume copied
  into the one touched buffer the model's ``predict_volume`` reuses
  (``_cut_windows``): the network needs each window in contiguous memory.

Their sum is what no change of the glue can go below with this design on
this machine; the benchmark prints it as a multiple of the read. The
resample kernel's output is checked against the steps' resampled volume,
so the floor times the same work.
"""
import statistics
import time
from typing import Callable, Dict, List

import numpy as np
import SimpleITK as sitk
import torch

#: The floor's parts, in the order printed.
FLOOR_PARTS = ('resample_kernel', 'components', 'window_copies')


def _resample_kernel(vol, res) -> float:
    """Seconds of torch's trilinear kernel alone (``vol`` to ``res``'s
    grid), into a buffer written once before."""
    from mmlesion.datasets.volumes.resampling import (fill_outside,
                                                      trilinear_into)
    out = np.ones(res.shape_zyx, dtype=np.float32)  # written: no faults
    t = time.perf_counter()
    trilinear_into(vol, res.spacing_zyx, out)
    seconds = time.perf_counter() - t
    fill_outside(out, vol, res.spacing_zyx, -1024.)
    if not np.array_equal(out, res.array):
        raise RuntimeError('the floor\'s resample kernel gave other values '
                           'than resample_volume_torch')
    return seconds


def _components(res) -> float:
    """Seconds of SimpleITK's connected components and label statistics
    on ``res``'s air mask cut to its in-plane box that is not air."""
    from mmlesion.datasets.volumes.lung_mask import (LungMaskSettings,
                                                     _solid_box)
    threshold = LungMaskSettings().threshold_hu
    air = np.asarray(res.array) < threshold
    solid = _solid_box(air)
    if solid is None:
        return 0.  # all air: compute_lung_box labels nothing either
    (y0, y1), (x0, x1) = solid
    image = sitk.GetImageFromArray(
        np.ascontiguousarray(air[:, y0:y1, x0:x1]).view(np.uint8))
    t = time.perf_counter()
    components = sitk.ConnectedComponent(image, False)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.ComputePerimeterOff()
    stats.Execute(components)
    return time.perf_counter() - t


def _window_copies(volume: torch.Tensor, test_cfg: dict,
                   pad_value: float) -> float:
    """Seconds of copying every window of ``volume`` (C, D, H, W) into one
    touched buffer, as ``predict_volume`` cuts them (one window per
    batch)."""
    from mmlesion.methods.aggregated3d.models.aggregated_faster_rcnn_3d import (
        _cut_windows, window_layout)
    win, starts = window_layout(volume.shape[1:], test_cfg)
    buffer = volume.new_ones((1, volume.shape[0], *win))
    t = time.perf_counter()
    for z in starts[0]:
        for y in starts[1]:
            for x in starts[2]:
                _cut_windows(volume, [(z, y, x)], buffer, pad_value)
    return time.perf_counter() - t


def floor_seconds(vol, res, volume: torch.Tensor,
                  test_cfg: dict) -> Dict[str, float]:
    """The floor's parts for one scan, in seconds.

    Args:
        vol (CTVolume): the scan as read.
        res (CTVolume): it resampled by the steps (the kernel's output is
            checked against it).
        volume (Tensor): (1, D, H, W) the network's input (the windowed
            crop), on the CPU.
        test_cfg (dict): the model's ``test_cfg`` (``window_size``,
            ``overlap``, ``pad_value``).

    Returns:
        dict[str, float]: seconds per part of :data:`FLOOR_PARTS`.
    """
    return dict(
        resample_kernel=_resample_kernel(vol, res),
        components=_components(res),
        window_copies=_window_copies(volume.cpu(), test_cfg,
                                     float(test_cfg.get('pad_value', 0.))))


def floor_result(rounds: List[dict], reads: List[float],
                 stat: Callable[[str], dict]) -> dict:
    """The floor over the rounds.

    Args:
        rounds (list[dict]): per round the parts, the floor's as
            ``'floor_<part>'``.
        reads (list[float]): the read's seconds per round.
        stat (Callable): a part's name to its median, min and max over the
            rounds.

    Returns:
        dict: ``parts`` (each part's statistics), ``per_round`` (the sum),
        ``seconds`` (its median) and ``over_read`` (that over the read's
        median).
    """
    sums = [sum(r['floor_' + k] for k in FLOOR_PARTS) for r in rounds]
    med = statistics.median(sums)
    return dict(parts={k: stat('floor_' + k) for k in FLOOR_PARTS},
                per_round=sums, seconds=med,
                over_read=med / statistics.median(reads))


def print_floor(floor: dict, goal: float,
                line: Callable[[str, dict], str]) -> None:
    """Print :func:`floor_result`'s ``floor`` against the ``goal`` (the
    parts besides the read within ``goal - 1`` reads); ``line`` formats a
    part's statistics."""
    print('floor (--floor: the library calls alone, the same rounds):')
    for key in FLOOR_PARTS:
        print(line(key.replace('_', ' '), floor['parts'][key]))
    print(f"  floor {floor['seconds']:.3f} s = {floor['over_read']:.2f}x "
          f"the read: the parts besides the read may take at most "
          f"{goal - 1:g}x it, the floor leaves "
          f"{goal - 1 - floor['over_read']:.2f}x for the rest")
