# Copyright (c) mmlesion contributors. All rights reserved.
"""The planned training schedule: iterations, warm-up, learning-rate steps
and checkpoints (:func:`plan_schedule`), within a time budget where one is
given (:class:`TimeBudget`).

Iterations are planned, not epochs of another dataset: a small dataset
gets at least :data:`MIN_ITERS` iterations (an epoch of 22 key slices is
two), a large one at most the base run's images (DeepLesion 1x, LUNA16
50 epochs) at the planned batch. A time budget is spent: the iterations
are what it buys at the estimated step time (at most the base run's
images), and a budget that buys fewer than the rule without one is said
in one note with the budget that would suffice. The base configs' epoch loop, checkpoint
names and hooks are kept: the run is ``ceil(iterations / iterations per
epoch)`` epochs, while the linear warm-up (:data:`WARMUP_FRACTION` of the
iterations, at most the base's 500) and the learning-rate steps (at
:data:`LR_STEPS` of the iterations) count iterations, so their shape does
not depend on the size of an epoch.
"""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .plan_choice import Choice

#: Iterations of any plan without a time budget (a few thousand SGD steps
#: from ImageNet weights, as mmdet's fine-tuning schedules).
MIN_ITERS = 2000
#: Without a budget: at most this many epochs where they exceed MIN_ITERS.
MAX_EPOCHS = 100
#: Linear warm-up: this share of the iterations, at most the base's 500.
WARMUP_FRACTION = .05
MAX_WARMUP = 500
#: Learning-rate steps (x0.1) at these shares of the iterations (mmdet 1x:
#: epochs 8 and 11 of 12).
LR_STEPS = ((2, 3), (11, 12))
#: An epoch has at least this many iterations (the batch is cut to it).
MIN_ITERS_PER_EPOCH = 4
#: Checkpoints (and validations) per run; only the last (and the best) kept.
CHECKPOINTS_PER_RUN = 10
#: Share of a time budget left for start-up, validation and checkpoints.
BUDGET_OVERHEAD = .2
#: Fewest iterations a time budget may plan (below it the budget is refused).
MIN_BUDGET_ITERS = 50
#: Base schedules: iterations of the base run, its batch and lr.
#: 2.5D: ElixirNet 1x, 12 epochs of DeepLesion's 22,919 training lesions
#: (about one key slice each) at 4 x 2 images; 3D: 50 epochs of LUNA16's
#: 799 training scans of a fold x 6 crops at 4 x 2.
BASE_SCHEDULES = {
    '2.5d': dict(iters=12 * 22919 // 8, batch=8, lr=.02),
    '3d': dict(iters=50 * 799 * 6 // 8, batch=8, lr=.01),
}


@dataclass(frozen=True)
class TimeBudget:
    """A training-time budget and the step time it is spent at: seconds
    per image = ``fixed_seconds + seconds_per_pixel * pixels`` (a Faster
    R-CNN step has a per-image cost that does not shrink with the image:
    its RoI head works on a fixed number of sampled RoIs).

    Args:
        minutes (float): wall-clock minutes for the whole training.
        device (str): ``'cpu'`` or ``'cuda'``.
        fixed_seconds (float): training seconds per image whatever its
            size, with the planned backbone (an estimate).
        seconds_per_pixel (float): training seconds per image pixel on
            top of them (an estimate).
        backbone_depth (int): the ResNet depth that step time is of.
        source (str): where the step time comes from (printed).
        load (tuple, optional): the 1-minute load average and the CPU
            cores when planning (``os.getloadavg``, ``os.cpu_count``): the
            wall time a CPU budget takes then.
        patches (TimeBudget, optional): the same budget spent on patches
            with the narrower heads patch training plans (its own step
            time); None: whole slices only.
    """
    minutes: float
    device: str
    fixed_seconds: float
    seconds_per_pixel: float
    backbone_depth: int
    source: str
    load: Optional[Tuple[float, int]] = None
    patches: Optional['TimeBudget'] = None

    def unit(self) -> str:
        """What a minute of the budget is."""
        return ('CPU minutes of one free core' if self.device == 'cpu' else
                'minutes of one GPU')

    def wall(self) -> str:
        """The wall time the budget takes at :attr:`load` (a CPU budget;
        a process shares the cores with the load: ``(load + 1) / cores``
        times slower where that exceeds 1), or ''."""
        if self.device != 'cpu' or self.load is None:
            return ''
        avg, cores = self.load
        slower = max(1., (avg + 1) / max(cores, 1))
        return (f' (at the load now, a 1-minute load average of {avg:.1f} '
                f'on {cores} cores: about {self.minutes * slower:.0f} '
                'minutes of wall time)')

    def seconds(self, pixels: float) -> float:
        """Estimated training seconds per image of ``pixels`` pixels."""
        return self.fixed_seconds + self.seconds_per_pixel * pixels


@dataclass
class ScheduleSettings:
    """What :func:`plan_schedule` plans from.

    Args:
        family (str): ``'2.5d'`` or ``'3d'`` (the base schedule).
        samples (int): training samples per epoch (key slices or scans).
        batch (int): the planned batch.
        what (str): what a sample is, for the reasons.
        budget (TimeBudget, optional): fit the training into it.
        pixels (float): pixels (2.5D) per sample, for the budget.
        factor (float): step time of a sample over that of a 3-slice
            image of as many pixels (9 slices: 3 groups, 3).
        notes (list[str]): lines the plan adds for the user (a budget
            below the iterations of the rule without one).
    """
    family: str
    samples: int
    batch: int
    what: str
    budget: Optional[TimeBudget] = None
    pixels: float = 0.
    factor: float = 1.
    notes: List[str] = field(default_factory=list)


def _budget_iters(s: ScheduleSettings, rule: int, most: int) -> Choice:
    b = s.budget
    per_iter = b.seconds(s.pixels) * s.factor * s.batch
    usable = b.minutes * 60 * (1 - BUDGET_OVERHEAD)
    iters = int(usable // per_iter)
    if iters < MIN_BUDGET_ITERS:
        least = math.ceil(MIN_BUDGET_ITERS * per_iter / 60 /
                          (1 - BUDGET_OVERHEAD))
        raise ValueError(
            f'--budget-minutes {b.minutes:g}: about {per_iter:.2f} s per '
            f'iteration on {b.device} (an estimate: {b.source}) leaves '
            f'{iters} iterations, fewer than {MIN_BUDGET_ITERS}; give at '
            f'least {least} minutes')
    if iters < rule:
        enough = math.ceil(rule * per_iter / 60 / (1 - BUDGET_OVERHEAD))
        s.notes.append(
            f'--budget-minutes {b.minutes:g} ({b.unit()}) buys {iters} '
            f'iterations, fewer than the {rule} the plan takes without a '
            f'budget (at least {MIN_ITERS}); --budget-minutes {enough} '
            'would suffice')
    iters = min(iters, most)
    return Choice('max_iters', iters, (
        f'--budget-minutes {b.minutes:g}: {b.unit()}{b.wall()}, '
        f'{BUDGET_OVERHEAD:.0%}'
        f' kept for start-up and validation, at about {per_iter:.2f} s per '
        f'iteration of {s.batch} x {math.sqrt(s.pixels):.0f}^2 px (an '
        f'estimate: {b.source}'
        + (f', x{s.factor:g} for {3 * s.factor:g} slices' if s.factor != 1
           else '') + f'): all it buys (the rule without a budget: '
        f"{rule}), at most the base run's images ({most} iterations)"))


def plan_schedule(s: ScheduleSettings) -> List[Choice]:
    """Iterations, epochs, warm-up, lr steps, checkpoints and lr (module
    doc), each a :class:`Choice` (derived ones as config expressions, so a
    ``--cfg-options max_iters=...`` moves them along)."""
    base = BASE_SCHEDULES[s.family]
    samples = max(s.samples, 1)
    per_epoch = math.ceil(samples / s.batch)
    most = math.ceil(base['iters'] * base['batch'] / s.batch)
    rule = min(max(MIN_ITERS, MAX_EPOCHS * per_epoch), most)
    if s.budget is not None:
        iters = _budget_iters(s, rule, most)
    else:
        iters = Choice('max_iters', rule, (
            f'{MAX_EPOCHS} epochs of {per_epoch} iterations ({samples} '
            f'{s.what} at batch {s.batch}), at least {MIN_ITERS}, at most '
            f"the base run's {base['iters'] * base['batch']} images "
            f'({most} iterations)'))
    n = iters.value
    epochs = math.ceil(n / per_epoch)
    warmup = min(MAX_WARMUP, max(1, round(n * WARMUP_FRACTION)))
    steps = [n * a // b for a, b in LR_STEPS]
    interval = max(1, epochs // CHECKPOINTS_PER_RUN)
    lr = round(base['lr'] * s.batch / base['batch'], 6)
    return [
        iters,
        Choice('iters_per_epoch', per_epoch,
               f'{samples} {s.what} at batch {s.batch}'),
        Choice('max_epochs', epochs, (
            'whole epochs holding max_iters (the base\'s epoch loop, '
            'checkpoints and validation are kept)'),
               expr='-(-max_iters // iters_per_epoch)'),
        Choice('warmup_iters', warmup, (
            f'linear warm-up over {WARMUP_FRACTION:.0%} of the iterations, '
            f'at most {MAX_WARMUP}'),
               expr=f'min({MAX_WARMUP}, max(1, round(max_iters * '
               f'{WARMUP_FRACTION})))'),
        Choice('lr_steps', steps, (
            'the learning rate x0.1 at '
            + ' and '.join(f'{a}/{b}' for a, b in LR_STEPS)
            + ' of the iterations'),
               expr='[' + ', '.join(f'max_iters * {a} // {b}'
                                    for a, b in LR_STEPS) + ']'),
        Choice('checkpoint_interval', interval, (
            f'about {CHECKPOINTS_PER_RUN} checkpoints and validations a run '
            '(epochs); only the last one and the best are kept'),
               expr=f'max(1, max_epochs // {CHECKPOINTS_PER_RUN})'),
        Choice('lr', lr, f"the base's {base['lr']:g} at batch "
               f"{base['batch']}, scaled linearly to batch {s.batch}"),
    ]
