# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS under mmengine's MMDistributedDataParallel (gloo, CPU, 2 ranks).

``LENSDatasetBatchSampler`` deals whole one-dataset batches to the ranks, so
in one step rank 0 trains AFP 0 and expert 0 while rank 1 trains AFP 1 and
expert 1: each rank leaves the other dataset's layers unused. With the
configs' ``find_unused_parameters=True`` the steps must not hang, the
replicas must stay identical, and each dataset's layers must learn from the
rank that used them (through the all-reduce, which averages over the
ranks). The ranks run :func:`tests.helpers.lens_ddp.lens_ddp_step_worker`;
this process checks what they saved.
"""
import math

import pytest
import torch
import torch.distributed as dist

from tests.helpers.dist_spawn import spawn_workers
from tests.helpers.lens_ddp import lens_ddp_step_worker

WORLD = 2
STEPS = 3
TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason='torch.distributed with the gloo backend is not available')


@pytest.fixture(scope='module')
def records(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('lens_ddp_step')
    try:
        spawn_workers(lens_ddp_step_worker,
                      (WORLD, str(tmp / 'rendezvous'), str(tmp), STEPS),
                      WORLD, timeout_s=TIMEOUT_S)
    except TimeoutError as err:
        pytest.fail(f'DDP training of LENS: {err}')
    return [torch.load(tmp / f'rank{r}.pth') for r in range(WORLD)]


def test_steps_finish_with_finite_losses(records):
    for rank, r in enumerate(records):
        assert r['rank'] == rank and r['dataset_id'] == rank
        assert r['optimizer'] == 'RAdam'
        assert len(r['losses']) == STEPS
        for step in r['losses']:
            assert {
                'loss_afp_centerness', 'loss_afp_size', 'loss_cls',
                'loss_bbox', 'loss'
            } <= set(step)
            assert all(math.isfinite(v) for v in step.values()), step
            assert step['loss'] > 0


def test_replicas_stay_identical(records):
    r0, r1 = records
    assert r0['init'].keys() == r1['init'].keys() == r0['final'].keys()
    for name in r0['init']:  # same seed: same start
        torch.testing.assert_close(r0['init'][name], r1['init'][name])
    for name in r0['final']:
        torch.testing.assert_close(
            r0['final'][name],
            r1['final'][name],
            rtol=0,
            atol=0,
            msg=lambda m: f'{name} differs between the ranks: {m}')


def _changed(record, names):
    return {
        n
        for n in names
        if not torch.equal(record['init'][n], record['final'][n])
    }


def test_every_layer_learns_from_the_rank_that_used_it(records):
    r0 = records[0]
    params = r0['dataset_params']
    assert params == records[1]['dataset_params']
    for d in range(WORLD):
        assert any(n.startswith(f'rpn_heads.{d}.') for n in params[d])
        assert any('fc_cls.experts' in n for n in params[d])
        assert any('fc_reg.experts' in n for n in params[d])
        # dataset 1's layers are used by rank 1 only, yet rank 0's replica
        # (identical, see above) changed too: the all-reduce brought them
        assert _changed(r0, params[d]) == set(params[d]), d
    dataset_specific = set(params[0]) | set(params[1])
    shared = [n for n in r0['init'] if n not in dataset_specific]
    assert any(n.startswith('backbone.') for n in shared)
    assert any('shared_fcs' in n for n in shared)
    # nothing else is broken: every shared parameter that a single process
    # trains (gradient not None) was trained. The only ones it does not are
    # the 3x3 output convs of the coarser FPN levels: the AFPs and RoIAlign
    # use the stride-4 level only (MULAN), those levels only feed the
    # top-down path; DDP keeps their gradient None and RAdam skips them.
    used = {n for n in shared if any(n in r['single_grads'] for r in records)}
    assert _changed(r0, shared) == used
    unused = set(shared) - used
    assert all(
        n.startswith(('neck.fpn_convs.1.', 'neck.fpn_convs.2.'))
        for n in unused), unused
    for r in records:
        assert not unused & set(r['ddp_grads'])


def test_all_reduce_averages_the_gradients(records):
    """DDP divides the summed gradients by the world size: a layer used by
    one rank gets half of that rank's single-process gradient, on every
    rank; a shared layer gets the mean of the ranks' gradients."""
    for d, owner in enumerate(records):
        for name in owner['dataset_params'][d]:
            expected = owner['single_grads'][name] / WORLD
            for r in records:
                torch.testing.assert_close(r['ddp_grads'][name],
                                           expected,
                                           rtol=1e-4,
                                           atol=1e-7)
    r0, r1 = records
    name = 'roi_head.bbox_head.shared_fcs.0.weight'
    torch.testing.assert_close(
        r0['ddp_grads'][name],
        (r0['single_grads'][name] + r1['single_grads'][name]) / WORLD,
        rtol=1e-4,
        atol=1e-7)
