# Copyright (c) mmlesion contributors. All rights reserved.
"""Coverage of cube lesions by cube anchors ``{z, y, x, d}`` (3D Aggregated
Faster R-CNN, Sec. III-B and IV-B).

The paper labels an anchor positive at IoU >= ``IoU+ = 0.5`` with a lesion
(Sec. IV-B). A lesion of diameter ``d`` is the cube of side ``d`` around
its centre; an anchor of size ``a`` on a level of stride ``s`` the cube of
side ``a`` around a cell centre ``s * (i + 0.5)``. Random training crops
make the lesion centre uniform relative to the anchor grids: this module
measures, per lesion, the fraction of centre positions (a regular grid over
one period of all levels) at which some anchor reaches the threshold, and
the centred best IoU (the lesion centred on an anchor).
"""
import csv
import math
from typing import List, NamedTuple, Sequence, Tuple, TypedDict

import numpy as np


def luna16_diameters(csv_path: str) -> np.ndarray:
    """The ``diameter_mm`` column of LUNA16's ``annotations.csv``.

    Args:
        csv_path (str): the CSV (header ``seriesuid, coordX, coordY,
            coordZ, diameter_mm``).

    Returns:
        np.ndarray: (N, ) diameters in mm, i.e. voxels of the 1 mm
        resampled scans the configs train on.
    """
    with open(csv_path, newline='') as f:
        rows = list(csv.DictReader(f))
    if not rows or 'diameter_mm' not in rows[0]:
        raise ValueError(f'{csv_path}: no diameter_mm column')
    return np.asarray([float(r['diameter_mm']) for r in rows], np.float64)


def _axis_distance(pos: np.ndarray, stride: int,
                   center_offset: float) -> np.ndarray:
    """Distance from ``pos`` to the nearest anchor centre of one axis."""
    rel = np.mod(pos - stride * center_offset, stride)
    return np.minimum(rel, stride - rel)


class CubeLesionCoverage(TypedDict):
    """Per lesion (lists in the order of the diameters): its
    ``diameter``, best ``centred_iou`` and ``frac_positions`` with an
    anchor at IoU >= the threshold."""
    diameter: List[float]
    centred_iou: List[float]
    frac_positions: List[float]


class CubeCoverage(TypedDict):
    """What :func:`cube_anchor_coverage` found (the JSON record of the
    3D coverage report)."""
    num_lesions: int
    iou_thr: float
    strides: List[int]
    sizes: List[List[float]]
    samples_per_axis: int
    period: int
    centred_ge_thr: int
    covered_everywhere: int
    covered_nowhere: int
    mean_frac_positions: float
    mean_best_iou: float
    per_lesion: CubeLesionCoverage


