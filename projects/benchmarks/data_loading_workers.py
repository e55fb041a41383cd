# Copyright (c) mmlesion contributors. All rights reserved.
"""How many data-loading workers one GPU needs, for
``benchmark_data_loading.py --parts``.

Holds the GPU time per training image (:class:`GpuTime`; the H100 times of
``docs/benchmarks.md``, :data:`H100_TIMES`, matched by config name with
:func:`h100_time`), the worker count computed from a GPU step's time and
one worker's samples/s (:func:`workers_needed`) and its record
(:class:`WorkerNeed`).
"""
import dataclasses
import math
import os.path as osp
from typing import Optional


@dataclasses.dataclass(frozen=True)
class GpuTime:
    """Time one GPU spends per training image.

    :data:`H100_TIMES` holds the training (or, where no training step was
    timed, inference) times per image on one H100 from
    ``docs/benchmarks.md``, section "Speed on one H100 80GB" (batch 1,
    fp32). An inference time is a lower bound of the training time (a
    training step runs the same forward pass and a backward pass), so the
    workers derived from it are an upper bound.

    Attributes:
        pattern (str): substrings the config's file name must all contain
            (separated by ``*``).
        ms_per_image (float): milliseconds per image.
        kind (str): ``'training'`` (a timed training step), or
            ``'inference (lower bound)'``.
        source (str): the measurement it comes from.
    """
    pattern: str
    ms_per_image: float
    kind: str
    source: str

    def matches(self, config: str) -> bool:
        """Whether the file name of ``config`` contains every part of
        :attr:`pattern`."""
        name = osp.basename(config)
        return all(part in name for part in self.pattern.split('*'))


#: The H100 times of ``docs/benchmarks.md``, matched against the config's
#: file name (first hit wins).
H100_TIMES = (
    GpuTime('elixirnet-fig3geno_r50_fpn*3slice', 77.7, 'training',
            'benchmark_elixirnet.py --device cuda: ElixirNet R50-FPN, '
            '3 x 512 x 512, 77.7 ms / training image'),
    GpuTime('elixirnet-fig3geno_r50-9ch_fpn*9slice', 77.7,
            'training (3-slice model)',
            'benchmark_elixirnet.py --device cuda: the 3-slice ElixirNet '
            'R50-FPN (this model differs in its first convolution only), '
            '77.7 ms / training image'),
    GpuTime('faster-rcnn_r50_fpn*3slice', 50.9, 'training',
            "benchmark_elixirnet.py --device cuda: mmdet's Faster R-CNN "
            'R50-FPN, 3 x 512 x 512, 50.9 ms / training image'),
    GpuTime('lens-*luna16-lits-nihln-9slice', 28.7,
            'inference (lower bound)',
            'benchmark_lens.py --device cuda: LENS with 4 experts, 28.7 ms '
            'inference per 9-slice image (no training step timed)'),
    GpuTime('lens-*deeplesion-9slice', 20.2, 'inference (lower bound)',
            'benchmark_lens.py --device cuda: LENS with 1 expert, 20.2 ms '
            'inference per 9-slice image (no training step timed)'),
    GpuTime('improved-retinanet_vgg19_densefpn-ag', 9.6,
            'inference (lower bound)',
            'benchmark_retinanet_lesion.py --device cuda: Improved '
            'RetinaNet VGG-19 Dense FPN + AG, 9.6 ms inference per image '
            '(no training step timed)'),
    GpuTime('retinanet_vgg19_fpn', 7.0, 'inference (lower bound)',
            'benchmark_retinanet_lesion.py --device cuda: RetinaNet '
            'VGG-19, 7.0 ms inference per image (no training step timed)'),
)

#: Training / inference time per image of the two models timed both ways
#: on that H100 (Faster R-CNN R50-FPN 50.9 / 16.8 ms = 3.03, ElixirNet
#: 77.7 / 24.4 ms = 3.18): the smaller one turns an inference time into an
#: estimated training time.
TRAIN_PER_INFERENCE = 50.9 / 16.8


def h100_time(config: str) -> Optional[GpuTime]:
    """The documented H100 time per image of ``config``, if any."""
    for entry in H100_TIMES:
        if entry.matches(config):
            return entry
    return None


@dataclasses.dataclass
class WorkerNeed:
    """How many data-loading workers one GPU needs.

    Attributes:
        gpu_ms_per_image (float): GPU time per training image.
        gpu_time_kind (str): what that time is (see :class:`GpuTime`).
        gpu_time_source (str): where it comes from.
        samples_per_step (int): images per GPU step (the batch size).
        step_s (float): seconds per GPU step.
        samples_per_s_per_worker (float): what one worker delivers.
        workers (int): ``ceil(samples_per_step / (step_s x samples/s per
            worker))``.
        goal (int): the most workers allowed.
        meets_goal (bool): ``workers <= goal``.
        estimated_workers (int, optional): for an inference time, the
            workers if training takes :data:`TRAIN_PER_INFERENCE` times
            as long (an estimate, not a measurement); None otherwise.
    """
    gpu_ms_per_image: float
    gpu_time_kind: str
    gpu_time_source: str
    samples_per_step: int
    step_s: float
    samples_per_s_per_worker: float
    workers: int
    goal: int
    meets_goal: bool
    estimated_workers: Optional[int] = None


def workers_needed(samples_per_step: int, step_s: float,
                   samples_per_s_per_worker: float) -> int:
    """``ceil(samples_per_step / (step_s * samples_per_s_per_worker))``.

    Args:
        samples_per_step (int): images one GPU step consumes.
        step_s (float): seconds per GPU step.
        samples_per_s_per_worker (float): samples/s of one worker.

    Returns:
        int: the fewest workers that keep the GPU fed (at least 1).
    """
    if step_s <= 0 or samples_per_s_per_worker <= 0:
        raise ValueError('step time and samples/s must be positive')
    # a tiny tolerance: 2 / (0.1 * 10) is 2 workers, not 3
    return max(1, math.ceil(
        samples_per_step / (step_s * samples_per_s_per_worker) - 1e-9))
