# Copyright (c) mmlesion contributors. All rights reserved.
"""Toy LENS datasets and a distributed worker for the tests of
:class:`~mmlesion.methods.lens.datasets.LENSDatasetBatchSampler`.

The worker lives in the package (not in a test file) because
``torch.multiprocessing.spawn`` must import it by name in the child
processes, which pytest's ``--import-mode=importlib`` test modules are not.
"""
import json
import os.path as osp
from datetime import timedelta
from typing import List, Sequence, Tuple

import torch.distributed as dist
from mmengine.dataset import BaseDataset, DefaultSampler
from mmengine.registry import DefaultScope

from mmlesion.methods.lens.datasets import LENSMultiDataset


class ToyLENSSlices(BaseDataset):
    """``n_pos`` positive then ``n_neg`` negative slices, no files.

    Negatives alternate between no lesion and one ignored (uncertain)
    lesion, which does not make a slice positive.

    Args:
        n_pos (int): slices with a lesion.
        n_neg (int): slices without a (non-ignored) lesion.
    """
    METAINFO = dict(classes=('lesion', ))

    def __init__(self, n_pos: int, n_neg: int, **kwargs) -> None:
        self.n_pos, self.n_neg = n_pos, n_neg
        super().__init__(ann_file='', serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        out = []
        for i in range(self.n_pos + self.n_neg):
            lesion = dict(bbox=[0, 0, 5, 5], bbox_label=0)
            if i < self.n_pos:
                inst = [dict(lesion, ignore_flag=0)]
            else:
                inst = [dict(lesion, ignore_flag=1)] * (i % 2)
            out.append(dict(img_id=i, instances=inst))
        return out


def toy_lens_multi_dataset(
        sizes: Sequence[Tuple[int, int]] = ((30, 40), (12, 3))
) -> LENSMultiDataset:
    """A :class:`LENSMultiDataset` of :class:`ToyLENSSlices`.

    Args:
        sizes (Sequence[tuple[int, int]]): (positives, negatives) of each
            dataset.

    Returns:
        LENSMultiDataset: datasets named ``d0``, ``d1``, ...
    """
    return LENSMultiDataset([ToyLENSSlices(p, n) for p, n in sizes],
                            dataset_names=[f'd{i}' for i in range(len(sizes))])


def _epochs(batch_sampler, epochs: Sequence[int]) -> List[dict]:
    out = []
    for epoch in epochs:
        batch_sampler.sampler.set_epoch(epoch)  # as DistSamplerSeedHook
        out.append(
            dict(epoch=epoch,
                 batches=[list(map(int, b)) for b in batch_sampler],
                 len=len(batch_sampler)))
    return out


def lens_sampler_ddp_worker(rank: int, world_size: int, init_file: str,
                            out_dir: str, sizes: List[Tuple[int, int]],
                            batch_size: int) -> None:
    """One rank of a gloo process group: records the batches of
    ``LENSDatasetBatchSampler`` in ``out_dir/rank{rank}.json``.

    Recorded: epochs 0, 1 and 0 again of the default sampler
    (``pos_neg_ratio`` 2, shuffled, ``round_up``), epoch 0 with
    ``drop_last``, and the sampler mmengine's ``Runner.build_dataloader``
    builds from a config (epoch 0, then epoch 3 set by mmengine's
    ``DistSamplerSeedHook`` as in training).

    Args:
        rank (int): this process's rank (``torch.multiprocessing.spawn``
            passes it first).
        world_size (int): number of processes.
        init_file (str): file of the ``file://`` rendezvous.
        out_dir (str): where each rank writes its json.
        sizes (list[tuple[int, int]]): see :func:`toy_lens_multi_dataset`.
        batch_size (int): images per batch.
    """
    from mmengine.hooks import DistSamplerSeedHook
    from mmengine.runner import Runner

    from mmlesion.methods.lens.datasets.batch_sampler import LENSDatasetBatchSampler
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world_size, timeout=timedelta(seconds=120))
    try:
        dataset = toy_lens_multi_dataset(sizes)
        record = dict(rank=rank, world_size=world_size)
        bs = LENSDatasetBatchSampler(
            DefaultSampler(dataset, shuffle=True), batch_size=batch_size)
        record['default'] = _epochs(bs, [0, 1, 0])
        record['epoch_counts'] = {
            str(k): list(v) for k, v in bs.epoch_counts().items()}
        dropped = LENSDatasetBatchSampler(
            DefaultSampler(dataset, shuffle=True), batch_size=batch_size,
            drop_last=True)
        record['drop_last'] = _epochs(dropped, [0])
        with DefaultScope.overwrite_default_scope('mmdet'):
            loader = Runner.build_dataloader(
                dict(batch_size=batch_size,
                     num_workers=0,
                     sampler=dict(type='DefaultSampler', shuffle=True),
                     batch_sampler=dict(type='LENSDatasetBatchSampler',
                                        pos_neg_ratio=2.0),
                     collate_fn=dict(type='pseudo_collate'),
                     dataset=dataset))
        built = loader.batch_sampler
        record['runner'] = dict(
            type=type(built).__name__,
            sampler_type=type(built.sampler).__name__,
            len_loader=len(loader),
            epoch0=[list(map(int, b)) for b in built])

        class _Stub:  # what DistSamplerSeedHook reads of a Runner
            epoch = 3

            class train_loop:  # noqa: N801
                dataloader = loader

        DistSamplerSeedHook().before_train_epoch(_Stub)
        record['runner']['epoch3'] = [list(map(int, b)) for b in built]
        with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(record, f)
        dist.barrier()
    finally:
        dist.destroy_process_group()


__all__ = [
    'ToyLENSSlices', 'toy_lens_multi_dataset', 'lens_sampler_ddp_worker'
]