def cube_anchor_coverage(diameters: Sequence[float],
                         strides: Sequence[int],
                         sizes: Sequence[Sequence[float]],
                         iou_thr: float = 0.5,
                         samples_per_axis: int = 32,
                         center_offset: float = 0.5) -> CubeCoverage:
    """Best-anchor IoU of cube lesions over the positions of their centre.

    The nearest anchor centre of a level along each axis maximises each
    axis's overlap, hence the intersection and the IoU, so one anchor per
    (level, size) is checked at each position.

    Args:
        diameters (Sequence[float]): lesion diameters (voxels).
        strides (Sequence[int]): level strides.
        sizes (Sequence[Sequence[float]]): anchor diameters per level.
        iou_thr (float): positive IoU (the paper's IoU+ 0.5).
        samples_per_axis (int): centre positions per axis over one period
            (the least common multiple of the strides), at cell midpoints.
        center_offset (float): anchor centre within a cell (0.5).

    Returns:
        CubeCoverage: ``num_lesions``; ``centred_ge_thr`` (lesions whose best
        centred IoU reaches ``iou_thr``); ``covered_everywhere`` /
        ``covered_nowhere`` (lesions with an anchor at IoU >= ``iou_thr``
        at every / no sampled position); ``mean_frac_positions`` (the mean
        over lesions of the fraction of positions with one);
        ``mean_best_iou`` (mean over lesions and positions);
        ``per_lesion`` (``diameter``, ``centred_iou``, ``frac_positions``
        lists) and the settings.
    """
    d = np.asarray(diameters, np.float64).reshape(-1)
    if not len(d):
        raise ValueError('cube_anchor_coverage: no lesions')
    if len(strides) != len(sizes):
        raise ValueError(f'{len(strides)} strides but {len(sizes)} size '
                         f'lists')
    period = math.lcm(*[int(s) for s in strides])
    n = int(samples_per_axis)
    pos = (np.arange(n) + 0.5) * period / n
    anchors = [(float(a), _axis_distance(pos, int(s), center_offset))
               for s, level in zip(strides, sizes) for a in level]
    centred = np.zeros(len(d))
    frac = np.zeros(len(d))
    mean_best = np.zeros(len(d))
    for k, dk in enumerate(d):
        best = np.zeros((n, n, n))
        for a, dist in anchors:
            # overlap of two segments of lengths dk and a, centres dist apart
            ov = np.clip(np.minimum(min(dk, a), (dk + a) / 2 - dist), 0,
                         None)
            inter = ov[:, None, None] * ov[None, :, None] * ov[None, None, :]
            np.maximum(best, inter / (dk**3 + a**3 - inter), out=best)
            centred[k] = max(centred[k], min(dk, a)**3 / max(dk, a)**3)
        frac[k] = float((best >= iou_thr).mean())
        mean_best[k] = float(best.mean())
    return CubeCoverage(
        num_lesions=int(len(d)),
        iou_thr=float(iou_thr),
        strides=[int(s) for s in strides],
        sizes=[[float(a) for a in level] for level in sizes],
        samples_per_axis=n,
        period=int(period),
        centred_ge_thr=int((centred >= iou_thr).sum()),
        covered_everywhere=int((frac >= 1.0).sum()),
        covered_nowhere=int((frac <= 0.0).sum()),
        mean_frac_positions=round(float(frac.mean()), 4),
        mean_best_iou=round(float(mean_best.mean()), 4),
        per_lesion=CubeLesionCoverage(
            diameter=[round(float(v), 4) for v in d],
            centred_iou=[round(float(v), 4) for v in centred],
            frac_positions=[round(float(v), 4) for v in frac]))


class CubeSizes(NamedTuple):
    """Cube anchor sizes per level (each sorted, 2 decimals) and their
    mean best centred IoU."""
    sizes: Tuple[Tuple[float, ...], ...]
    mean_iou: float


def optimise_cube_sizes(diameters: Sequence[float],
                        strides: Sequence[int],
                        sizes: Sequence[Sequence[float]],
                        seed: int = 0) -> CubeSizes:
    """Cube anchor sizes fitted to lesions by differential evolution.

    The search of :class:`~.de_anchor_optimizer.DEAnchorOptimizer` for
    cubes: the number of sizes per level is kept, each searched between
    0.75 and 3 times its level's stride, minimising the focal objective
    of the best centred IoU (``min(d, a)^3 / max(d, a)^3``) over the
    lesions.

    Args:
        diameters (Sequence[float]): lesion diameters (voxels).
        strides (Sequence[int]): level strides.
        sizes (Sequence[Sequence[float]]): the starting sizes per level
            (their count per level is kept).
        seed (int): seed of the search.

    Returns:
        tuple: the sizes per level (each sorted, 2 decimals) and their mean
        best centred IoU.
    """
    from scipy.optimize import differential_evolution

    from .anchor_iou import objective_from_iou
    d = np.asarray(diameters, np.float64).reshape(-1, 1)
    if not len(d):
        raise ValueError('optimise_cube_sizes: no lesions')
    counts = [len(level) for level in sizes]
    bounds = [(0.75 * s, 3. * s) for s, n in zip(strides, counts)
              for _ in range(n)]

    def best_iou(a):
        a = np.asarray(a, np.float64).reshape(1, -1)
        return (np.minimum(d, a)**3 / np.maximum(d, a)**3).max(1)

    result = differential_evolution(
        lambda a: objective_from_iou(best_iou(a), 'focal'), bounds,
        rng=seed, tol=0.01, maxiter=300, polish=False)
    out, k = [], 0
    for n in counts:
        out.append(tuple(sorted(round(float(v), 2)
                                for v in result.x[k:k + n])))
        k += n
    flat = [v for level in out for v in level]
    return CubeSizes(tuple(out), round(float(best_iou(flat).mean()), 4))
