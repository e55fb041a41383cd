# Copyright (c) mmlesion contributors. All rights reserved.
"""The planned schedule (:mod:`mmlesion.apps.own_data.plan_schedule`): the
learning rate of the written config, stepped as mmengine steps it, warms
up within the iterations and reaches its peak; a time budget shrinks it."""
import math
from dataclasses import replace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim.scheduler import LinearLR, MultiStepLR

from mmlesion.apps.own_data.dataset_plan import PlanSettings, plan_dataset
from mmlesion.apps.own_data.plan_config import (PlanConfigSettings,
                                                format_plan_config)
from mmlesion.apps.own_data.plan_schedule import (MIN_BUDGET_ITERS,
                                                  ScheduleSettings, TimeBudget,
                                                  plan_schedule)
from mmlesion.apps.reproduce.estimate import CPU_SECONDS_PER_TRAINING_IMAGE
from mmlesion.testing import repo_root
from tests.test_apps.test_own_data.test_dataset_plan import (_fingerprint,
                                                             _split)

#: one CPU core's step time as shipped (a fixed part + one per pixel, R18)
_CPU = TimeBudget(30., 'cpu', **CPU_SECONDS_PER_TRAINING_IMAGE,
                  source='shipped')


def coarse_fingerprint(scans=12):
    """Scans of 3 mm voxels, 128 x 128 x 60, lesions of 11-32 mm (the
    largest axial side; as thick as wide)."""
    import numpy as np
    from mmlesion.apps.own_data.fingerprint import (
        DatasetFingerprint, Distribution, SplitFingerprint)
    rng = np.random.default_rng(1)
    ext = rng.uniform(11., 32., (28, 3))
    split = _split(scans, 3., 3., 20., shape=(60, 128, 128))
    split = SplitFingerprint(**dict(
        vars(split), num_lesions=28, lesion_extents_zyx_mm=ext.tolist(),
        lesion_diameter_mm=Distribution.of(ext[:, 1:].max(1)),
        lesion_extent_zyx_mm=[Distribution.of(ext[:, k]) for k in
                              range(3)]))
    return DatasetFingerprint('data/coarse.json', 'ab' * 32, 'x',
                              ['lesion'], dict(train=split, test=split,
                                               all=split), 100, 0)


