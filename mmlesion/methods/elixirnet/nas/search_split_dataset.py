# Copyright (c) mmlesion contributors. All rights reserved.
"""One of two disjoint halves of a dataset, for the differentiable search.

ElixirNet, section "Differentiable Search Strategy": "We randomly split
training data into two disjoint sets"; the network weights are trained on one
(``L_train``) and the architecture weights alpha on the other (``L_val``).
"""
import copy
from typing import Any, List, Optional, Union

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init
from mmengine.logging import print_log

from mmdet.registry import DATASETS

SPLITS = ('weight', 'arch')


@DATASETS.register_module()
class SearchSplitDataset:
    """A seeded, disjoint half of a dataset (weight half or arch half).

    The wrapped dataset's samples are shuffled with
    ``numpy.random.RandomState(seed)``; the first ``round(ratio * n)`` form the
    ``'weight'`` half (``L_train``), the rest the ``'arch'`` half (``L_val``):
    built with the same arguments, the two are disjoint and cover the
    dataset, on every process. With ``group_key`` (e.g. ``'patient_id'``)
    whole groups go to one half (the halves then hold about ``ratio`` of the
    samples); the paper splits images.

    Args:
        dataset (BaseDataset | dict): the dataset, or its config.
        split (str): ``'weight'`` or ``'arch'``.
        seed (int): seed of the shuffle. Defaults to 0.
        ratio (float): fraction of samples in the ``'weight'`` half, in
            (0, 1). Defaults to 0.5 (the paper's halves).
        group_key (str, optional): data_info key whose values are kept
            together. Defaults to None.
        lazy_init (bool): defer loading the annotations. Defaults to False.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 split: str,
                 seed: int = 0,
                 ratio: float = 0.5,
                 group_key: Optional[str] = None,
                 lazy_init: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(
                f'SearchSplitDataset: split must be one of {SPLITS}, '
                f'got {split!r}')
        if not 0.0 < ratio < 1.0:
            raise ValueError(
                f'SearchSplitDataset: ratio must be in (0, 1), got {ratio}')
        if isinstance(dataset, dict):
            self.dataset = DATASETS.build(dataset)
        elif isinstance(dataset, BaseDataset) or hasattr(
                dataset, 'get_data_info'):
            self.dataset = dataset
        else:
            raise TypeError('SearchSplitDataset: dataset must be a config '
                            f'dict or a dataset, got {type(dataset)}')
        self.split = split
        self.seed = int(seed)
        self.ratio = float(ratio)
        self.group_key = group_key
        self._metainfo = self.dataset.metainfo
        self._indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """dict: meta information of the wrapped dataset."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Load the wrapped dataset and select this split's indices."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        weight_idx, arch_idx = split_indices(self._group_ids(), self.seed,
                                             self.ratio)
        self._indices = weight_idx if self.split == 'weight' else arch_idx
        if len(self._indices) == 0:
            raise ValueError(
                f'SearchSplitDataset: the {self.split!r} half of '
                f'{type(self.dataset).__name__} is empty '
                f'({len(self.dataset)} samples, ratio={self.ratio}, '
                f'group_key={self.group_key!r}); the search needs at least '
                'two samples (groups).')
        print_log(
            f'SearchSplitDataset: {self.split} half = {len(self._indices)} of '
            f'{len(self.dataset)} samples (seed={self.seed}, '
            f'ratio={self.ratio}, group_key={self.group_key!r})',
            logger='current')
        self._fully_initialized = True

    def _group_ids(self) -> List[Any]:
        """One id per sample: its index, or its ``group_key`` value."""
        n = len(self.dataset)
        if self.group_key is None:
            return list(range(n))
        ids = []
        for idx in range(n):
            info = self.dataset.get_data_info(idx)
            if self.group_key not in info:
                raise KeyError(f'SearchSplitDataset: data_info {idx} '
                               f'({info.get("img_path", "?")}) has no field '
                               f'{self.group_key!r} (group_key)')
            ids.append(info[self.group_key])
        return ids

    @property
    @force_full_init
    def indices(self) -> List[int]:
        """list[int]: indices of this half in the wrapped dataset."""
        return list(self._indices)

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """Return the data_info of this half's ``idx``-th sample."""
        return self.dataset.get_data_info(self._indices[idx])

    def __getitem__(self, idx: int) -> Any:
        """Return the processed ``idx``-th sample of this half; in training
        mode a sample whose pipeline returns None is replaced by another of
        **the same half** (not of the whole dataset, as ``BaseDataset``)."""
        if not self._fully_initialized:
            self.full_init()
        prepare = getattr(self.dataset, 'prepare_data', None)
        if prepare is None or getattr(self.dataset, 'test_mode', False):
            return self.dataset[self._indices[idx]]
        max_refetch = getattr(self.dataset, 'max_refetch', 1000)
        for _ in range(max_refetch + 1):
            data = prepare(self._indices[idx])
            if data is not None:
                return data
            idx = np.random.randint(0, len(self._indices))
        raise RuntimeError(
            f'SearchSplitDataset ({self.split} half): no valid sample after '
            f'{max_refetch} refetches; check the pipeline of '
            f'{type(self.dataset).__name__}.')

    @force_full_init
    def __len__(self) -> int:
        return len(self._indices)


def split_indices(group_ids: List[Any],
                  seed: int = 0,
                  ratio: float = 0.5) -> 'tuple[List[int], List[int]]':
    """Split sample indices into two disjoint, seeded halves by group.

    Args:
        group_ids (list): one hashable group id per sample (the sample index
            itself for a plain split).
        seed (int): seed of the shuffle of the groups.
        ratio (float): target fraction of samples in the first half.

    Returns:
        tuple[list[int], list[int]]: sorted indices of the first (weight) and
        second (arch) half.
    """
    groups: dict = {}
    for idx, gid in enumerate(group_ids):
        groups.setdefault(gid, []).append(idx)
    keys = sorted(groups, key=lambda g: (str(type(g)), g))
    order = np.random.RandomState(seed).permutation(len(keys))
    target = int(round(ratio * len(group_ids)))
    first: List[int] = []
    second: List[int] = []
    for k in order:
        members = groups[keys[k]]
        (first if len(first) < target else second).extend(members)
    return sorted(first), sorted(second)
