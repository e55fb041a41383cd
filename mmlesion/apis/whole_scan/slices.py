# Copyright (c) mmlesion contributors. All rights reserved.
"""Prepare the slices of an in-memory CT volume while the detector runs
(:func:`volume_slice_loader`): in the main process (``workers=0``), in
``N`` threads preparing up to ``N * prefetch_factor`` batches ahead
(numpy and torch release the GIL), or in a ``DataLoader``'s ``N`` worker
processes (each slice comes back through shared memory, which costs more
than preparing it: threads are faster, ``docs/benchmarks.md``). The
results are the same in every mode; the pipeline's transforms must be
safe to call from several threads at once.
"""
import math
import multiprocessing
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Callable, Iterable, Iterator, List

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader, Dataset

from mmlesion.utils.tool_defaults import tool_defaults


class VolumeSliceDataset(Dataset):
    """The slices of one in-memory volume through a test pipeline: item
    ``z`` is the pipeline's output for key slice ``z``.

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
        return self.pipeline(self._results(int(z), volume=self.array))

    def _results(self, z: int, **fields) -> dict:
        """The pipeline's input for key slice ``z``, with ``fields``."""
        return dict(key_slice=z, slice_interval=self.slice_interval,
                    spacing=self.spacing, img_path=self.path,
                    img_id=f'{self.stem}#{z}', instances=[],
                    scale_factor=(1., 1.), **fields)

    def prepare(self, start: int, stop: int) -> List[dict]:
        """Items ``start .. stop - 1`` (one batch), in order."""
        return [self[z] for z in range(start, stop)]


class WindowedVolumeSlices(VolumeSliceDataset):
    """:class:`VolumeSliceDataset` for the usual 2.5D test pipeline,
    ``LoadVolumeSlices`` + ``WindowHU`` + ``PackDetInputs``, with the
    first two done once for a batch's slab of slices (the same float32
    operations in their order: bit-identical values). The inputs are views
    of the slab: the model must not write into them (mmdet's
    ``DetDataPreprocessor`` stacks them into a new tensor).

    Applies (:meth:`applies`) when the pipeline's transforms are exactly
    these three and every channel is a whole slice away from the key
    (``interval_mm`` a multiple of the volume's slice interval, as after
    :func:`~mmlesion.apis.whole_scan.resample.prepare_volume`).
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
            math.isfinite(o) and float(o).is_integer()
            for o in transforms[0]._offsets(float(slice_interval)))

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
            out.append(self.pack(self._results(
                z, img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2],
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


#: How :func:`volume_slice_loader` runs its workers (see the module doc;
#: ``tool_defaults.json``: ``--worker-type``).
WORKER_TYPES = tuple(tool_defaults(__file__)['WORKER_TYPES'])


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
            in the main process when it is asked for.
        worker_type (str): ``'thread'`` or ``'process'``. Defaults to
            ``'thread'``.
        prefetch_factor (int): batches each worker prepares ahead.
            Defaults to 2.

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
    if workers == 0:
        return (_batch(dataset, start, int(batch_size))
                for start in range(0, len(dataset), int(batch_size)))
    if worker_type == 'thread':
        return _threaded_batches(dataset, int(batch_size), workers,
                                 prefetch_factor)
    kwargs = dict(prefetch_factor=prefetch_factor)
    if 'fork' in multiprocessing.get_all_start_methods():
        # shares the volume with the workers instead of pickling it
        kwargs['multiprocessing_context'] = 'fork'
    return DataLoader(dataset, batch_size=int(batch_size), shuffle=False,
                      num_workers=workers, collate_fn=pseudo_collate,
                      drop_last=False, **kwargs)


def _batch(dataset: VolumeSliceDataset, start: int,
           batch_size: int) -> dict:
    """The collated batch of ``dataset`` from slice ``start`` on."""
    stop = min(start + batch_size, len(dataset))
    return pseudo_collate(dataset.prepare(start, stop))


def _threaded_batches(dataset: VolumeSliceDataset, batch_size: int,
                      workers: int, prefetch_factor: int) -> Iterator[dict]:
    """The batches of ``dataset``, prepared ahead by a thread pool, in
    order (a pipeline error raised here)."""
    starts = iter(range(0, len(dataset), batch_size))
    pool = ThreadPoolExecutor(workers, thread_name_prefix='volume_slices')
    ahead = workers * max(int(prefetch_factor), 1)
    try:
        pending = deque(pool.submit(_batch, dataset, start, batch_size)
                        for start in islice(starts, ahead))
        while pending:
            batch = pending.popleft().result()
            pending.extend(pool.submit(_batch, dataset, start, batch_size)
                           for start in islice(starts, 1))  # kept full
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def outputs_to_cpu(outputs: list) -> None:
    """Move a batch's predictions to the CPU with one device-to-host copy
    per field (``pred_instances``' boxes, scores, labels; ``pred_sem_seg``
    maps of one shape), not one per tensor per slice; a field whose
    tensors differ in device or dtype, or are missing somewhere, is left.

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
