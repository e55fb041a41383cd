# Copyright (c) mmlesion contributors. All rights reserved.
"""Prepare the slices of an in-memory CT volume while the detector runs.

:func:`~mmlesion.apis.whole_scan.detect.detect_slices` feeds every slice of
a resampled scan through the 2.5D detector's test pipeline
(``LoadVolumeSlices``, ``WindowHU``, ``PackDetInputs``, ...). Run in the
main process between forward passes, that pipeline (about 2-3 ms per
403 x 403 slice on one core here) adds to every batch's time.
:func:`volume_slice_loader` yields the batches in slice order, prepared by

- ``workers=0``: the main process, each batch when it is asked for,
  exactly as before (same pipeline calls, same order: bit-identical
  results);
- ``workers=N``, ``worker_type='thread'`` (the default): N background
  threads (:class:`concurrent.futures.ThreadPoolExecutor`) that prepare
  up to ``N * prefetch_factor`` batches ahead while the model runs. The
  pipeline's array work (numpy, torch) runs without the GIL, and so do
  the model's kernels; the outputs stay in the process (no copy).
- ``workers=N``, ``worker_type='process'``: a
  :class:`torch.utils.data.DataLoader` over :class:`VolumeSliceDataset`
  with N worker processes (``collate_fn=pseudo_collate``). On Linux they
  are forked and see the parent's volume without copying it; checked
  while writing this (Python 3.11, torch 2.13): a worker that ran the
  ElixirNet test pipeline over all slices of a 300 x 403 x 403 float32
  volume (186 MB) still shared all 190,324 kB of the mappings holding the
  array with the parent (``Shared_Dirty`` in ``/proc/self/smaps``), 0 kB
  private. Where ``fork`` is not available (Windows; macOS defaults to
  ``spawn``) the dataset, volume included, is pickled to each worker. Every
  prepared slice (3 x 403 x 403 float32, 1.9 MB), however, comes back
  through a new shared-memory segment.

Why threads are the default: measured on the 2-core CPU machine of this
project while two other jobs ran on it (so only the ordering is worth
reading), ElixirNet's test pipeline on a synthetic 300 x 512 x 512 scan
(188 slices of 403 x 403 px), batches of 32, with a stand-in detector
that waits 10 ms per slice without holding the GIL, as a process waiting
for its GPU does (``benchmark_infer_volume.py --config
configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py
--pixel-spacing 0.8 --scan-size 512 300 --batch-sizes 32 --workers 0 1 2
--repeats 3 --stand-in-ms 10 [--worker-type process]``; 100 slices/s is
the stand-in's limit): 81 slices/s serial, 95 with one thread, 92 with
two; 83 serial, 74 with one process, 69 with two. The processes lose
because each prepared slice comes back through a new shared-memory
segment, which cost more here than preparing it (the pipeline alone:
about 400-550 slices/s serial, 185 with one process).

Those numbers are of the per-slice pipeline (:class:`VolumeSliceDataset`).
For the usual pipeline (``LoadVolumeSlices``, ``WindowHU``,
``PackDetInputs``) :func:`volume_slice_dataset` gives
:class:`WindowedVolumeSlices`, which windows a batch's slices at once and
hands out views instead of copies (the same inputs, bit for bit): on the
same machine and scan, with one thread, 4100-4700 slices/s against
1300-1500 for the per-slice pipeline (``benchmark_infer_volume.py ...
--workers 0 1 --stand-in-ms 0``, docs/benchmarks.md). The batches are
built by each dataset's ``prepare(start, stop)`` in every mode but the
worker processes (which ask for one item at a time).

The pipeline's transforms must be safe to call from several threads at
once (the 2.5D test transforms keep no state between calls); with one
thread the calls are sequential anyway. ``tools/analysis_tools/
benchmark_infer_volume.py --workers 0 1 2 --worker-type thread`` (or
``process``) measures both on a GPU machine.
"""
import math
import multiprocessing
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, List

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader, Dataset


