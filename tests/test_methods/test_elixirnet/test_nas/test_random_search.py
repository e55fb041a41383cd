# Copyright (c) mmlesion contributors. All rights reserved.
"""ElixirNet Table 6 "random ALB (Li and Talwalkar 2019)": uniform genotype
sampling and ALBSearchLoop(strategy='random') (random search with weight
sharing) on a tiny detector and fake data."""
import collections
import itertools
import json
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from scipy.stats import chisquare

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.models.alb_ops import ALB_OP_NAMES, DARTS_OP_NAMES
from mmlesion.methods.elixirnet.nas import load_genotypes
from mmlesion.methods.elixirnet.nas.genotype import check_genotypes
from mmlesion.methods.elixirnet.nas.random_search import (CANDIDATE_STREAM,
                                                          TRAIN_STREAM,
                                                          genotype_rng,
                                                          sample_genotypes)
from tests.helpers.alb_search import (baseline_detector_cfg, clone_state,
                                         search_cfg)


# ------------------------------------------------------------- sampling
def test_sampling_is_uniform_over_the_allowed_choices():
    """Every entry's operation is uniform over op_names ('none' included,
    as Li and Talwalkar); branch b >= 2 reads a uniform pair of distinct
    inputs among 0..b-1; branch 1 reads the cell input twice."""
    rng = genotype_rng(seed=123, stream=TRAIN_STREAM, index=0)
    ops = collections.Counter()
    pairs = {b: collections.Counter() for b in range(4)}
    n = 3000
    for _ in range(n):
        genotypes = sample_genotypes(rng, ALB_OP_NAMES, num_branches=4)
        assert check_genotypes(genotypes) == genotypes  # a valid genotype
        for cell in genotypes.values():
            assert cell['concat'] == [1, 2, 3, 4]
            for b in range(4):
                (op1, i1), (op2, i2) = cell['ops'][2 * b:2 * b + 2]
                ops.update([op1, op2])
                pairs[b][(i1, i2)] += 1
    assert set(ops) == set(ALB_OP_NAMES)
    counts = [ops[name] for name in ALB_OP_NAMES]
    assert chisquare(counts).pvalue > 1e-3, counts
    assert pairs[0] == {(0, 0): 2 * n}
    for b in range(1, 4):
        expected = set(itertools.combinations(range(b + 1), 2))
        assert set(pairs[b]) == expected  # distinct, increasing inputs
        if len(expected) > 1:
            assert chisquare([pairs[b][p] for p in sorted(expected)
                              ]).pvalue > 1e-3, pairs[b]


def test_sampling_space_options():
    rng = genotype_rng(0, TRAIN_STREAM, 0)
    seen = set()
    for _ in range(200):
        for cell in sample_genotypes(rng, DARTS_OP_NAMES, 3,
                                     exclude_ops=('none', )).values():
            assert len(cell['ops']) == 6
            seen.update(op for op, _ in cell['ops'])
    assert seen == set(DARTS_OP_NAMES) - {'none'}
    with pytest.raises(ValueError, match='No operation left'):
        sample_genotypes(rng, ('none', ), exclude_ops=('none', ))


def test_seeded_streams():
    """A sample depends only on (seed, stream, index)."""

    def draw(seed, stream, num=20):
        return [
            sample_genotypes(genotype_rng(seed, stream, i), ALB_OP_NAMES)
            for i in range(num)
        ]

    assert draw(0, TRAIN_STREAM) == draw(0, TRAIN_STREAM)
    assert draw(0, TRAIN_STREAM) != draw(1, TRAIN_STREAM)
    assert draw(0, TRAIN_STREAM) != draw(0, CANDIDATE_STREAM)


# ----------------------------------------------------------- the head
def test_head_runs_sampled_genotypes():
    init_default_scope('mmdet')
    head = MODELS.build(
        dict(type='ALBBBoxHead',
             in_channels=16,
             roi_feat_size=7,
             conv_out_channels=16,
             num_classes=1,
             search=True))
    genotypes = sample_genotypes(genotype_rng(0, 0, 0), ALB_OP_NAMES)
    genotypes['normal']['ops'][0] = ('non_local', 0)
    genotypes['normal']['ops'][1] = ('skip_connect', 0)
    x = torch.randn(5, 16, 7, 7)
    head.set_sampled_genotypes(genotypes)
    cls_score, _ = head(x, num_rois=[3, 2])
    assert cls_score.shape == (5, 2)
    # the graph of the Non-local operation that ran, one per image
    assert [tuple(g.shape) for g in head.last_adjacency] == [(3, 3), (2, 2)]
    cls_score.sum().backward()
    assert all(p.grad is None for p in head.arch_parameters())
    head.set_sampled_genotypes(None)
    head(x, num_rois=[3, 2])[0].sum().backward()
    assert all(p.grad is not None for p in head.arch_parameters())
    with pytest.raises(ValueError, match='unknown operation'):
        head.set_sampled_genotypes(
            sample_genotypes(genotype_rng(0, 0, 0), DARTS_OP_NAMES,
                             exclude_ops=ALB_OP_NAMES))
    fixed = MODELS.build(
        dict(type='ALBBBoxHead', in_channels=16, conv_out_channels=16,
             num_classes=1))
    with pytest.raises(ValueError, match='search head'):
        fixed.set_sampled_genotypes(genotypes)


# ------------------------------------------------------------ the loop
def _random_cfg(work_dir, seed=0, load_from=None, **loop):
    cfg = search_cfg(work_dir, max_epochs=1, num_samples=8,
                     load_from=load_from)
    cfg.train_dataloader.batch_size = 1  # 4 weight steps over 4 images
    cfg.randomness = dict(seed=seed)
    options = dict(strategy='random', num_candidates=3, candidate_batches=1,
                   num_finalists=2, finalist_batches=None)
    options.update(loop)
    cfg.train_cfg.update(options)
    return cfg


