# Copyright (c) mmlesion contributors. All rights reserved.
"""Batch sampler of LENS (Yan et al., TMI 2020, Sec. VI-B)."""
import math
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import sync_random_seed
from torch.utils.data import BatchSampler, Sampler


@DATA_SAMPLERS.register_module()
class LENSDatasetBatchSampler(BatchSampler):
    """Batches drawn from one dataset at a time, with positive : negative
    slices ``pos_neg_ratio`` : 1 in each epoch (LENS Sec. VI-B: "each batch
    had 4 images sampled from the same dataset ... positive slices (with
    existing annotations or mined MAs) and randomly sampled negative slices
    ... Their ratio is 2:1 in each epoch").

    Works over a :class:`~mmlesion.datasets.LENSMultiDataset` (it asks the
    dataset for ``dataset_id(idx)`` and ``is_positive(idx)``). Each epoch,
    from the indices the wrapped sampler yields (shuffled and sharded by
    mmengine's ``DefaultSampler``), every dataset keeps all its positives
    and its first ``round(n_pos / pos_neg_ratio)`` negatives (all of them
    if it has fewer); its kept indices are shuffled and cut into batches;
    the batches of all datasets are shuffled together. A dataset without
    positives contributes no batch when ``pos_neg_ratio`` is set.

    Args:
        sampler (Sampler): the index sampler (``DefaultSampler``).
        batch_size (int): images per batch.
        drop_last (bool): drop each dataset's last incomplete batch.
        pos_neg_ratio (float, optional): positives per negative; ``None``
            keeps every negative.
        seed (int, optional): random seed (synchronised across ranks when
            None).
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 drop_last: bool = False,
                 pos_neg_ratio: Optional[float] = 2.0,
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
        self.seed = sync_random_seed() if seed is None else seed

    def _selected(self) -> Dict[int, List[int]]:
        """Kept indices of each dataset, in the sampler's order."""
        pos: Dict[int, List[int]] = {}
        neg: Dict[int, List[int]] = {}
        for idx in self.sampler:
            d = self.dataset.dataset_id(idx)
            (pos if self.dataset.is_positive(idx) else neg).setdefault(
                d, []).append(idx)
        out = {}
        for d in sorted(set(pos) | set(neg)):
            p, n = pos.get(d, []), neg.get(d, [])
            if self.pos_neg_ratio is not None:
                n = n[:min(len(n), int(round(len(p) / self.pos_neg_ratio)))]
            if p or n:
                out[d] = p + n
        return out

    def epoch_counts(self) -> Dict[int, Tuple[int, int]]:
        """(positives, negatives) kept per dataset this epoch."""
        return {
            d: (sum(self.dataset.is_positive(i) for i in idx),
                sum(not self.dataset.is_positive(i) for i in idx))
            for d, idx in self._selected().items()
        }

    def __iter__(self) -> Iterator[List[int]]:
        epoch = getattr(self.sampler, 'epoch', 0)
        rng = np.random.default_rng(self.seed + epoch)
        batches = []
        for _, idx in self._selected().items():
            idx = [idx[i] for i in rng.permutation(len(idx))]
            for start in range(0, len(idx), self.batch_size):
                batch = idx[start:start + self.batch_size]
                if len(batch) < self.batch_size and self.drop_last:
                    continue
                batches.append(batch)
        for i in rng.permutation(len(batches)):
            yield batches[i]

    def __len__(self) -> int:
        total = 0
        for idx in self._selected().values():
            total += (len(idx) // self.batch_size if self.drop_last else
                      math.ceil(len(idx) / self.batch_size))
        return total
