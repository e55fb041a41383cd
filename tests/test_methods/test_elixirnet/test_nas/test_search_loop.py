# Copyright (c) mmlesion contributors. All rights reserved.
"""ALBSearchLoop: one alternating search epoch of a tiny Faster R-CNN with a
search-mode ALB head on fake 3-slice data, started from a "baseline"
checkpoint (same backbone / neck / RPN, mmdet's 2-fc box head)."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.nas import (ALBSearchLoop, SearchSplitDataset,
                                            derive_genotypes, load_genotypes)
from tests.helpers.alb_search import (baseline_detector_cfg, clone_state,
                                         search_cfg)

FROZEN = ('backbone', 'neck', 'rpn_head')


@pytest.fixture(scope='module')
def searched(tmp_path_factory):
    """Run one search epoch (four images per half, two iterations)."""
    init_default_scope('mmdet')
    tmp = tmp_path_factory.mktemp('alb_search')
    torch.manual_seed(1)
    baseline = MODELS.build(ConfigDict(baseline_detector_cfg()))
    ckpt = str(tmp / 'baseline.pth')
    torch.save(dict(state_dict=baseline.state_dict(), meta=dict()), ckpt)

    cfg = search_cfg(str(tmp / 'work'),
                     max_epochs=1,
                     num_samples=8,
                     load_from=ckpt)
    # its own message hub: a config without a file names its run by the
    # second it starts, so another runner built in the same second of this
    # process would share (and add to) the logged learning rates
    cfg.experiment_name = f'alb_search_{tmp.name}'
    runner = Runner.from_cfg(cfg)
    head = runner.model.roi_head.bbox_head
    alpha_before = [p.detach().clone() for p in head.arch_parameters()]
    head_before = {
        k: v
        for k, v in clone_state(head).items() if 'arch_alpha' not in k
    }
    runner.train()
    return dict(runner=runner,
                baseline=clone_state(baseline),
                alpha_before=alpha_before,
                head_before=head_before,
                work_dir=str(tmp / 'work'))


def test_halves_and_dataloaders(searched):
    loop = searched['runner'].train_loop
    assert isinstance(loop, ALBSearchLoop)
    weight_set = loop.dataloader.dataset
    arch_set = loop.arch_dataloader.dataset
    assert isinstance(weight_set, SearchSplitDataset)
    assert (weight_set.split, arch_set.split) == ('weight', 'arch')
    assert not set(weight_set.indices) & set(arch_set.indices)
    assert sorted(weight_set.indices + arch_set.indices) == list(range(8))
    # an epoch is one pass over the weight half
    assert loop.max_iters == len(loop.dataloader) == 2


def test_alpha_and_head_weights_change(searched):
    head = searched['runner'].model.roi_head.bbox_head
    for before, after in zip(searched['alpha_before'], head.arch_parameters()):
        assert not torch.equal(before, after.detach())
    after = clone_state(head)
    changed = [
        k for k, v in searched['head_before'].items()
        if v.is_floating_point() and not torch.equal(v, after[k])
    ]
    assert any(k.startswith('fc_cls') for k in changed)
    assert any(k.startswith('normal_cell.edges') for k in changed)


def test_frozen_parts_equal_baseline(searched):
    """Backbone, neck and RPN come from load_from and do not move, BN
    running statistics included (the tiny backbone has norm_eval=False, so
    only the loop keeps its BN in eval mode)."""
    model = searched['runner'].model
    state = clone_state(model)
    baseline = searched['baseline']
    frozen_keys = [k for k in state if k.split('.')[0] in FROZEN]
    assert any('running_mean' in k for k in frozen_keys)
    for key in frozen_keys:
        assert torch.equal(state[key], baseline[key]), key
    for name in FROZEN:
        assert not any(p.requires_grad
                       for p in getattr(model, name).parameters())


def test_no_gradient_leaks_between_optimizers(searched):
    """Each step only computes (and then clears) its own group's grads."""
    model = searched['runner'].model
    for name, param in model.named_parameters():
        assert param.grad is None or not param.grad.any(), name
    # architecture and head weights are trainable again after the steps
    assert all(p.requires_grad
               for p in model.roi_head.bbox_head.arch_parameters())


def test_arch_losses_logged(searched):
    hub = searched['runner'].message_hub
    for key in ('train/loss', 'train/arch_loss', 'train/arch_loss_cls'):
        assert key in hub.log_scalars, key
    lrs = searched['runner'].optim_wrapper.get_lr()
    assert set(lrs) == {'weight.lr', 'arch.lr'}
    # weights: cosine from 0.02 towards zero over the 2 iterations of the
    # search (0.02, then 0.02 * (1 + cos(pi / 2)) / 2); alpha: constant
    weight_lr = hub.get_scalar('train/weight.lr').data[0]
    arch_lr = hub.get_scalar('train/arch.lr').data[0]
    assert weight_lr.tolist() == pytest.approx([0.02, 0.01])
    assert arch_lr.tolist() == pytest.approx([3e-2, 3e-2])


def test_genotype_written_and_builds(searched):
    work_dir = searched['work_dir']
    final = osp.join(work_dir, 'genotype.py')
    assert osp.isfile(osp.join(work_dir, 'genotypes', 'epoch_1.py'))
    genotypes = load_genotypes(final)
    assert genotypes == derive_genotypes(searched['runner'].model)
    assert load_genotypes(osp.join(work_dir, 'genotypes',
                                   'epoch_1.py')) == genotypes

    head = MODELS.build(
        dict(type='ALBBBoxHead',
             in_channels=16,
             roi_feat_size=7,
             conv_out_channels=16,
             num_classes=1,
             genotypes=genotypes))
    assert not head.search and not head.arch_parameters()
    assert head.genotypes() == genotypes
    cls_score, bbox_pred = head(torch.randn(5, 16, 7, 7), num_rois=[3, 2])
    assert cls_score.shape == (5, 2) and bbox_pred.shape == (5, 4)


def test_resume_continues_search(searched, tmp_path):
    """A second run resumes epoch 1's checkpoint (both optimizers and the
    per-optimizer schedulers) and searches one more epoch."""
    work_dir = searched['work_dir']
    cfg = search_cfg(work_dir, max_epochs=2, num_samples=8)
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.train_loop.epoch == 2
    arch_opt = runner.optim_wrapper['arch'].optimizer
    steps = [
        int(arch_opt.state[p]['step']) for group in arch_opt.param_groups
        for p in group['params']
    ]
    assert steps == [4, 4]  # one Adam step per iteration, 2 resumed
    assert osp.isfile(osp.join(work_dir, 'genotypes', 'epoch_2.py'))


def test_loop_rejects_bad_setups():
    cfg = dict(batch_size=1,
               dataset=dict(type='SearchSplitDataset',
                            split='weight',
                            dataset=dict(type='NASFakeLesionDataset')))
    with pytest.raises(ValueError, match='do not wrap'):
        ALBSearchLoop.split_dataloader_cfg(cfg)
    weight_cfg, arch_cfg = ALBSearchLoop.split_dataloader_cfg(dict(
        batch_size=1, dataset=dict(type='NASFakeLesionDataset')),
                                                              seed=3)
    assert weight_cfg['dataset']['split'] == 'weight'
    assert arch_cfg['dataset']['split'] == 'arch'
    assert arch_cfg['dataset']['seed'] == 3