@pytest.fixture(scope='module')
def random_search(tmp_path_factory):
    init_default_scope('mmdet')
    tmp = tmp_path_factory.mktemp('alb_random_search')
    torch.manual_seed(1)
    baseline = MODELS.build(ConfigDict(baseline_detector_cfg()))
    ckpt = str(tmp / 'baseline.pth')
    torch.save(dict(state_dict=baseline.state_dict(), meta=dict()), ckpt)
    runner = Runner.from_cfg(_random_cfg(str(tmp / 'work'), load_from=ckpt))
    head = runner.model.roi_head.bbox_head
    before = clone_state(head)
    runner.train()
    return dict(runner=runner, before=before, ckpt=ckpt, tmp=tmp,
                work_dir=str(tmp / 'work'))


def test_random_loop_never_steps_alpha(random_search):
    runner = random_search['runner']
    head = runner.model.roi_head.bbox_head
    after = clone_state(head)
    for key in ('arch_alpha_normal', 'arch_alpha_reduce'):
        assert torch.equal(random_search['before'][key], after[key])
    assert not runner.optim_wrapper['arch'].optimizer.state
    assert 'train/arch_loss' not in runner.message_hub.log_scalars
    assert head.sampled_genotypes is None  # reset after every use


def test_random_loop_trains_only_the_sampled_paths(random_search):
    """Each weight step runs one drawn genotype on the shared weights: the
    operations never drawn keep their initial weights, drawn ones move."""
    runner = random_search['runner']
    loop = runner.train_loop
    head = runner.model.roi_head.bbox_head
    assert loop.strategy == 'random' and runner.iter == 4
    assert len(loop.sampled_genotypes) == 4
    assert loop.sampled_genotypes == [
        loop.sample_training_genotypes(i) for i in range(4)
    ]
    used = set()
    for genotypes in loop.sampled_genotypes:
        for key, cells in (('normal', ['normal_cell']),
                           ('reduce', ['reduce_cells.0', 'reduce_cells.1'])):
            for k, (op, index) in enumerate(genotypes[key]['ops']):
                edge = (k // 2) * (k // 2 + 1) // 2 + index
                for cell in cells:
                    used.add(f'{cell}.edges.{edge}.ops.'
                             f'{head.op_names.index(op)}.')
    before, after = random_search['before'], clone_state(head)
    moved, kept = set(), set()
    for name, value in after.items():
        if '.edges.' not in name or not value.is_floating_point() or \
                'running' in name:
            continue
        prefix = name[:name.index('.ops.') + len('.ops.')]
        prefix += name[len(prefix):].split('.')[0] + '.'
        changed = not torch.equal(before[name], value)
        (moved if changed else kept).add(prefix)
        if prefix not in used:
            assert not changed, name
    assert moved and kept and moved <= used


def test_random_loop_exports_the_best_candidate(random_search):
    work_dir = random_search['work_dir']
    loop = random_search['runner'].train_loop
    genotypes = load_genotypes(osp.join(work_dir, 'genotype.py'))
    with open(osp.join(work_dir, 'random_search.json')) as f:
        report = json.load(f)
    assert report['seed'] == 0 and report['trained_iterations'] == 4
    candidates = report['candidates']
    assert [c['index'] for c in candidates] == [0, 1, 2]
    for c in candidates:
        assert c['loss'] > 0
        assert check_genotypes(c['genotypes']) == \
            loop.sample_candidate_genotypes(c['index'])
    finalists = sorted(candidates, key=lambda c: c['loss'])[:2]
    assert all(c['finalist_loss'] is not None for c in finalists)
    best = min(finalists, key=lambda c: c['finalist_loss'])
    assert report['selected'] == best['index']
    assert genotypes == check_genotypes(best['genotypes'])
    # the argmax of alpha means nothing here: no per-epoch snippets
    assert not osp.exists(osp.join(work_dir, 'genotypes'))
    # the exported genotype builds a fixed head
    head = MODELS.build(
        dict(type='ALBBBoxHead', in_channels=16, conv_out_channels=16,
             num_classes=1, genotypes=genotypes))
    assert head(torch.randn(3, 16, 7, 7), num_rois=[3])[0].shape == (3, 2)


def test_training_seed_sets_the_draws(random_search, tmp_path):
    """Another randomness.seed draws another sequence; the same seed the
    same one (the weights and the data order aside)."""
    init_default_scope('mmdet')
    first = random_search['runner'].train_loop.sampled_genotypes
    ckpt = random_search['ckpt']
    runs = {}
    for seed in (0, 1):
        runner = Runner.from_cfg(
            _random_cfg(str(tmp_path / f's{seed}'), seed=seed,
                        load_from=ckpt, num_candidates=1,
                        num_finalists=0))
        runner.train()
        runs[seed] = runner.train_loop.sampled_genotypes
    assert runs[0] == first
    assert runs[1] != first and len(runs[1]) == len(first)


def test_loop_rejects_bad_random_options(tmp_path):
    init_default_scope('mmdet')
    for bad in (dict(strategy='evolution'), dict(num_candidates=0),
                dict(num_finalists=-1), dict(finalist_batches=0)):
        cfg = _random_cfg(str(tmp_path), **{
            k: v for k, v in bad.items() if k != 'strategy'})
        if 'strategy' in bad:
            cfg.train_cfg.strategy = bad['strategy']
        runner = Runner.from_cfg(cfg)
        with pytest.raises(ValueError, match='strategy|num_candidates'):
            runner.build_train_loop(runner._train_loop)
