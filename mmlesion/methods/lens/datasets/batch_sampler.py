# Copyright (c) mmlesion contributors. All rights reserved.
"""Batch sampler of LENS (Yan et al., TMI 2020, Sec. VI-B)."""
import math
from typing import (Dict, Hashable, Iterator, List, Optional, Sequence,
                    Tuple)

import numpy as np
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import BatchSampler, Sampler


@DATA_SAMPLERS.register_module()
class LENSDatasetBatchSampler(BatchSampler):
    """Batches drawn from one dataset at a time, with positive : negative
    slices ``pos_neg_ratio`` : 1 in each epoch (LENS Sec. VI-B: "each batch
    had 4 images sampled from the same dataset ... positive slices (with
    existing annotations or mined MAs) and randomly sampled negative slices
    ... Their ratio is 2:1 in each epoch").

    Works over a :class:`~mmlesion.methods.lens.datasets.LENSMultiDataset`
    (``dataset_id(idx)``, ``is_positive(idx)``). Each epoch is planned
    identically on every rank: every dataset keeps one positive slice per
    3D lesion, ``n_pos`` in all, and ``round(n_pos / pos_neg_ratio)``
    random negatives (all if fewer), cut into batches; all batches are
    shuffled together and batch ``i`` goes to rank ``i % world_size``. So
    every batch is single-dataset, the ratio is exact over the epoch and
    every rank gets as many batches (``round_up``: the first batches fill
    the last round, else it is dropped; unequal counts would hang DDP).
    The wrapped sampler gives only the dataset, the epoch, ``shuffle`` and
    ``round_up``.

    One positive slice per 3D lesion (Sec. VI-D, Table III: "we randomly
    sampled one positive slice for each 3D GT in every training epoch"):
    the lesions of a slice are the dataset's ``positive_lesions(idx)``
    (a slice showing two may come twice), else its
    ``positive_group(idx)``, else the slice itself.

    Args:
        sampler (Sampler): the index sampler (``DefaultSampler``).
        batch_size (int): images per batch (per rank).
        drop_last (bool): drop each dataset's last incomplete batch.
        pos_neg_ratio (float, optional): positives per negative; ``None``
            keeps every negative.
        one_positive_per_group (bool): draw one positive slice per 3D
            lesion and epoch (the paper); False keeps every positive slice
            once.
        seed (int, optional): random seed; None takes the wrapped
            sampler's (the Runner's ``randomness.seed``), or a random seed
            synchronised across ranks if it has none.
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 drop_last: bool = False,
                 pos_neg_ratio: Optional[float] = 2.0,
                 one_positive_per_group: bool = True,
                 seed: Optional[int] = None) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError('LENSDatasetBatchSampler: batch_size must be a '
                             f'positive int, got {batch_size}')
        if pos_neg_ratio is not None and pos_neg_ratio <= 0:
            raise ValueError('LENSDatasetBatchSampler: pos_neg_ratio must be'
                             f' > 0 or None, got {pos_neg_ratio}')
        dataset = getattr(sampler, 'dataset', None)
        if not (hasattr(dataset, 'dataset_id')
                and hasattr(dataset, 'is_positive')):
            raise TypeError('LENSDatasetBatchSampler needs a sampler over a '
                            'LENSMultiDataset (dataset_id / is_positive), '
                            f'got {type(dataset).__name__}')
        self.sampler = sampler
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.pos_neg_ratio = pos_neg_ratio
        self.one_positive_per_group = one_positive_per_group
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.rank, self.world_size = get_dist_info()
        self.shuffle = bool(getattr(sampler, 'shuffle', True))
        self.round_up = bool(getattr(sampler, 'round_up', True))
        self._split: Optional[Dict[int, Tuple[List[List[int]],
                                              List[int]]]] = None

    def _lesions(self, idx: int) -> Sequence[Hashable]:
        """Keys of the 3D lesions that positive sample ``idx`` shows."""
        if not self.one_positive_per_group:
            return (idx, )
        if hasattr(self.dataset, 'positive_lesions'):
            return tuple(self.dataset.positive_lesions(idx)) or (idx, )
        if hasattr(self.dataset, 'positive_group'):
            return (self.dataset.positive_group(idx), )
        return (idx, )

    @property
    def epoch(self) -> int:
        """The wrapped sampler's epoch."""
        return int(getattr(self.sampler, 'epoch', 0))

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the wrapped sampler (what mmengine's
        ``DistSamplerSeedHook`` does)."""
        self.sampler.set_epoch(epoch)

    def _positives_negatives(
            self) -> Dict[int, Tuple[List[List[int]], List[int]]]:
        """(the slices of each 3D lesion, negative indices) of each
        dataset, lesions in the order of their first slice."""
        if self._split is None:
            split: Dict[int, Tuple[dict, List[int]]] = {}
            for idx in range(len(self.dataset)):
                pos, neg = split.setdefault(
                    self.dataset.dataset_id(idx), ({}, []))
                if self.dataset.is_positive(idx):
                    for key in self._lesions(idx):
                        pos.setdefault(key, []).append(idx)
                else:
                    neg.append(idx)
            self._split = {
                d: (list(pos.values()), neg)
                for d, (pos, neg) in sorted(split.items())
            }
        return self._split

    def _num_negatives(self, n_pos: int, n_neg: int) -> int:
        if self.pos_neg_ratio is None:
            return n_neg
        return min(n_neg, int(round(n_pos / self.pos_neg_ratio)))

    def _selected(self, rng: np.random.Generator) -> Dict[int, List[int]]:
        """Kept indices of each dataset (the whole epoch)."""
        out = {}
        for d, (groups, neg) in self._positives_negatives().items():
            if self.shuffle:
                pos = [g[int(rng.integers(len(g)))] if len(g) > 1 else g[0]
                       for g in groups]
                neg = [neg[i] for i in rng.permutation(len(neg))]
            else:
                pos = [g[0] for g in groups]
            kept = pos + neg[:self._num_negatives(len(pos), len(neg))]
            if kept:
                out[d] = kept
        return out

    def epoch_counts(self) -> Dict[int, Tuple[int, int]]:
        """(positives, negatives) kept per dataset in an epoch, over all
        ranks (positives: one per 3D lesion)."""
        counts = {}
        for d, (pos, neg) in self._positives_negatives().items():
            n = self._num_negatives(len(pos), len(neg))
            if pos or n:
                counts[d] = (len(pos), n)
        return counts

    def _epoch_batches(self) -> List[List[int]]:
        """The batches of the whole epoch, the same on every rank."""
        rng = np.random.default_rng(self.seed + self.epoch)
        batches = []
        for idx in self._selected(rng).values():
            if self.shuffle:
                idx = [idx[i] for i in rng.permutation(len(idx))]
            for start in range(0, len(idx), self.batch_size):
                batch = idx[start:start + self.batch_size]
                if len(batch) < self.batch_size and self.drop_last:
                    continue
                batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _num_epoch_batches(self) -> int:
        total = 0
        for pos, neg in self.epoch_counts().values():
            kept = pos + neg
            total += (kept // self.batch_size if self.drop_last else
                      math.ceil(kept / self.batch_size))
        return total

    def __iter__(self) -> Iterator[List[int]]:
        batches = self._epoch_batches()
        num = len(self)
        if self.round_up and batches:
            batches = (batches * math.ceil(num * self.world_size /
                                           len(batches)))
        yield from batches[self.rank:num * self.world_size:self.world_size]

    def __len__(self) -> int:
        """Batches of this rank (the same on every rank)."""
        total = self._num_epoch_batches()
        if self.round_up:
            return math.ceil(total / self.world_size)
        return total // self.world_size