def _lr_curve(cfg, iters):
    """The learning rate of every iteration of ``cfg``'s schedule."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr)
    scheds = []
    for s in cfg.param_scheduler:
        s = dict(s)
        kind = {'LinearLR': LinearLR, 'MultiStepLR': MultiStepLR}[
            s.pop('type')]
        scheds.append(kind(opt, **s))
    lrs = []
    for _ in range(iters):
        lrs.append(opt.param_groups[0]['lr'])
        for s in scheds:
            s.step()
    return lrs


def _config(plan, tmp_path):
    path = tmp_path / 'plan.py'
    path.write_text(format_plan_config(plan, PlanConfigSettings(
        str(repo_root() / 'configs' / plan.base), 'export/', ['made'],
        False)))
    return Config.fromfile(str(path))


def test_small_dataset_warms_up_and_reaches_the_peak(tmp_path):
    """22 key slices (2 iterations an epoch at batch 16 before): the run
    has its planned iterations, the warm-up ends well before them, the
    peak is the planned lr, the steps come after it."""
    plan = plan_dataset(PlanSettings(coarse_fingerprint(), 24.,
                                     train_images=22))
    cfg = _config(plan, tmp_path)
    iters = cfg.train_cfg.max_epochs * cfg.iters_per_epoch
    assert iters >= cfg.max_iters >= 2000
    assert cfg.train_dataloader.batch_size == 5  # 22 // 4
    assert cfg.warmup_iters <= .05 * cfg.max_iters < cfg.lr_steps[0]
    lrs = _lr_curve(cfg, iters)
    peak = cfg.optim_wrapper.optimizer.lr
    assert max(lrs) == pytest.approx(peak)
    assert lrs[cfg.warmup_iters] == pytest.approx(peak)
    assert lrs[cfg.lr_steps[0]] == pytest.approx(peak / 10)
    assert lrs[-1] == pytest.approx(peak / 100)
    # the base's affine augmentation is kept; one checkpoint kept
    assert 'MultiSliceRandomAffine' in [t['type'] for t in
                                        cfg.train_pipeline]
    hook = cfg.default_hooks.checkpoint
    assert hook.max_keep_ckpts == 1 and hook.interval == max(
        1, cfg.train_cfg.max_epochs // 10)


def test_large_dataset_keeps_the_base_run():
    """DeepLesion's size: at most the base run's images."""
    out = plan_schedule(ScheduleSettings('2.5d', 22919, 8, 'slices'))
    assert out[0].value == 12 * 22919 // 8
    assert out[2].value == 12  # epochs


def test_small_images_keep_the_fixed_step_time():
    """A step's RoI head costs as much for a small image as for a large one
    (512 sampled RoIs): a 90 px image's step is not 1/8 of a 256 px
    image's, as pixels alone would have it (the benchmark measured 0.93 s
    at 96 px and 1.59 s at 256 px on one core)."""
    small, large = _CPU.seconds(90**2), _CPU.seconds(256**2)
    assert small > .5 * large  # pixels alone: 0.12 x
    assert _CPU.seconds(0) == _CPU.fixed_seconds > 0
    assert large - small == pytest.approx(
        _CPU.seconds_per_pixel * (256**2 - 90**2))


def test_budget_shrinks_the_plan():
    fp = coarse_fingerprint()
    free = plan_dataset(PlanSettings(fp, 24., train_images=400))
    cpu = plan_dataset(PlanSettings(fp, 8., train_images=400,
                                    time_budget=_CPU))
    assert cpu.value('max_iters') < free.value('max_iters')
    assert cpu.value('backbone_depth') == 18 < free.value('backbone_depth')
    assert cpu.value('batch_size') == 2
    # the estimate: iterations x batch x seconds per image fit 80 % of it
    side = math.sqrt(fp.splits['all'].shape_zyx[1].at(50) * 3 / cpu.value(
        'pixel_spacing') * fp.splits['all'].shape_zyx[2].at(50) * 3 /
        cpu.value('pixel_spacing'))
    factor = cpu.value('num_slices') / 3  # 3 groups of 3 slices
    seconds = cpu.value('max_iters') * 2 * (
        _CPU.fixed_seconds + _CPU.seconds_per_pixel * side**2) * factor
    assert .75 * 30 * 60 < seconds <= .8 * 30 * 60
    assert 'an estimate: shipped' in next(
        c.reason for c in cpu.choices if c.name == 'max_iters')
    # too little time: refused with the minutes it would take
    with pytest.raises(ValueError, match=f'fewer than {MIN_BUDGET_ITERS}; '
                       'give at least'):
        plan_dataset(PlanSettings(fp, 8., train_images=400,
                                  time_budget=replace(_CPU, minutes=.5)))
    with pytest.raises(ValueError, match='2.5D detector only'):
        plan_dataset(PlanSettings(_fingerprint(), 8., time_budget=_CPU))


def test_budget_said_plainly():
    """A CPU budget is CPU minutes of one free core, with the wall time at
    the load given; a budget below the plan's iterations without one is one
    note naming the budget that would suffice (which then does)."""
    fp = coarse_fingerprint()
    busy = replace(_CPU, load=(3.0, 2))
    short = plan_dataset(PlanSettings(fp, 8., train_images=400,
                                      time_budget=busy))
    reason = next(c.reason for c in short.choices if c.name == 'max_iters')
    assert reason.startswith(
        '--budget-minutes 30: CPU minutes of one free core (at the load '
        'now, a 1-minute load average of 3.0 on 2 cores: about 60 minutes '
        'of wall time), 20% kept for start-up'), reason
    (note, ) = short.notes
    rule = 100 * 400 // 2  # 100 epochs of 400 key slices at batch 2
    head = (f'--budget-minutes 30 (CPU minutes of one free core) buys '
            f"{short.value('max_iters')} iterations, fewer than the {rule} "
            'the plan takes without a budget (at least 2000); '
            '--budget-minutes ')
    assert note.startswith(head) and note.endswith(' would suffice'), note
    enough = float(note[len(head):].split()[0])
    full = plan_dataset(PlanSettings(fp, 8., train_images=400,
                                     time_budget=replace(_CPU,
                                                         minutes=enough)))
    assert rule <= full.value('max_iters') < rule * 1.01
    assert full.notes == []
    # a budget is spent, not capped at the rule without one
    double = plan_dataset(PlanSettings(fp, 8., train_images=400,
                                       time_budget=replace(
                                           _CPU, minutes=2 * enough)))
    assert double.value('max_iters') >= 2 * rule - 1
    # a quiet machine: a free core, the budget is the wall time
    assert replace(_CPU, load=(0.4, 2)).wall().endswith(
        'about 30 minutes of wall time)')
