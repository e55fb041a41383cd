# Copyright (c) mmlesion contributors. All rights reserved.
"""Anchor optimisation by differential evolution.

Implements the anchor search of Zlocha et al., "Improving RetinaNet for CT
Lesion Detection with Dense Masks from Weak RECIST Labels" (MICCAI 2019),
Sec. 2.1: one ratio is fixed to 1:1, the others come in reciprocal pairs
``(r, 1/r)``, and differential evolution (Storn & Price, via
:func:`scipy.optimize.differential_evolution`) searches two ratio values and
three scales so that every ground-truth box overlaps its best anchor as much
as possible. Paper bounds: scales in ``[0.4, 1.6]``, the two ratios in
``[1, 2]`` and ``[2, 4]``; anchor sizes 32..512 (P3-P7). The paper found
scales 0.425, 0.540, 0.680 and ratios 3.27:1, 1.78:1, 1:1, 1:1.78, 1:3.27.

Conventions (mmdet's :class:`AnchorGenerator` and keras-retinanet's):
``ratio = height / width``; an anchor of size ``s``, scale ``k`` and ratio
``r`` has ``w = s * k / sqrt(r)`` and ``h = s * k * sqrt(r)``; anchors are
ordered by level, ratio, scale (``scale_major=True``). Boxes are compared by
width and height only, both centred at the same point (the authors' tool's
default), with widths ``x2 - x1`` (mmdet's convention).

Objectives (minimised), with ``u_i`` the best-anchor IoU of box ``i``, as
the authors' public tool: ``'iou'``, ``1 - mean(u)``; ``'ce'``,
``mean(-log(u))``; ``'focal'`` (the default), ``mean(-(1 - u)**2 *
log(u))``; ``u`` is clipped to ``[1e-12, 1]`` before the log.
"""
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log
from scipy.optimize import differential_evolution

from .anchor_config import (PAPER_RATIOS, PAPER_SCALES, PYRAMIDS,  # noqa: F401
                            RETINANET_RATIOS, RETINANET_SCALES,
                            RETINANET_SIZES, AnchorConfig, AnchorFitStats,
                            evaluate_anchors)
from .anchor_iou import (  # noqa: F401
    _CHUNK_ELEMENTS, OBJECTIVES, ArrayLike, anchor_shapes, best_anchor_iou,
    best_anchor_iou_batched, boxes_to_wh, centered_iou, objective_from_iou,
    ratios_from_pairs)
from .anchor_snippet import _fmt, format_anchor_config  # noqa: F401

#: Search bounds of the paper (Sec. 2.1).
PAPER_RATIO_BOUNDS: Tuple[Tuple[float, float], ...] = ((1.0, 2.0), (2.0, 4.0))
PAPER_SCALE_BOUNDS: Tuple[float, float] = (0.4, 1.6)


