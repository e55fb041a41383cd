# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS positive sampling per 3D lesion (Yan et al., TMI 2020, Sec. VI-D,
Table III: "we randomly sampled one positive slice for each 3D GT in every
training epoch"; Sec. VI-B: positives : negatives 2 : 1 per dataset).

One synthetic series, no images (empty key-slice files, as the dataset only
lists the folder): key slice 10 with lesions A and B, A propagated to slices
11 and 12 (its slice-11 box overlaps the annotation with IoU 0.43 < theta,
as when the annotation replaced the proposal that matched it); key slice 30
with lesion C; an intra-patient lesion D on slices 40-42, no key slice
there; six negative slices. Four 3D lesions: A {10, 11, 12}, B {10}, C {30},
D {40, 41, 42}.
"""
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence

from mmengine.dataset import DefaultSampler
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.methods.lens.datasets import DeepLesionMinedDataset, LENSMultiDataset
from mmlesion.datasets.deeplesion.mined_file import write_mined_file
from mmlesion.methods.lens.datasets.batch_sampler import LENSDatasetBatchSampler
from tests.helpers.dl_info_rows import lesion_row, write_dl_info_csv
from tests.helpers.lens_sampler import ToyLENSSlices

SERIES = '000001_01_01'
A_SLICES, D_SLICES = (10, 11, 12), (40, 41, 42)


def _dataset(root: Path, mined: bool = True) -> DeepLesionMinedDataset:
    """The series of the module doc (``mined=False``: the key slices only,
    read as DeepLesionDataset reads them)."""
    rows = [
        lesion_row(1, 10, (100, 100), 40, 40, split=1),  # A
        lesion_row(1, 10, (300, 300), 40, 40, split=1),  # B
        lesion_row(1, 30, (200, 200), 40, 40, split=1),  # C
    ]
    write_dl_info_csv(str(root / 'DL_info.csv'), rows)
    for z in (10, 30):
        path = root / 'Images_png' / SERIES / f'{z:03d}.png'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    # A's box on slice 10: 0-based, x2 and y2 one past its last pixel
    a = [75., 75., 126., 126.]

    def shifted(dx: float) -> List[float]:
        return [a[0] + dx, a[1], a[2] + dx, a[3]]

    def entry(z, boxes=(), source='propagation', uncertain=()):
        return dict(series_dir=SERIES, slice=z, mined=[list(b) for b in boxes],
                    mined_sources=[source] * len(boxes),
                    uncertain=[list(b) for b in uncertain])

    write_mined_file(str(root / 'mined.json'), [
        entry(11, [shifted(20)]), entry(12, [shifted(22)]),
        *(entry(z, [[380, 80, 430, 130]], 'intra_patient') for z in D_SLICES),
        *(entry(z, uncertain=[[5, 5, 15, 15]] * (z % 2))
          for z in range(50, 56)),
    ], dict(iou_thr=0.5))
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DeepLesionMinedDataset(
            data_root=str(root), ann_file='DL_info.csv',
            data_prefix=dict(img='Images_png/'), split='train',
            mined_ann_file='mined.json' if mined else None, pipeline=[])
    assert ds.get_data_info(0)['instances'][0]['bbox'] == a
    return ds


def _multi(root: Path, mined: bool = True) -> LENSMultiDataset:
    return LENSMultiDataset([_dataset(root, mined), ToyLENSSlices(6, 10)],
                            dataset_names=['deeplesion', 'toy'])


def _sampler(ds: LENSMultiDataset, seed: int = 0) -> LENSDatasetBatchSampler:
    return LENSDatasetBatchSampler(
        DefaultSampler(ds, shuffle=True, seed=seed), batch_size=4)


def _draws(bs: LENSDatasetBatchSampler, epoch: int) -> Counter:
    """How often each sample is drawn in ``epoch``."""
    bs.set_epoch(epoch)
    return Counter(i for batch in bs for i in batch)


def _by_slice(ds: LENSMultiDataset) -> Dict[int, int]:
    """Slice index -> sample index, for the DeepLesion series."""
    return {int(ds.get_data_info(i)['key_slice']): i
            for i in range(len(ds)) if ds.dataset_id(i) == 0}


def _slice_draws(ds: LENSMultiDataset, groups: Sequence[Sequence[int]],
                 epochs: int = 4, seed: int = 0) -> List[List[int]]:
    """Per epoch, how often the slices of each group are drawn."""
    idx = _by_slice(ds)
    bs = _sampler(ds, seed)
    out = []
    for epoch in range(epochs):
        draws = _draws(bs, epoch)
        out.append([sum(draws[idx[z]] for z in g) for g in groups])
    return out


def test_two_lesions_on_one_slice_give_two_draws(tmp_path):
    ds = _multi(tmp_path)
    idx = _by_slice(ds)
    # B draws slice 10, A one of 10, 11, 12: two draws from A and B
    for a_and_b, slice_10 in _slice_draws(ds, [A_SLICES, (10, )]):
        assert a_and_b == 2 and slice_10 >= 1
    info = ds.get_data_info(idx[10])
    assert len(info['positive_lesions']) == 2  # A and B
    # A's propagated slices belong to A, not to a lesion of their own
    a_key = set(info['positive_lesions']) & set(
        ds.get_data_info(idx[11])['positive_lesions'])
    assert len(a_key) == 1
    assert ds.get_data_info(idx[12])['positive_lesions'] == list(a_key)


def test_plain_key_slice_with_two_rows_is_drawn_twice(tmp_path):
    """Without mining a DeepLesion row is one 3D lesion (Table III, "No
    mining": 22.8K 3D GT on 22.4K slices)."""
    ds = _multi(tmp_path, mined=False)
    idx = _by_slice(ds)
    bs = _sampler(ds)
    assert _draws(bs, 0)[idx[10]] == 2
    assert bs.epoch_counts()[0] == (3, 0)  # A, B, C; no negative slices
    assert len(set(ds.positive_lesions(idx[10]))) == 2


def test_mined_lesion_off_key_slices_gets_its_own_draw(tmp_path):
    ds = _multi(tmp_path)
    idx = _by_slice(ds)
    # C (slice 30) and D (one of slices 40-42) each drawn once an epoch
    assert _slice_draws(ds, [(30, ), D_SLICES]) == [[1, 1]] * 4
    d_keys = {tuple(ds.get_data_info(idx[z])['positive_lesions'])
              for z in D_SLICES}
    assert len(d_keys) == 1
    assert d_keys.pop() != tuple(ds.get_data_info(idx[30])['positive_lesions'])


def test_positives_per_epoch_are_the_3d_lesions_at_2_to_1(tmp_path):
    ds = _multi(tmp_path)
    bs = _sampler(ds)
    # 4 lesions (A, B, C, D) and 2 of the 6 negatives; toy: 6 and 3
    assert bs.epoch_counts() == {0: (4, 2), 1: (6, 3)}
    for epoch in range(3):
        draws = _draws(bs, epoch)
        pos, neg = Counter(), Counter()
        for i, n in draws.items():
            (pos if ds.is_positive(i) else neg)[ds.dataset_id(i)] += n
        assert pos == {0: 4, 1: 6}
        assert neg == {0: 2, 1: 3}
        assert sum(len(b) for b in bs) == 15 and len(bs) == len(list(bs))


def test_epochs_draw_different_slices_of_a_multi_slice_lesion(tmp_path):
    per_epoch = _slice_draws(_multi(tmp_path), [(z, ) for z in D_SLICES],
                             epochs=8, seed=1)
    assert all(sum(d) == 1 for d in per_epoch)  # one slice of D an epoch
    assert len({tuple(d) for d in per_epoch}) > 1  # not always the same


def test_same_seed_and_epoch_give_the_same_draws(tmp_path):
    ds = _multi(tmp_path)
    idx = _by_slice(ds)
    first, second = _sampler(ds, seed=5), _sampler(ds, seed=5)
    for epoch in (0, 3):
        first.set_epoch(epoch)
        second.set_epoch(epoch)
        batches = list(first)
        assert batches == list(second)
        draws = Counter(i for b in batches for i in b)
        assert sum(draws[idx[z]] for z in A_SLICES + (30, ) + D_SLICES) == 4
    first.set_epoch(0)
    again = list(first)
    second.set_epoch(0)
    assert again == list(second)
    assert [sorted(b) for b in again] != [sorted(b) for b in batches]