class VolumeSliceDataset(Dataset):
    """The slices of one in-memory volume through a test pipeline.

    Item ``z`` is the pipeline's output for key slice ``z`` (what
    ``model.test_step`` takes after :func:`~mmengine.dataset.
    pseudo_collate`).

    Args:
        array (np.ndarray): the (z, y, x) float32 volume in HU; shared,
            never written.
        pipeline (Callable): the volume test pipeline
            (:func:`~mmlesion.apis.whole_scan.settings.build_volume_pipeline`).
        slice_interval (float): z spacing of ``array`` in mm.
        spacing (float): in-plane spacing of ``array`` in mm/px.
        path (str): the scan's path (``img_path``; named in errors).
        stem (str): the scan's name; slice ``z`` gets ``img_id``
            ``'{stem}#{z}'``.
    """

    def __init__(self, array: np.ndarray, pipeline: Callable,
                 slice_interval: float, spacing: float, path: str,
                 stem: str) -> None:
        if array.ndim != 3:
            raise ValueError(f'{path}: a (z, y, x) volume is needed, got '
                             f'shape {array.shape}')
        self.array = array
        self.pipeline = pipeline
        self.slice_interval = float(slice_interval)
        self.spacing = float(spacing)
        self.path = path
        self.stem = stem

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __getitem__(self, z: int) -> dict:
        return self.pipeline(dict(
            volume=self.array, key_slice=int(z),
            slice_interval=self.slice_interval, spacing=self.spacing,
            img_path=self.path, img_id=f'{self.stem}#{int(z)}',
            instances=[], scale_factor=(1., 1.)))


    def prepare(self, start: int, stop: int) -> List[dict]:
        """Items ``start .. stop - 1`` (one batch), in order."""
        return [self[z] for z in range(start, stop)]


def _is_integer(value: float) -> bool:
    return math.isfinite(value) and float(value).is_integer()


class WindowedVolumeSlices(VolumeSliceDataset):
    """:class:`VolumeSliceDataset` for the usual 2.5D test pipeline,
    ``LoadVolumeSlices`` + ``WindowHU`` + ``PackDetInputs``, with the
    first two done for a whole batch at once.

    The per-slice pipeline clips and windows each slice's N channels anew,
    so every slice of the volume is clipped and windowed N times, in
    several passes over small arrays (about 0.5 ms per 403 x 403 slice on
    one core). Here a batch's slab of slices (the batch and its
    neighbours) is clipped to ``hu_clip``, clipped to the window and
    mapped to ``out_range`` once (torch, in place, the same float32
    operations in the same order as ``slices_from_volume`` and
    ``window_hu``: bit-identical values). A slice's N channels are then N
    consecutive slices of the slab (with ``interval_mm`` equal to the slice
    interval): its input is a view of the slab, not a copy (the slices at
    both ends of the volume, whose neighbours are clamped, get a copy);
    ``PackDetInputs`` gets the (H, W, N) view of that (N, H, W) block and
    keeps it (the layout it would make is already there). So the inputs
    of the slices of one batch share memory: the model must not write into
    them (mmdet's ``DetDataPreprocessor`` stacks them into a new tensor).
    ``PackDetInputs`` itself runs as configured, so the inputs and the
    metainfo are those of the per-slice pipeline (the tests compare them).

    Applies (:meth:`applies`) when the pipeline's transforms are exactly
    these three and every channel is a whole slice away from the key
    (``interval_mm`` a multiple of the volume's slice interval, as after
    :func:`~mmlesion.apis.whole_scan.resample.prepare_volume`): then each
    channel is a slice, never an interpolation between two.
    """

    def __init__(self, array: np.ndarray, pipeline: Callable,
                 slice_interval: float, spacing: float, path: str,
                 stem: str) -> None:
        super().__init__(array, pipeline, slice_interval, spacing, path,
                         stem)
        if not self.applies(pipeline, slice_interval):
            raise ValueError('WindowedVolumeSlices needs the pipeline '
                             'LoadVolumeSlices, WindowHU, PackDetInputs '
                             'with channels a whole number of slices apart')
        load, window, pack = pipeline.transforms
        self.offsets = [int(o) for o in load._offsets(self.slice_interval)]
        self.hu_clip = load.hu_clip
        self.window = window.window
        self.out_range = window.out_range
        self.pack = pack

    @staticmethod
    def applies(pipeline: Callable, slice_interval: float) -> bool:
        """Whether ``pipeline`` (a ``Compose``) can take the batched path
        for a volume of ``slice_interval`` mm (see the class doc)."""
        transforms = getattr(pipeline, 'transforms', None)
        if transforms is None or [type(t).__name__ for t in transforms] != [
                'LoadVolumeSlices', 'WindowHU', 'PackDetInputs']:
            return False
        return all(
            _is_integer(o) for o in transforms[0]._offsets(
                float(slice_interval)))

    def _windowed(self, lo: int, hi: int) -> torch.Tensor:
        """Slices ``lo .. hi - 1`` clipped and windowed as the per-slice
        pipeline does (``slices_from_volume``, then ``window_hu``)."""
        slab = torch.from_numpy(self.array[lo:hi])
        if self.hu_clip is not None:
            slab = slab.clamp(float(self.hu_clip[0]), float(self.hu_clip[1]))
        else:
            slab = slab.clone()
        low, high = self.window
        out_low, out_high = self.out_range
        scale = (out_high - out_low) / (high - low)
        slab.clamp_(low, high)
        slab.sub_(float(np.float32(low)))
        slab.mul_(float(np.float32(scale)))
        slab.add_(float(np.float32(out_low)))
        return slab

    def prepare(self, start: int, stop: int) -> List[dict]:
        depth = len(self)
        if not 0 <= start < stop <= depth:
            raise IndexError(f'{self.path}: slices {start}..{stop - 1} '
                             f'outside the volume (0..{depth - 1})')
        rows = np.clip(
            np.arange(start, stop)[:, None] + np.asarray(self.offsets), 0,
            depth - 1)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        with torch.no_grad():
            slab = self._windowed(lo, hi)
        out = []
        for i, z in enumerate(range(start, stop)):
            r = rows[i] - lo
            step = int(r[1] - r[0]) if len(r) > 1 else 1
            if step > 0 and (np.diff(r) == step).all():
                # evenly spaced slices: a view of the slab (contiguous for
                # channels on consecutive slices)
                chans = slab[int(r[0]):int(r[-1]) + 1:step]
            else:  # a neighbour clamped at an end of the volume
                chans = slab[torch.from_numpy(r)]
            img = chans.numpy().transpose(1, 2, 0)  # (H, W, N) view
            out.append(self.pack(dict(
                img_path=self.path, img_id=f'{self.stem}#{z}', key_slice=z,
                slice_interval=self.slice_interval, spacing=self.spacing,
                instances=[], scale_factor=(1., 1.), img=img,
                img_shape=img.shape[:2], ori_shape=img.shape[:2],
                hu_window=self.window, hu_out_range=self.out_range)))
        return out

    def __getitem__(self, z: int) -> dict:
        return self.prepare(int(z), int(z) + 1)[0]


