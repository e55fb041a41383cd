# Copyright (c) mmlesion contributors. All rights reserved.
"""LENSMultiDataset and LENSDatasetBatchSampler: one-dataset batches, 2 : 1
positive : negative slices per epoch, dataset_id in the metainfo."""
from collections import Counter

import pytest
from mmdet.registry import DATA_SAMPLERS, DATASETS
from mmengine.dataset import DefaultSampler
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.methods.lens.datasets import LENSMultiDataset
from tests.helpers.lens_sampler import (ToyLENSSlices,
                                           toy_lens_multi_dataset)


def _multi():
    return toy_lens_multi_dataset(((30, 40), (12, 3)))


def _sampler(ds, batch_size=4, **kwargs):
    return DATA_SAMPLERS.build(
        dict(type='LENSDatasetBatchSampler', **kwargs),
        default_args=dict(
            sampler=DefaultSampler(ds, shuffle=True, seed=0),
            batch_size=batch_size))


def test_batches_come_from_one_dataset_with_2_to_1_ratio():
    ds = _multi()
    assert ds.dataset_id(0) == 0 and ds.dataset_id(70) == 1
    assert ds.is_positive(0) and not ds.is_positive(31)
    bs = _sampler(ds, seed=3)
    batches = list(bs)
    assert len(batches) == len(bs)
    seen = Counter()
    for b in batches:
        assert len({ds.dataset_id(i) for i in b}) == 1
        seen.update(b)
    assert max(seen.values()) == 1
    pos = Counter(ds.dataset_id(i) for i in seen if ds.is_positive(i))
    neg = Counter(ds.dataset_id(i) for i in seen if not ds.is_positive(i))
    assert pos == {0: 30, 1: 12}
    # 2 : 1 per epoch; dataset b has only 3 negatives: all of them
    assert neg == {0: 15, 1: 3}
    assert bs.epoch_counts() == {0: (30, 15), 1: (12, 3)}
    # every batch full except at most one per dataset
    assert sum(len(b) < 4 for b in batches) <= 2


def test_negatives_are_redrawn_each_epoch_and_ratio_is_configurable():
    ds = _multi()
    bs = _sampler(ds, seed=0)
    first = {i for b in bs for i in b if not ds.is_positive(i)}
    bs.sampler.set_epoch(1)
    second = {i for b in bs for i in b if not ds.is_positive(i)}
    assert len(first) == len(second) == 18 and first != second
    bs.set_epoch(0)  # forwarded to the index sampler, as mmengine's hook
    assert bs.sampler.epoch == 0
    assert {i for b in bs for i in b if not ds.is_positive(i)} == first
    every = _sampler(ds, pos_neg_ratio=None)
    assert sum(len(b) for b in every) == len(ds)
    dropped = _sampler(ds, batch_size=4, drop_last=True)
    assert all(len(b) == 4 for b in dropped)
    # The seed defaults to the index sampler's (the Runner's randomness
    # seed): a seeded run draws the same batches.
    assert _sampler(ds).seed == 0  # DefaultSampler(seed=0)
    assert list(_sampler(ds)) == list(_sampler(ds))
    assert list(_sampler(ds, seed=3)) != list(_sampler(ds))


class _GroupedSlices(ToyLENSSlices):
    """Positives in groups of 3 (a key slice and two slices its lesion
    was propagated to), as DeepLesionMinedDataset groups them."""

    def load_data_list(self):
        out = super().load_data_list()
        for i, info in enumerate(out[:self.n_pos]):
            info['positive_group'] = ('series', i // 3)
        return out


def test_one_positive_per_lesion_group_and_epoch():
    """LENS Sec. VI-D (Table III): one positive slice per 3D lesion and
    epoch, so the epoch of a retrained model (propagated slices) is as long
    as before."""
    ds = LENSMultiDataset([_GroupedSlices(12, 10), ToyLENSSlices(6, 0)],
                          dataset_names=['mined', 'plain'])
    assert ds.positive_group(0) == ds.positive_group(2) != \
        ds.positive_group(3)
    bs = _sampler(ds, seed=1)
    assert bs.epoch_counts() == {0: (4, 2), 1: (6, 0)}
    drawn = []
    for epoch in range(6):
        bs.set_epoch(epoch)
        pos = sorted(i for b in bs for i in b
                     if ds.dataset_id(i) == 0 and ds.is_positive(i))
        assert sorted(i // 3 for i in pos) == [0, 1, 2, 3]
        drawn.append(tuple(pos))
    assert len(set(drawn)) > 1  # a different slice of a group each epoch
    every = _sampler(ds, seed=1, one_positive_per_group=False)
    assert every.epoch_counts() == {0: (12, 6), 1: (6, 0)}


def test_bad_inputs():
    with pytest.raises(TypeError, match='LENSMultiDataset'):
        _sampler(ToyLENSSlices(3, 3))
    with pytest.raises(ValueError, match='pos_neg_ratio'):
        _sampler(_multi(), pos_neg_ratio=0)
    with pytest.raises(ValueError, match='dataset_names'):
        LENSMultiDataset([ToyLENSSlices(1, 1)], dataset_names=['a', 'b'])


def test_deeplesion_samples_carry_dataset_id(tiny_demo_root):
    src = dict(
        type='DeepLesionDataset',
        data_root=str(tiny_demo_root),
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        split='val',
        test_mode=True,
        pipeline=[
            dict(type='LoadDeepLesionSlices', num_slices=9,
                 interval_mm=2.0),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs')
        ])
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(
            dict(type='LENSMultiDataset', datasets=[src, src],
                 dataset_names=['partial', 'full']))
        item = ds[len(ds) // 2]
    n = len(ds) // 2
    assert ds.get_data_info(n)['dataset_id'] == 1
    assert item['data_samples'].metainfo['dataset_id'] == 1
    assert item['data_samples'].metainfo['dataset_name'] == 'full'
    assert item['inputs'].shape[0] == 9
