# Copyright (c) mmlesion contributors. All rights reserved.
"""LENSMultiDataset's ``dataset_ids`` (LENS Table IV, "Data pooling"):
pooled datasets are one LENS dataset, batches mix them, the 2 : 1 ratio
holds over the pool and the lesions of different datasets stay apart."""
import pytest
from mmdet.registry import DATA_SAMPLERS
from mmengine.dataset import DefaultSampler

import mmlesion  # noqa: F401
from mmlesion.methods.lens.datasets import LENSMultiDataset
from tests.helpers.lens_sampler import ToyLENSSlices


def test_pooled_datasets_are_one_lens_dataset():
    ds = LENSMultiDataset([ToyLENSSlices(8, 2), ToyLENSSlices(4, 6)],
                          dataset_names=['pooled'], dataset_ids=[0, 0])
    assert {ds.dataset_id(i) for i in range(len(ds))} == {0}
    assert ds.get_data_info(12)['dataset_name'] == 'pooled'
    # sample 0 of each source is a lesion of its own (not one lesion)
    assert ds.positive_lesions(0) != ds.positive_lesions(10)
    bs = DATA_SAMPLERS.build(
        dict(type='LENSDatasetBatchSampler', seed=0),
        default_args=dict(sampler=DefaultSampler(ds, shuffle=True, seed=0),
                          batch_size=4))
    assert bs.epoch_counts() == {0: (12, 6)}  # 2 : 1 over the pool
    batches = list(bs)
    drawn = [i for b in batches for i in b]
    assert len(drawn) == 18 and len(set(drawn)) == 18
    assert any(min(b) < 10 <= max(b) for b in batches)  # mixed batches


def test_unpooled_ids_are_the_positions():
    ds = LENSMultiDataset([ToyLENSSlices(2, 0), ToyLENSSlices(2, 0)],
                          dataset_names=['a', 'b'])
    assert [ds.dataset_id(i) for i in range(4)] == [0, 0, 1, 1]
    assert ds.positive_lesions(2)[0][0] == 1


@pytest.mark.parametrize('ids, names, match', [
    ([0, 2], ['a', 'b'], 'the ids 0 .. k-1'),
    ([0], ['a'], 'each of the 2 datasets'),
    ([0, 0], ['a', 'b'], '2 dataset_names for 1 dataset ids'),
])
def test_bad_dataset_ids_are_refused(ids, names, match):
    with pytest.raises(ValueError, match=match):
        LENSMultiDataset([ToyLENSSlices(1, 0), ToyLENSSlices(1, 0)],
                         dataset_names=names, dataset_ids=ids)