def volume_slice_dataset(array: np.ndarray, pipeline: Callable,
                         slice_interval: float, spacing: float, path: str,
                         stem: str) -> VolumeSliceDataset:
    """:class:`WindowedVolumeSlices` where it applies, else
    :class:`VolumeSliceDataset` (same arguments, same items)."""
    cls = (WindowedVolumeSlices
           if WindowedVolumeSlices.applies(pipeline, slice_interval) else
           VolumeSliceDataset)
    return cls(array, pipeline, slice_interval, spacing, path, stem)


#: How :func:`volume_slice_loader` runs its workers (see the module doc).
WORKER_TYPES = ('thread', 'process')


def check_workers(workers: int, worker_type: str = 'thread') -> int:
    """``workers`` as an int >= 0, else a ValueError saying what is
    allowed (also for an unknown ``worker_type``)."""
    if isinstance(workers, bool) or not isinstance(
            workers, (int, np.integer)) or workers < 0:
        raise ValueError(f'workers must be an integer >= 0, got {workers!r} '
                         '(0: the slices are prepared in the main process)')
    if worker_type not in WORKER_TYPES:
        raise ValueError(f'worker_type must be one of {WORKER_TYPES}, got '
                         f'{worker_type!r}')
    return int(workers)


def volume_slice_loader(dataset: VolumeSliceDataset,
                        batch_size: int,
                        workers: int = 0,
                        worker_type: str = 'thread',
                        prefetch_factor: int = 2) -> Iterable[dict]:
    """Batches of a volume's slices in order, prepared by ``workers``
    threads or processes (see the module doc).

    Args:
        dataset (VolumeSliceDataset): the slices.
        batch_size (int): slices per batch (>= 1).
        workers (int): worker threads or processes; 0 prepares each batch
            in the main process when it is asked for (the serial
            behaviour).
        worker_type (str): ``'thread'`` or ``'process'`` (with
            ``workers > 0``). Defaults to ``'thread'``.
        prefetch_factor (int): batches each worker prepares ahead (with
            ``workers > 0``). Defaults to 2.

    Returns:
        Iterable[dict]: :func:`~mmengine.dataset.pseudo_collate`'d
        pipeline outputs, slice 0 first.

    Raises:
        ValueError: ``batch_size < 1`` or a bad ``workers`` /
            ``worker_type``.
    """
    workers = check_workers(workers, worker_type)
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or \
            batch_size < 1:
        raise ValueError(f'batch_size must be an integer >= 1, got '
                         f'{batch_size!r}')
    if workers > 0 and worker_type == 'thread':
        return _threaded_batches(dataset, int(batch_size), workers,
                                 prefetch_factor)
    if workers == 0:
        return _serial_batches(dataset, int(batch_size))
    kwargs = {}
    if workers > 0:
        kwargs['prefetch_factor'] = prefetch_factor
        if 'fork' in multiprocessing.get_all_start_methods():
            # shares the volume with the workers instead of pickling it
            kwargs['multiprocessing_context'] = 'fork'
    return DataLoader(dataset, batch_size=int(batch_size), shuffle=False,
                      num_workers=workers, collate_fn=pseudo_collate,
                      drop_last=False, **kwargs)


