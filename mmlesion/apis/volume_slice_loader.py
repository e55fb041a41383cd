# Copyright (c) mmlesion contributors. All rights reserved.
"""Prepare the slices of an in-memory CT volume while the detector runs.

:func:`~mmlesion.apis.volume_inference.detect_slices` feeds every slice of
a resampled scan through the 2.5D detector's test pipeline
(``LoadVolumeSlices``, ``WindowHU``, ``PackDetInputs``, ...). Run in the
main process between forward passes, that pipeline (about 3 ms per
403 x 403 slice on one core) adds to every batch's time. Here it is a
:class:`torch.utils.data.DataLoader` over :class:`VolumeSliceDataset`:

- ``workers=0``: the slices are prepared in the main process, batch by
  batch, exactly as before (same pipeline, same calls, same order: the
  results are bit-identical to the serial loop).
- ``workers=N > 0``: N worker processes prepare the next batches
  (``prefetch_factor`` each) while the model runs the current one; the
  DataLoader returns the batches in slice order, so the results are the
  same as with ``workers=0``.

Why worker processes and not a background thread: the pipeline is numpy
and Python code whose Python parts hold the GIL, and the detector's
forward pass (mmdet's heads, post-processing, CUDA kernel launches) is
Python-heavy too, so a thread competes with the model for the GIL; a
process does not. On Linux the workers are started with ``fork``: they
see the parent's volume array without copying it (copy-on-write pages
that are only read stay shared; the pipeline never writes into the
volume). Checked while writing this (Linux, Python 3.11, torch 2.13): a
worker that ran the ElixirNet test pipeline over all slices of a
300 x 403 x 403 float32 volume (186 MB) still shared all 190,324 kB of
the mappings holding the array with the parent (``Shared_Dirty`` in
``/proc/self/smaps``) and had 0 kB of them private. Where ``fork`` is not available
(Windows, macOS defaults to ``spawn``) the dataset, volume included, is
pickled once to each worker: memory grows by the volume per worker.
The speed measured with each worker count is in
``tools/analysis_tools/benchmark_infer_volume.py --workers 0 1 2``.
"""
import multiprocessing
from typing import Callable, Optional

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
            (:func:`~mmlesion.apis.volume_inference.build_volume_pipeline`).
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


def check_workers(workers: int) -> int:
    """``workers`` as an int >= 0, else a ValueError saying what is
    allowed."""
    if isinstance(workers, bool) or not isinstance(
            workers, (int, np.integer)) or workers < 0:
        raise ValueError(f'workers must be an integer >= 0, got {workers!r} '
                         '(0: the slices are prepared in the main process)')
    return int(workers)


def volume_slice_loader(dataset: VolumeSliceDataset,
                        batch_size: int,
                        workers: int = 0,
                        prefetch_factor: Optional[int] = 2) -> DataLoader:
    """Batches of a volume's slices in order, prepared by ``workers``
    processes (see the module doc).

    Args:
        dataset (VolumeSliceDataset): the slices.
        batch_size (int): slices per batch (>= 1).
        workers (int): worker processes; 0 prepares each batch in the main
            process when it is asked for (the serial behaviour).
        prefetch_factor (int, optional): batches each worker prepares
            ahead (with ``workers > 0``). Defaults to 2.

    Returns:
        DataLoader: yields lists of pipeline outputs
        (:func:`~mmengine.dataset.pseudo_collate`), slice 0 first.

    Raises:
        ValueError: ``batch_size < 1`` or a bad ``workers``.
    """
    workers = check_workers(workers)
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or \
            batch_size < 1:
        raise ValueError(f'batch_size must be an integer >= 1, got '
                         f'{batch_size!r}')
    kwargs = {}
    if workers > 0:
        kwargs['prefetch_factor'] = prefetch_factor
        if 'fork' in multiprocessing.get_all_start_methods():
            # shares the volume with the workers instead of pickling it
            kwargs['multiprocessing_context'] = 'fork'
    return DataLoader(dataset, batch_size=int(batch_size), shuffle=False,
                      num_workers=workers, collate_fn=pseudo_collate,
                      drop_last=False, **kwargs)


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
