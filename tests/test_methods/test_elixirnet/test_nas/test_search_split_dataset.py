# Copyright (c) mmlesion contributors. All rights reserved.
"""SearchSplitDataset: two disjoint, seeded halves."""
import pytest

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.nas import SearchSplitDataset, split_indices
from tests.helpers.alb_search import NASFakeLesionDataset


def _halves(**kwargs):
    base = dict(type='NASFakeLesionDataset', num_samples=10)
    return (SearchSplitDataset(base, split='weight', **kwargs),
            SearchSplitDataset(base, split='arch', **kwargs))


def test_disjoint_cover_deterministic():
    weight, arch = _halves(seed=0)
    assert len(weight) == len(arch) == 5
    assert not set(weight.indices) & set(arch.indices)
    assert sorted(weight.indices + arch.indices) == list(range(10))
    again, _ = _halves(seed=0)
    assert again.indices == weight.indices
    other, _ = _halves(seed=1)
    assert other.indices != weight.indices
    # items and data infos come from the mapped indices
    assert weight.get_data_info(0)['img_id'] == weight.indices[0]
    assert (weight[1]['data_samples'].img_id == weight.indices[1])
    assert weight.metainfo['classes'] == ('lesion', )


def test_ratio_and_groups():
    weight, arch = _halves(seed=0, ratio=0.7)
    assert (len(weight), len(arch)) == (7, 3)
    weight, arch = _halves(seed=2, group_key='patient_id')
    patients_w = {
        weight.get_data_info(i)['patient_id']
        for i in range(len(weight))
    }
    patients_a = {
        arch.get_data_info(i)['patient_id']
        for i in range(len(arch))
    }
    assert not patients_w & patients_a
    assert len(weight) + len(arch) == 10
    assert len(weight) % 2 == 0  # whole patients (2 images each)


def test_split_indices_groups():
    first, second = split_indices(['a', 'a', 'b', 'c', 'c', 'c'], seed=0)
    assert sorted(first + second) == list(range(6))
    groups = {0: 'a', 1: 'a', 2: 'b', 3: 'c', 4: 'c', 5: 'c'}
    assert not {groups[i] for i in first} & {groups[i] for i in second}


def test_errors():
    base = NASFakeLesionDataset(num_samples=4)
    with pytest.raises(ValueError, match='split must be'):
        SearchSplitDataset(base, split='val')
    with pytest.raises(ValueError, match='ratio'):
        SearchSplitDataset(base, split='weight', ratio=1.0)
    with pytest.raises(KeyError, match='series_uid'):
        SearchSplitDataset(base, split='weight', group_key='series_uid')
    with pytest.raises(ValueError, match='empty'):
        SearchSplitDataset(NASFakeLesionDataset(num_samples=1), split='weight')


def test_refetch_stays_in_half():
    """A sample the pipeline drops is replaced from the same half."""

    class Dropping(NASFakeLesionDataset):

        def prepare_data(self, idx):
            return None if idx % 2 == 0 else super().prepare_data(idx)

    base = Dropping(num_samples=10)
    weight = SearchSplitDataset(base, split='weight', seed=0)
    odd = [i for i in weight.indices if i % 2]
    assert odd and len(odd) < len(weight)
    for k in range(len(weight)):
        assert weight[k]['data_samples'].img_id in odd
