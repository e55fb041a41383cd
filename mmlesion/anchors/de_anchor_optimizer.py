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

Conventions (the same as mmdet's :class:`AnchorGenerator`)
-----------------------------------------------------------
* ``ratio = height / width``; an anchor of size ``s`` (``base_sizes`` in
  mmdet), scale ``k`` and ratio ``r`` has ``w = s * k / sqrt(r)`` and
  ``h = s * k * sqrt(r)``. keras-retinanet (the paper's code) uses the same
  definition, so ratios/scales transfer unchanged.
* Anchor order: level, then ratio, then scale (mmdet's ``scale_major=True``).
* Boxes are compared by their width and height only, both boxes centred at
  the same point ("base anchors", what the authors' tool does by default):
  the best a detector can reach when an anchor centre falls on the box
  centre. Widths are ``x2 - x1`` (mmdet's convention, what its IoU assigner
  sees), not the legacy ``x2 - x1 + 1`` of the DeepLesion evaluation.

Objectives
----------
The paper only says "maximise the overlap between the lesion bounding-box
and the best anchor". With ``u_i`` the best-anchor IoU of box ``i`` over all
anchors of all pyramid sizes, the selectable objectives (minimised) follow
the authors' public tool (anchor-optimization, modes ``avg``/``ce``/
``focal``):

* ``'iou'``: ``1 - mean(u)`` (mean best-anchor IoU, the literal paper text);
* ``'ce'``: ``mean(-log(u))`` (cross-entropy with target 1, heavily punishes
  boxes with almost no matching anchor);
* ``'focal'``: ``mean(-(1 - u)**2 * log(u))`` (focal weighting, gamma = 2:
  well matched boxes barely count, poorly matched ones dominate). This is
  the authors' default and ours.

``u`` is clipped to ``[1e-12, 1]`` before the log.
"""
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log
from scipy.optimize import differential_evolution

#: Objectives understood by :func:`objective_from_iou`.
OBJECTIVES: Tuple[str, ...] = ('iou', 'ce', 'focal')

#: Anchor sizes of RetinaNet (Lin et al.) and of the paper (Sec. 2.1).
RETINANET_SIZES: Tuple[int, ...] = (32, 64, 128, 256, 512)

#: Pyramid presets: strides of the levels the heads run on and the anchor
#: sizes. 'P2-P6' is the improved model (Sec. 2.2 shifts the heads to
#: P2-P6); the paper states that the anchor sizes remain 32..512.
PYRAMIDS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    'P3-P7': dict(strides=(8, 16, 32, 64, 128), sizes=RETINANET_SIZES),
    'P2-P6': dict(strides=(4, 8, 16, 32, 64), sizes=RETINANET_SIZES),
}

#: Search bounds of the paper (Sec. 2.1).
PAPER_RATIO_BOUNDS: Tuple[Tuple[float, float], ...] = ((1.0, 2.0), (2.0, 4.0))
PAPER_SCALE_BOUNDS: Tuple[float, float] = (0.4, 1.6)

#: mmdet's RetinaNet default: ratios 1:2, 1:1, 2:1, scales 2^(i/3).
RETINANET_RATIOS: Tuple[float, ...] = (0.5, 1.0, 2.0)
RETINANET_SCALES: Tuple[float, ...] = (1.0, 2**(1 / 3), 2**(2 / 3))

#: The optimum reported in the paper (Sec. 2.1; sizes 32..512).
PAPER_RATIOS: Tuple[float, ...] = (1 / 3.27, 1 / 1.78, 1.0, 1.78, 3.27)
PAPER_SCALES: Tuple[float, ...] = (0.425, 0.540, 0.680)

_EPS = 1e-12
# elements of one (candidates, scales, 2, 2, boxes) array per chunk
_CHUNK_ELEMENTS = 1 << 17

ArrayLike = Union[np.ndarray, Sequence]


def ratios_from_pairs(ratio_values: Sequence[float]) -> List[float]:
    """Expand the free ratio values into the full, ascending ratio list.

    Args:
        ratio_values (Sequence[float]): values ``r_k >= 1`` (e.g. the two
            searched ratios); each gives the pair ``r_k`` and ``1 / r_k``.

    Returns:
        list[float]: ``[1 / r_max, ..., 1.0, ..., r_max]``, i.e.
        ``2 * len(ratio_values) + 1`` ratios (height / width).
    """
    values = sorted(float(r) for r in ratio_values)
    return [1.0 / r for r in reversed(values)] + [1.0] + values


def anchor_shapes(sizes: Sequence[float], ratios: Sequence[float],
                  scales: Sequence[float]) -> np.ndarray:
    """Widths and heights of all base anchors of all pyramid sizes.

    Same formula and order as
    ``AnchorGenerator.gen_single_level_base_anchors`` (``scale_major=True``).

    Args:
        sizes (Sequence[float]): anchor size per level (mmdet
            ``base_sizes``).
        ratios (Sequence[float]): height / width ratios.
        scales (Sequence[float]): multipliers of the size.

    Returns:
        np.ndarray: ``(len(sizes) * len(ratios) * len(scales), 2)`` float64
        array of ``(w, h)``.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    h_ratios = np.sqrt(np.asarray(ratios, dtype=np.float64))
    scales = np.asarray(scales, dtype=np.float64)
    ws = sizes[:, None, None] * (1 / h_ratios)[None, :, None] * \
        scales[None, None, :]
    hs = sizes[:, None, None] * h_ratios[None, :, None] * \
        scales[None, None, :]
    return np.stack([ws.reshape(-1), hs.reshape(-1)], axis=-1)


def centered_iou(box_wh: ArrayLike, anchor_wh: ArrayLike) -> np.ndarray:
    """IoU of boxes and anchors sharing the same centre, all pairs at once.

    Args:
        box_wh (ArrayLike): ``(N, 2)`` widths and heights of the boxes.
        anchor_wh (ArrayLike): ``(A, 2)`` or batched ``(S, A, 2)`` widths and
            heights of the anchors.

    Returns:
        np.ndarray: ``(N, A)`` or ``(S, N, A)`` IoU.
    """
    box_wh = np.asarray(box_wh, dtype=np.float64)
    anchor_wh = np.asarray(anchor_wh, dtype=np.float64)
    bw = box_wh[:, 0, None]  # (N, 1)
    bh = box_wh[:, 1, None]
    aw = anchor_wh[..., None, :, 0]  # (..., 1, A)
    ah = anchor_wh[..., None, :, 1]
    inter = np.minimum(bw, aw) * np.minimum(bh, ah)
    union = bw * bh + aw * ah - inter
    return inter / np.maximum(union, _EPS)


def best_anchor_iou(box_wh: ArrayLike, anchor_wh: ArrayLike) -> np.ndarray:
    """IoU of every box with its best anchor (over all levels and shapes).

    Args:
        box_wh (ArrayLike): ``(N, 2)`` widths and heights of the boxes.
        anchor_wh (ArrayLike): ``(A, 2)`` or ``(S, A, 2)`` anchor shapes.

    Returns:
        np.ndarray: ``(N,)`` or ``(S, N)``.
    """
    return centered_iou(box_wh, anchor_wh).max(axis=-1)


def objective_from_iou(best_iou: np.ndarray,
                       objective: str = 'focal') -> np.ndarray:
    """Reduce best-anchor IoUs to the objective to minimise.

    Args:
        best_iou (np.ndarray): ``(..., N)`` best-anchor IoU per box.
        objective (str): ``'iou'`` (``1 - mean``), ``'ce'``
            (``mean(-log u)``) or ``'focal'`` (``mean(-(1-u)^2 log u)``);
            see the module docstring.

    Returns:
        np.ndarray: the objective, reduced over the last axis.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f'Unknown objective {objective!r}; expected one of '
                         f'{OBJECTIVES}')
    u = np.clip(best_iou, _EPS, 1.0)
    if objective == 'iou':
        return 1.0 - u.mean(axis=-1)
    if objective == 'ce':
        return (-np.log(u)).mean(axis=-1)
    return (-(1.0 - u)**2 * np.log(u)).mean(axis=-1)


def boxes_to_wh(bboxes: ArrayLike, min_size: float = 1e-3) -> np.ndarray:
    """Convert ``(N, 4)`` ``x1, y1, x2, y2`` boxes to ``(N, 2)`` sizes.

    Args:
        bboxes (ArrayLike): boxes, ``w = x2 - x1`` (mmdet convention).
        min_size (float): boxes narrower or lower than this raise.

    Returns:
        np.ndarray: ``(N, 2)`` float64 ``(w, h)``.
    """
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    wh = bboxes[:, 2:] - bboxes[:, :2]
    bad = np.flatnonzero(~np.all(np.isfinite(wh) & (wh >= min_size), axis=1))
    if bad.size:
        raise ValueError(
            f'{bad.size} box(es) with a non-finite or < {min_size} px side, '
            f'e.g. index {bad[0]}: {bboxes[bad[0]].tolist()}')
    return wh


@dataclass(frozen=True)
class AnchorConfig:
    """A set of anchors as mmdet's :class:`AnchorGenerator` builds them.

    Attributes:
        strides (tuple[int]): stride of each pyramid level.
        sizes (tuple[float]): anchor size (mmdet ``base_sizes``) per level.
        ratios (tuple[float]): height / width ratios.
        scales (tuple[float]): multipliers of the sizes.
    """
    strides: Tuple[int, ...]
    sizes: Tuple[float, ...]
    ratios: Tuple[float, ...]
    scales: Tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.sizes):
            raise ValueError(f'{len(self.strides)} strides but '
                             f'{len(self.sizes)} sizes')
        for name in ('sizes', 'ratios', 'scales'):
            values = getattr(self, name)
            if not values or min(values) <= 0:
                raise ValueError(f'{name} must be non-empty and positive, '
                                 f'got {values}')

    def shapes(self) -> np.ndarray:
        """``(A, 2)`` widths and heights (see :func:`anchor_shapes`)."""
        return anchor_shapes(self.sizes, self.ratios, self.scales)

    def to_generator_cfg(self) -> dict:
        """The ``anchor_generator`` config that reproduces these anchors.

        ``octave_base_scale`` and ``scales_per_octave`` are set to None so
        that the dict can be merged into a config inheriting mmdet's
        RetinaNet (which sets them; mmdet refuses both them and ``scales``).
        """
        return dict(
            type='AnchorGenerator',
            strides=[int(s) for s in self.strides],
            base_sizes=[_num(s) for s in self.sizes],
            ratios=[float(r) for r in self.ratios],
            scales=[float(s) for s in self.scales],
            octave_base_scale=None,
            scales_per_octave=None)

    @classmethod
    def from_generator_cfg(cls, cfg: dict) -> 'AnchorConfig':
        """Read an mmdet ``AnchorGenerator`` config dict.

        Handles ``octave_base_scale``/``scales_per_octave`` (RetinaNet) and
        explicit ``scales``; ``base_sizes`` default to the strides as in
        mmdet. The sizes returned are ``base_sizes`` (explicit scales) or,
        for octave scales, ``base_sizes * octave_base_scale`` with scales
        ``2**(i / scales_per_octave)``: both give mmdet's anchors exactly.

        Args:
            cfg (dict): e.g. ``model.bbox_head.anchor_generator``.

        Returns:
            AnchorConfig
        """
        gen_type = cfg.get('type', 'AnchorGenerator')
        if gen_type not in ('AnchorGenerator', 'mmdet.AnchorGenerator'):
            raise ValueError(f'Only AnchorGenerator configs are supported, '
                             f'got type={gen_type!r}')
        strides = []
        for s in cfg['strides']:
            if isinstance(s, (tuple, list)):
                if s[0] != s[1]:
                    raise ValueError(f'Non-square stride {s} not supported')
                s = s[0]
            strides.append(int(s))
        base_sizes = cfg.get('base_sizes') or strides
        octave = cfg.get('octave_base_scale')
        per_octave = cfg.get('scales_per_octave')
        if cfg.get('scales') is not None:
            sizes = [float(b) for b in base_sizes]
            scales = [float(s) for s in cfg['scales']]
        elif octave is not None and per_octave is not None:
            sizes = [float(b) * octave for b in base_sizes]
            scales = [2**(i / per_octave) for i in range(per_octave)]
        else:
            raise ValueError(f'AnchorGenerator config {cfg} has neither '
                             'scales nor octave_base_scale/scales_per_octave')
        return cls(
            strides=tuple(strides),
            sizes=tuple(sizes),
            ratios=tuple(float(r) for r in cfg['ratios']),
            scales=tuple(scales))

    @classmethod
    def retinanet_default(cls,
                          pyramid: str = 'P3-P7',
                          strides: Optional[Sequence[int]] = None,
                          sizes: Optional[Sequence[float]] = None
                          ) -> 'AnchorConfig':
        """mmdet's RetinaNet anchors (ratios 0.5/1/2, scales 2^(i/3)).

        Args:
            pyramid (str): a key of :data:`PYRAMIDS`.
            strides, sizes: override the preset.
        """
        preset = PYRAMIDS[pyramid]
        return cls(
            strides=tuple(strides or preset['strides']),
            sizes=tuple(float(s) for s in (sizes or preset['sizes'])),
            ratios=RETINANET_RATIOS,
            scales=RETINANET_SCALES)


def _num(x: float) -> Union[int, float]:
    """Write integral floats as ints in configs."""
    return int(x) if float(x).is_integer() else float(x)


@dataclass(frozen=True)
class AnchorFitStats:
    """How well a set of anchors covers a set of boxes.

    Attributes:
        num_boxes (int): number of boxes.
        mean_iou (float): mean best-anchor IoU.
        num_below (int): boxes whose best-anchor IoU < ``iou_thr``.
        iou_thr (float): the threshold (0.5: RetinaNet's positive IoU).
        objectives (dict): the value of every objective of
            :data:`OBJECTIVES`.
    """
    num_boxes: int
    mean_iou: float
    num_below: int
    iou_thr: float
    objectives: Dict[str, float]

    @property
    def frac_below(self) -> float:
        """Fraction of boxes whose best anchor IoU is below the threshold."""
        return self.num_below / max(self.num_boxes, 1)

    def summary(self) -> str:
        """One line: mean IoU and the number (%) of badly matched boxes."""
        return (f'mean best-anchor IoU {self.mean_iou:.4f}, boxes with best '
                f'IoU < {self.iou_thr:g}: {self.num_below} / '
                f'{self.num_boxes} ({100 * self.frac_below:.2f} %)')


def evaluate_anchors(box_wh: ArrayLike,
                     anchors: Union[AnchorConfig, np.ndarray],
                     iou_thr: float = 0.5) -> AnchorFitStats:
    """Best-anchor statistics of ``anchors`` on boxes of sizes ``box_wh``.

    Args:
        box_wh (ArrayLike): ``(N, 2)`` box widths and heights.
        anchors (AnchorConfig | np.ndarray): anchors, or ``(A, 2)`` shapes.
        iou_thr (float): threshold counted in ``num_below``.

    Returns:
        AnchorFitStats
    """
    box_wh = np.asarray(box_wh, dtype=np.float64).reshape(-1, 2)
    shapes = anchors.shapes() if isinstance(anchors, AnchorConfig) else anchors
    best = best_anchor_iou(box_wh, shapes)
    return AnchorFitStats(
        num_boxes=int(box_wh.shape[0]),
        mean_iou=float(best.mean()) if best.size else float('nan'),
        num_below=int((best < iou_thr).sum()),
        iou_thr=float(iou_thr),
        objectives={o: float(objective_from_iou(best, o))
                    for o in OBJECTIVES})


def best_anchor_iou_batched(box_wh: ArrayLike, sizes: ArrayLike,
                            ratios: ArrayLike,
                            scales: ArrayLike) -> np.ndarray:
    """Best-anchor IoU of every box for many anchor sets at once (exact).

    Equals ``best_anchor_iou(box_wh, anchor_shapes(sizes, ratios[s],
    scales[s]))`` for every candidate ``s`` (the tests check it against the
    all-pairs computation), but evaluates only 4 anchors per box and scale
    instead of ``len(sizes) * len(ratios)``:

    * for a fixed anchor shape scaled by ``t``, the centred IoU grows while
      the anchor lies inside the box, is ``t*c / (B + t^2*d - t*c)`` when it
      sticks out on one side only (maximum at equal areas) and decreases
      once it contains the box: it is unimodal in ``t`` with its peak where
      the anchor area equals the box area, whatever the ratio. The best
      pyramid size for box area ``B`` and scale ``k`` is therefore one of the
      two sizes around ``sqrt(B) / k``;
    * for a fixed anchor area, the intersection (hence the IoU) is
      non-decreasing in the ratio up to the box's ``h / w`` and
      non-increasing after it, so the best ratio is one of the two ratios
      around the box's ratio.

    Args:
        box_wh (ArrayLike): ``(N, 2)`` box widths and heights.
        sizes (ArrayLike): ``(L,)`` anchor sizes of the pyramid.
        ratios (ArrayLike): ``(S, R)`` height / width ratios per candidate.
        scales (ArrayLike): ``(S, K)`` scales per candidate.

    Returns:
        np.ndarray: ``(S, N)`` float64.
    """
    box_wh = np.asarray(box_wh, dtype=np.float64).reshape(-1, 2)
    sizes = np.sort(np.asarray(sizes, dtype=np.float64).reshape(-1))
    log_r = np.sort(np.log(np.atleast_2d(np.asarray(ratios, np.float64))), 1)
    scales = np.atleast_2d(np.asarray(scales, dtype=np.float64))
    num_cand, num_scales = scales.shape
    if log_r.shape[0] != num_cand:
        raise ValueError(f'{log_r.shape[0]} ratio rows but {num_cand} scale '
                         'rows')
    n = box_wh.shape[0]
    w, h = box_wh[:, 0], box_wh[:, 1]
    area = w * h
    log_g = 0.5 * np.log(area)
    log_rho = np.log(h / w)
    num_levels, num_ratios = sizes.size, log_r.shape[1]
    # the two pyramid sizes around the equal-area size, (S, K, 2, N)
    idx = np.searchsorted(
        np.log(sizes), log_g[None, None, :] - np.log(scales)[:, :, None])
    side = np.empty((num_cand, num_scales, 2, n))
    side[:, :, 0] = sizes[np.maximum(idx - 1, 0)]
    side[:, :, 1] = sizes[np.minimum(idx, num_levels - 1)]
    side *= scales[:, :, None, None]
    # the two ratios around the box ratio, as sqrt(ratio), (S, 2, N)
    h_ratio = np.exp(0.5 * log_r)
    pos = (log_r[:, :, None] < log_rho[None, None, :]).sum(axis=1)  # (S, N)
    sel = np.stack([
        np.take_along_axis(h_ratio, np.maximum(pos - 1, 0), axis=1),
        np.take_along_axis(h_ratio, np.minimum(pos, num_ratios - 1), axis=1)
    ],
                   axis=1)
    aw = side[:, :, :, None, :] / sel[:, None, None, :, :]  # (S, K, 2, 2, N)
    ah = side[:, :, :, None, :] * sel[:, None, None, :, :]
    np.minimum(aw, w, out=aw)
    np.minimum(ah, h, out=ah)
    inter = np.multiply(aw, ah, out=aw)
    side *= side
    side += area
    union = side[:, :, :, None, :] - inter
    np.maximum(union, _EPS, out=union)
    inter /= union
    return inter.reshape(num_cand, -1, n).max(axis=1)


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


class DEAnchorOptimizer:
    """Differential-evolution search of anchor ratios and scales.

    Zlocha et al., MICCAI 2019, Sec. 2.1 (see the module docstring for the
    conventions and objectives). The search space is
    ``(r_1, .., r_P, s_1, .., s_K)``: ``P`` free ratios, each giving the
    pair ``r``, ``1/r`` besides the fixed 1:1 (``2P + 1`` ratios), and ``K``
    scales shared by all levels.

    Args:
        sizes (Sequence[float]): anchor size per pyramid level (mmdet
            ``base_sizes``). Defaults to 32..512.
        strides (Sequence[int]): level strides, only carried into the
            config (the centred-IoU objective does not depend on them).
            Defaults to 8..128 (P3-P7).
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
        seed (int, optional): seed of the search (``rng`` of scipy); the same
            seed and settings give the same result.
        workers (int): scipy ``workers``. 1 (default) evaluates the whole
            population per generation in one vectorised numpy call
            (``vectorized=True``, ``updating='deferred'``), the fastest on a
            small machine; ``> 1`` or ``-1`` evaluates candidates in a
            process pool (``updating='deferred'``, required by scipy).
        polish (bool): refine the best candidate with L-BFGS-B at the end.
        decimals (int): the result is rounded to this many decimals before
            the final evaluation, so the reported figures are those of the
            written config.
        log_interval (int): log the best candidate every this many
            generations (mmengine ``print_log``, logger ``'current'``); 0
            disables logging.
        callback (callable, optional): called after every generation with
            ``(generation, best_x, best_fun)``; returning True stops.
    """

    def __init__(
        self,
        sizes: Sequence[float] = RETINANET_SIZES,
        strides: Sequence[int] = PYRAMIDS['P3-P7']['strides'],
        objective: str = 'focal',
        ratio_bounds: Sequence[Tuple[float, float]] = PAPER_RATIO_BOUNDS,
        num_scales: int = 3,
        scale_bounds: Tuple[float, float] = PAPER_SCALE_BOUNDS,
        popsize: int = 15,
        maxiter: int = 1000,
        tol: float = 0.01,
        seed: Optional[int] = None,
        workers: int = 1,
        polish: bool = True,
        decimals: int = 4,
        log_interval: int = 10,
        callback: Optional[Callable[[int, np.ndarray, float],
                                    Optional[bool]]] = None
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f'Unknown objective {objective!r}; expected one '
                             f'of {OBJECTIVES}')
        if len(sizes) != len(strides):
            raise ValueError(f'{len(sizes)} sizes but {len(strides)} strides')
        for lo, hi in list(ratio_bounds):
            if not 1.0 <= lo < hi:
                raise ValueError(f'ratio bounds must satisfy 1 <= low < high'
                                 f' (the pair is r and 1/r), got {(lo, hi)}')
        if not 0 < scale_bounds[0] < scale_bounds[1]:
            raise ValueError(f'scale bounds must satisfy 0 < low < high, '
                             f'got {scale_bounds}')
        if num_scales < 1:
            raise ValueError(f'num_scales must be >= 1, got {num_scales}')
        if workers == 0:
            raise ValueError('workers must be >= 1 or -1 (all cores)')
        self.sizes = tuple(float(s) for s in sizes)
        self.strides = tuple(int(s) for s in strides)
        self.objective = objective
        self.ratio_bounds = tuple(
            (float(lo), float(hi)) for lo, hi in ratio_bounds)
        self.num_scales = int(num_scales)
        self.scale_bounds = (float(scale_bounds[0]), float(scale_bounds[1]))
        self.popsize = int(popsize)
        self.maxiter = int(maxiter)
        self.tol = float(tol)
        self.seed = seed
        self.workers = int(workers)
        self.polish = bool(polish)
        self.decimals = int(decimals)
        self.log_interval = int(log_interval)
        self.callback = callback

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
        vectorized = self.workers == 1
        history: List[float] = []
        state = dict(generation=0, stopped=False)

        def _callback(intermediate_result) -> Optional[bool]:
            state['generation'] += 1
            gen = state['generation']
            best_x = np.asarray(intermediate_result.x)
            best_fun = float(intermediate_result.fun)
            history.append(best_fun)
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
                state['stopped'] = True
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
            vectorized=vectorized)
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


def _fmt(values: Sequence[float], digits: int = 3) -> str:
    return '[' + ', '.join(f'{v:.{digits}f}' for v in values) + ']'


def _ratio_expr(r: float, decimals: int) -> str:
    """``r`` itself, or ``1 / v`` when ``r`` is exactly the reciprocal of
    ``v`` rounded to ``decimals`` (how :func:`ratios_from_pairs` made it)."""
    if r < 1.0:
        inv = round(1.0 / r, decimals)
        if 1.0 / inv == r:
            return f'1 / {inv!r}'
    return repr(float(r))


def _generator_lines(anchors: AnchorConfig, decimals: int,
                     indent: str) -> List[str]:
    """``type=... octave_base_scale=None)`` lines of an anchor generator."""
    cfg = anchors.to_generator_cfg()
    return [
        f"{indent}type='AnchorGenerator',",
        f"{indent}strides={cfg['strides']!r},",
        f"{indent}base_sizes={cfg['base_sizes']!r},",
        f'{indent}ratios=[' +
        ', '.join(_ratio_expr(r, decimals) for r in anchors.ratios) + '],',
        f'{indent}scales=[' + ', '.join(repr(float(s))
                                        for s in anchors.scales) + '],',
        f'{indent}octave_base_scale=None,',
        f'{indent}scales_per_octave=None)',
    ]


def format_anchor_snippet(anchors: AnchorConfig,
                          header: Sequence[str] = (),
                          decimals: int = 4) -> str:
    """Python config snippet defining ``anchor_generator = dict(...)``.

    The values are written so that executing the snippet gives exactly the
    floats of ``anchors`` (reciprocal ratios as ``1 / r``), hence mmdet's
    :class:`AnchorGenerator` built from it reproduces the optimised anchor
    widths and heights (up to its float32 arithmetic).

    Args:
        anchors (AnchorConfig): the anchors.
        header (Sequence[str]): comment lines written on top.
        decimals (int): decimals the values were rounded to.

    Returns:
        str: the file content.
    """
    lines = [f'# {h}' if h else '#' for h in header]
    lines += ['anchor_generator = dict(']
    lines += _generator_lines(anchors, decimals, '    ') + ['']
    return '\n'.join(lines)


def format_anchor_config(anchors: AnchorConfig,
                         base: str,
                         head: str = 'bbox_head',
                         header: Sequence[str] = (),
                         decimals: int = 4) -> str:
    """A config inheriting ``base`` whose anchor generator is ``anchors``.

    Only ``model.{head}.anchor_generator`` is replaced (every other setting,
    e.g. ``center_offset``, comes from ``base``); ``octave_base_scale`` and
    ``scales_per_octave`` are set to None because mmdet refuses them next to
    explicit ``scales``.

    Args:
        anchors (AnchorConfig): the anchors (strides of the target).
        base (str): ``_base_`` of the written config (a path relative to
            the written file, or ``mmdet::...``).
        head (str): ``'bbox_head'`` or ``'rpn_head'``.
        header (Sequence[str]): comment lines written on top (provenance).
        decimals (int): decimals the values were rounded to.

    Returns:
        str: the config file content.
    """
    lines = [f'# {h}' if h else '#' for h in header]
    lines += [
        f'_base_ = {base!r}', '', 'model = dict(', f'    {head}=dict(',
        '        anchor_generator=dict('
    ]
    gen = _generator_lines(anchors, decimals, ' ' * 12)
    gen[-1] += '))'
    return '\n'.join(lines + gen + [''])


def anchor_config_from_snippet(text: str) -> dict:
    """Execute a snippet of :func:`format_anchor_snippet`; return the dict.

    Args:
        text (str): the snippet.

    Returns:
        dict: its ``anchor_generator``.
    """
    scope: dict = {}
    exec(compile(text, '<anchor snippet>', 'exec'), {}, scope)
    if 'anchor_generator' not in scope:
        raise ValueError('snippet defines no anchor_generator')
    return scope['anchor_generator']