class _DEObjective:
    """Picklable objective for :func:`differential_evolution`.

    Accepts one candidate ``(D,)`` or a population ``(D, S)`` (``vectorized``
    mode) where ``x = (r_1, .., r_P, s_1, .., s_K)``; uses
    :func:`best_anchor_iou_batched` in chunks of candidates to bound memory.
    """

    def __init__(self, box_wh: np.ndarray, sizes: Sequence[float],
                 num_ratio_values: int, objective: str) -> None:
        self.box_wh = box_wh
        self.sizes = np.asarray(sizes, dtype=np.float64)
        self.num_ratio_values = num_ratio_values
        self.objective = objective
        self.num_candidates = 0

    def ratios_scales(self, cand: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``(S, 2P + 1)`` ratios and ``(S, K)`` scales of ``(S, D)``."""
        r = cand[:, :self.num_ratio_values]
        ratios = np.concatenate([1 / r, np.ones((len(cand), 1)), r], axis=1)
        return ratios, cand[:, self.num_ratio_values:]

    def __call__(self, x: np.ndarray) -> Union[float, np.ndarray]:
        single = x.ndim == 1
        cand = x[None, :] if single else x.T  # (S, D)
        ratios, scales = self.ratios_scales(cand)
        per_cand = 4 * scales.shape[1] * self.box_wh.shape[0]
        chunk = max(1, _CHUNK_ELEMENTS // per_cand)
        out = np.empty(len(cand))
        for i in range(0, len(cand), chunk):
            best = best_anchor_iou_batched(self.box_wh, self.sizes,
                                           ratios[i:i + chunk],
                                           scales[i:i + chunk])
            out[i:i + chunk] = objective_from_iou(best, self.objective)
        self.num_candidates += len(cand)
        return float(out[0]) if single else out


@dataclass
class AnchorOptimResult:
    """Result of :meth:`DEAnchorOptimizer.optimize`.

    Attributes:
        anchors (AnchorConfig): the optimised anchors (rounded values, i.e.
            exactly what :meth:`AnchorConfig.to_generator_cfg` writes).
        stats (AnchorFitStats): their statistics on the boxes.
        objective (str): the objective minimised.
        fun (float): its value for ``anchors``.
        x (np.ndarray): raw optimum ``(r_1, .., r_P, s_1, .., s_K)``.
        nit (int): generations run.
        nfev (int): candidates evaluated (a vectorised call counts its
            whole population).
        time_s (float): wall time of the search.
        success (bool): scipy's convergence flag.
        message (str): scipy's message.
        history (list[float]): best objective after each generation.
    """
    anchors: AnchorConfig
    stats: AnchorFitStats
    objective: str
    fun: float
    x: np.ndarray
    nit: int
    nfev: int
    time_s: float
    success: bool
    message: str
    history: List[float] = field(default_factory=list)


@dataclass
class DEAnchorOptimizer:
    """Differential-evolution search of anchor ratios and scales.

    Zlocha et al., MICCAI 2019, Sec. 2.1 (module doc). The search space is
    ``(r_1, .., r_P, s_1, .., s_K)``: ``P`` free ratios, each giving the
    pair ``r``, ``1/r`` besides the fixed 1:1, and ``K`` shared scales.

    Args:
        sizes (Sequence[float]): anchor size per pyramid level (mmdet
            ``base_sizes``). Defaults to 32..512.
        strides (Sequence[int]): level strides, only carried into the
            config. Defaults to 8..128 (P3-P7).
        objective (str): ``'focal'`` (default), ``'ce'`` or ``'iou'``.
        ratio_bounds (Sequence[tuple]): one ``(low, high)`` per free ratio
            (paper: ``(1, 2)`` and ``(2, 4)``).
        num_scales (int): number of scales (paper: 3).
        scale_bounds (tuple): ``(low, high)`` of every scale (paper:
            ``(0.4, 1.6)``).
        popsize (int): scipy's population multiplier (population
            ``popsize * D``).
        maxiter (int): maximum number of generations.
        tol (float): scipy's relative convergence tolerance.
        seed (int, optional): seed of the search (``rng`` of scipy).
        workers (int): scipy ``workers``. 1 (default) evaluates the whole
            population per generation in one vectorised numpy call; ``> 1``
            or ``-1`` evaluates candidates in a process pool.
        polish (bool): refine the best candidate with L-BFGS-B at the end.
        decimals (int): the result is rounded to this many decimals before
            the final evaluation (the figures of the written config).
        log_interval (int): log the best candidate every this many
            generations (0: never).
        callback (callable, optional): called after every generation with
            ``(generation, best_x, best_fun)``; returning True stops.
    """

    sizes: Sequence[float] = RETINANET_SIZES
    strides: Sequence[int] = PYRAMIDS['P3-P7']['strides']
    objective: str = 'focal'
    ratio_bounds: Sequence[Tuple[float, float]] = PAPER_RATIO_BOUNDS
    num_scales: int = 3
    scale_bounds: Tuple[float, float] = PAPER_SCALE_BOUNDS
    popsize: int = 15
    maxiter: int = 1000
    tol: float = 0.01
    seed: Optional[int] = None
    workers: int = 1
    polish: bool = True
    decimals: int = 4
    log_interval: int = 10
    callback: Optional[Callable[[int, np.ndarray, float],
                                Optional[bool]]] = None

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f'Unknown objective {self.objective!r}; '
                             f'expected one of {OBJECTIVES}')
        if len(self.sizes) != len(self.strides):
            raise ValueError(f'{len(self.sizes)} sizes but '
                             f'{len(self.strides)} strides')
        for lo, hi in list(self.ratio_bounds):
            if not 1.0 <= lo < hi:
                raise ValueError(f'ratio bounds must satisfy 1 <= low < high'
                                 f' (the pair is r and 1/r), got {(lo, hi)}')
        if not 0 < self.scale_bounds[0] < self.scale_bounds[1]:
            raise ValueError(f'scale bounds must satisfy 0 < low < high, '
                             f'got {self.scale_bounds}')
        if self.num_scales < 1:
            raise ValueError(
                f'num_scales must be >= 1, got {self.num_scales}')
        if self.workers == 0:
            raise ValueError('workers must be >= 1 or -1 (all cores)')
        self.sizes = tuple(float(s) for s in self.sizes)
        self.strides = tuple(int(s) for s in self.strides)
        self.ratio_bounds = tuple(
            (float(lo), float(hi)) for lo, hi in self.ratio_bounds)
        self.scale_bounds = tuple(float(v) for v in self.scale_bounds)
        for name in ('num_scales', 'popsize', 'maxiter', 'workers',
                     'decimals', 'log_interval'):
            setattr(self, name, int(getattr(self, name)))
        self.tol, self.polish = float(self.tol), bool(self.polish)

    @property
    def bounds(self) -> List[Tuple[float, float]]:
        """Search bounds: the free ratios, then the scales."""
        return list(self.ratio_bounds) + [self.scale_bounds] * self.num_scales

    def anchors_from_x(self, x: ArrayLike) -> AnchorConfig:
        """Anchors of a search vector ``(r_1, .., r_P, s_1, .., s_K)``.

        Ratio values and scales are sorted ascending; nothing is rounded.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.size != len(self.bounds):
            raise ValueError(f'expected {len(self.bounds)} values, got '
                             f'{x.size}')
        p = len(self.ratio_bounds)
        return AnchorConfig(
            strides=self.strides,
            sizes=self.sizes,
            ratios=tuple(ratios_from_pairs(x[:p])),
            scales=tuple(float(s) for s in np.sort(x[p:])))

    def round_x(self, x: ArrayLike) -> np.ndarray:
        """Round a search vector to ``decimals`` (ratio values, scales)."""
        return np.round(np.asarray(x, dtype=np.float64), self.decimals)

    def optimize(self, box_wh: ArrayLike) -> AnchorOptimResult:
        """Search the anchors that best cover boxes of sizes ``box_wh``.

        Args:
            box_wh (ArrayLike): ``(N, 2)`` widths and heights (pixels of the
                network input, i.e. after the pipeline's resize).

        Returns:
            AnchorOptimResult
        """
        box_wh = np.asarray(box_wh, dtype=np.float64).reshape(-1, 2)
        if box_wh.shape[0] == 0:
            raise ValueError('No boxes to optimise the anchors on')
        if not np.all(np.isfinite(box_wh) & (box_wh > 0)):
            raise ValueError('Box widths and heights must be finite and > 0')
        func = _DEObjective(box_wh, self.sizes, len(self.ratio_bounds),
                            self.objective)
        history: List[float] = []

        def _callback(intermediate_result) -> Optional[bool]:
            best_x = np.asarray(intermediate_result.x)
            best_fun = float(intermediate_result.fun)
            history.append(best_fun)
            gen = len(history)
            if self.log_interval and gen % self.log_interval == 0:
                anchors = self.anchors_from_x(best_x)
                stats = evaluate_anchors(box_wh, anchors)
                print_log(
                    f'[anchor DE] generation {gen}/{self.maxiter}: '
                    f'{self.objective}={best_fun:.5f}, {stats.summary()}; '
                    f'ratios {_fmt(anchors.ratios)}, scales '
                    f'{_fmt(anchors.scales)}',
                    logger='current')
            if self.callback is not None and self.callback(
                    gen, best_x, best_fun):
                return True
            return None

        start = time.perf_counter()
        res = differential_evolution(
            func,
            bounds=self.bounds,
            strategy='best1bin',
            maxiter=self.maxiter,
            popsize=self.popsize,
            tol=self.tol,
            rng=self.seed,
            callback=_callback,
            polish=self.polish,
            init='latinhypercube',
            updating='deferred',
            workers=self.workers,
            vectorized=self.workers == 1)
        elapsed = time.perf_counter() - start

        x = self.round_x(res.x)
        anchors = self.anchors_from_x(x)
        stats = evaluate_anchors(box_wh, anchors)
        return AnchorOptimResult(
            anchors=anchors,
            stats=stats,
            objective=self.objective,
            fun=stats.objectives[self.objective],
            x=np.asarray(res.x, dtype=np.float64),
            nit=int(res.nit),
            nfev=int(func.num_candidates)
            if self.workers == 1 else int(res.nfev),
            time_s=elapsed,
            success=bool(res.success),
            message=str(res.message),
            history=history)