def _serial_batches(dataset: VolumeSliceDataset,
                    batch_size: int) -> Iterator[dict]:
    """The batches of ``dataset`` prepared in the calling thread, each
    when it is asked for."""
    for start in range(0, len(dataset), batch_size):
        yield pseudo_collate(
            dataset.prepare(start, min(start + batch_size, len(dataset))))


def _threaded_batches(dataset: VolumeSliceDataset, batch_size: int,
                      workers: int, prefetch_factor: int) -> Iterator[dict]:
    """The batches of ``dataset``, prepared ahead by a thread pool and
    yielded in order; an error in the pipeline is raised here (the
    batches not started yet are cancelled)."""

    def prepare(start: int) -> dict:
        stop = min(start + batch_size, len(dataset))
        return pseudo_collate(dataset.prepare(start, stop))

    starts = iter(range(0, len(dataset), batch_size))
    pool = ThreadPoolExecutor(workers, thread_name_prefix='volume_slices')
    pending: deque = deque()
    try:
        for start in starts:
            pending.append(pool.submit(prepare, start))
            if len(pending) >= workers * max(int(prefetch_factor), 1):
                break
        while pending:
            batch = pending.popleft().result()
            for start in starts:  # keep the queue full
                pending.append(pool.submit(prepare, start))
                break
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def outputs_to_cpu(outputs: list) -> None:
    """Move a batch's predictions to the CPU with one copy per field.

    ``pred_instances.bboxes`` / ``scores`` / ``labels`` of all the batch's
    samples are concatenated, copied once and split back (instead of one
    device-to-host copy and synchronisation per tensor per slice), and
    ``pred_sem_seg.sem_seg`` maps are stacked and copied once when they
    have the same shape (maps already on the CPU are left alone: stacking
    them would only copy them). Only done when it is safe: a field whose
    tensors differ in device or dtype, or are missing somewhere, is left as
    it is (the caller's own ``.cpu()`` then copies it). Values are
    unchanged; on the CPU the boxes, scores and labels are copied once
    (a few kB per batch).

    Args:
        outputs (list[DetDataSample]): ``model.test_step``'s output,
            modified in place.
    """
    if not outputs:
        return
    preds = [getattr(o, 'pred_instances', None) for o in outputs]
    if all(p is not None for p in preds):
        for key in ('bboxes', 'scores', 'labels'):
            tensors = [getattr(p, key, None) for p in preds]
            if not _same_kind(tensors):
                continue
            counts = [len(t) for t in tensors]
            chunks = torch.cat([t.detach() for t in tensors]).cpu().split(
                counts)
            for p, chunk in zip(preds, chunks):
                setattr(p, key, chunk)
    segs = [getattr(o, 'pred_sem_seg', None) for o in outputs]
    if all(s is not None for s in segs):
        maps = [getattr(s, 'sem_seg', None) for s in segs]
        if _same_kind(maps) and maps[0].device.type != 'cpu' and len(
                {tuple(m.shape) for m in maps}) == 1:
            stacked = torch.stack([m.detach() for m in maps]).cpu()
            for s, m in zip(segs, stacked.unbind(0)):
                s.sem_seg = m


def _same_kind(tensors: list) -> bool:
    """All tensors, on one device, of one dtype and one shape but for the
    first dimension."""
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        return False
    first = tensors[0]
    return all(
        t.device == first.device and t.dtype == first.dtype and t.dim() >= 1
        and t.shape[1:] == first.shape[1:] for t in tensors)
