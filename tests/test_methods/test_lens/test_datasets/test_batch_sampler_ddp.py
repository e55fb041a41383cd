# Copyright (c) mmlesion contributors. All rights reserved.
"""LENSDatasetBatchSampler in 2 processes (torch.distributed, gloo, CPU).

Under DDP every rank must yield the same number of batches (a rank with one
more batch waits forever in the gradient all-reduce), every batch must hold
one dataset, the ranks' batches must together be the epoch (each kept index
once, except the batches repeated to even out the ranks), with positives :
negatives 2 : 1 per epoch, and a new epoch must reshuffle identically on
both ranks. The ranks run :func:`tests.helpers.lens_sampler.
lens_sampler_ddp_worker`; this process checks what they recorded.
"""
import json
import math
from collections import Counter

import pytest
import torch.distributed as dist

from tests.helpers.dist_spawn import spawn_workers
from tests.helpers.lens_sampler import (lens_sampler_ddp_worker,
                                           toy_lens_multi_dataset)

WORLD = 2
# (positives, negatives): 30 + 15 and 9 + 3 kept slices, 12 + 3 = 15 batches
# of 4: an odd number, so one batch is repeated to even out the 2 ranks.
SIZES = [(30, 40), (9, 3)]
NEGATIVES = {0: 15, 1: 3}  # 2 : 1 per epoch; dataset 1 has only 3
BATCH = 4

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason='torch.distributed with the gloo backend is not available')


@pytest.fixture(scope='module')
def records(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('lens_ddp')
    spawn_workers(lens_sampler_ddp_worker,
                  (WORLD, str(tmp / 'rendezvous'), str(tmp), SIZES, BATCH),
                  WORLD)
    out = []
    for rank in range(WORLD):
        with open(tmp / f'rank{rank}.json') as f:
            out.append(json.load(f))
    assert [r['rank'] for r in out] == list(range(WORLD))
    return out


def _expected_batches(drop_last=False):
    """Batches of the whole epoch: all positives, round(P / 2) negatives."""
    total = 0
    for p, n in SIZES:
        kept = p + min(n, round(p / 2))
        total += kept // BATCH if drop_last else math.ceil(kept / BATCH)
    return total


def _check_epoch(per_rank, drop_last=False):
    ds = toy_lens_multi_dataset(SIZES)
    lens = [len(b) for b in per_rank]
    # Same number of batches on every rank, and len() says so.
    assert len(set(lens)) == 1, f'batches per rank differ: {lens}'
    total = _expected_batches(drop_last)
    assert lens[0] == math.ceil(total / WORLD)
    all_batches = [b for batches in per_rank for b in batches]
    for b in all_batches:
        assert len({ds.dataset_id(i) for i in b}) == 1, b
        assert len(b) == BATCH or not drop_last
    # Distinct batches: disjoint; together the epoch. The ranks' batches
    # are disjoint except the (WORLD * per_rank - total) repeated ones.
    distinct = {tuple(b) for b in all_batches}
    assert len(distinct) == total
    seen = Counter(i for b in distinct for i in b)
    assert max(seen.values()) == 1
    if not drop_last:
        pos = Counter(ds.dataset_id(i) for i in seen if ds.is_positive(i))
        neg = Counter(ds.dataset_id(i) for i in seen
                      if not ds.is_positive(i))
        assert dict(pos) == {d: p for d, (p, _) in enumerate(SIZES)}
        assert dict(neg) == NEGATIVES
    return all_batches


def _passes(records, key):
    """Per pass (epoch set in order), the batches of every rank."""
    return [[r[key][i]['batches'] for r in records]
            for i in range(len(records[0][key]))]


def test_ranks_yield_equal_disjoint_one_dataset_batches(records):
    for i, per_rank in enumerate(_passes(records, 'default')):
        assert [r['default'][i]['len'] for r in records] == \
            [len(b) for b in per_rank]
        _check_epoch(per_rank)
    _check_epoch(_passes(records, 'drop_last')[0], drop_last=True)
    # epoch_counts is the whole epoch, the same on every rank
    for r in records:
        assert r['epoch_counts'] == {'0': [30, 15], '1': [9, 3]}


def test_set_epoch_reshuffles_identically_on_both_ranks(records):
    """Epochs 0, 1, 0: a new epoch draws other batches and negatives on
    both ranks alike (_check_epoch: still disjoint and complete) and an
    epoch is reproduced exactly."""
    ds = toy_lens_multi_dataset(SIZES)
    assert [p['epoch'] for p in records[0]['default']] == [0, 1, 0]
    e0, e1, again = _passes(records, 'default')
    assert again == e0
    for rank in range(WORLD):
        assert e0[rank] != e1[rank]
    negatives = [{i for b in sum(e, []) for i in b if not ds.is_positive(i)}
                 for e in (e0, e1)]
    assert negatives[0] != negatives[1]
    assert len(negatives[0]) == len(negatives[1]) == sum(NEGATIVES.values())


def test_runner_builds_it_in_the_distributed_setting(records):
    for r in records:
        assert r['runner']['type'] == 'LENSDatasetBatchSampler'
        assert r['runner']['sampler_type'] == 'DefaultSampler'
    lens = [r['runner']['len_loader'] for r in records]
    assert lens[0] == lens[1] == math.ceil(_expected_batches() / WORLD)
    _check_epoch([r['runner']['epoch0'] for r in records])
    _check_epoch([r['runner']['epoch3'] for r in records])
    # DistSamplerSeedHook reached the batch sampler: epoch 3 differs
    assert [r['runner']['epoch0'] for r in records] != \
        [r['runner']['epoch3'] for r in records]
