# Copyright (c) mmlesion contributors. All rights reserved.
"""Lesion subsets of a LUNA16-rule evaluation (the 3D Aggregated Faster
R-CNN paper's DeepLesion Tables V and VI).

A subset filters the **ground truth only** (marks, scans and excluded
findings stay), so a mark on a lesion outside the subset is a false positive,
as in the DeepLesion protocol's breakdowns (docs/protocols.md §1 "Subsets",
which the paper follows for Table VI).
"""
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from ..froc import DIAMETER_BINS, LESION_TYPE_NAMES, diameter_subsets
from .io import LUNA16Findings


class LesionSubset(NamedTuple):
    """One subset of the lesions.

    Attributes:
        key (str): metric-key suffix, ``type_<name>`` or ``size_<bin>``.
        label (str): e.g. ``'lung'``, ``'<10 mm'``.
        keep (np.ndarray): ``(N,)`` bool over the findings.
    """
    key: str
    label: str
    keep: np.ndarray


def select_findings(findings: LUNA16Findings,
                    keep: np.ndarray) -> LUNA16Findings:
    """The findings where ``keep`` is True.

    Args:
        findings (LUNA16Findings): ``N`` findings.
        keep (np.ndarray): ``(N,)`` bool.

    Returns:
        LUNA16Findings: the kept ones, in order.

    Raises:
        ValueError: ``keep`` of another length.
    """
    keep = np.asarray(keep, dtype=bool).reshape(-1)
    if len(keep) != len(findings.diameter_mm):
        raise ValueError(f'select_findings: {len(keep)} flags for '
                         f'{len(findings.diameter_mm)} findings')
    return LUNA16Findings(findings.seriesuids[keep],
                          findings.xyz[keep].reshape(-1, 3),
                          findings.diameter_mm[keep])


def below_diameter(findings: LUNA16Findings,
                   max_diameter_mm: float) -> np.ndarray:
    """Which findings are smaller than ``max_diameter_mm`` (48 mm for the
    "*" rows of the paper's Tables V and VI).

    Args:
        findings (LUNA16Findings): the lesions.
        max_diameter_mm (float): the first diameter removed.

    Returns:
        np.ndarray: ``(N,)`` bool, ``diameter_mm < max_diameter_mm``.
    """
    return np.asarray(findings.diameter_mm, np.float64) < float(
        max_diameter_mm)


def lesion_subsets(lesion_types: Optional[Sequence[int]],
                   diameters_mm: Sequence[float]) -> List[LesionSubset]:
    """The lesion-type (DeepLesion's coarse types 1..8 of
    :data:`~mmlesion.evaluation.functional.froc.LESION_TYPE_NAMES`; -1 =
    unknown, in none) and size subsets
    (:data:`~mmlesion.evaluation.functional.froc.DIAMETER_BINS`) of the
    DeepLesion tables.

    Args:
        lesion_types (Sequence[int], optional): per finding; None, or all
            unknown: no type subsets.
        diameters_mm (Sequence[float]): per finding.

    Returns:
        list[LesionSubset]: type subsets (when known), then size subsets.
    """
    diam = np.asarray(diameters_mm, np.float64).reshape(-1)
    out: List[LesionSubset] = []
    if lesion_types is not None:
        types = np.asarray(lesion_types, np.int64).reshape(-1)
        if len(types) != len(diam):
            raise ValueError(f'lesion_subsets: {len(types)} types for '
                             f'{len(diam)} diameters')
        if (types > 0).any():
            out += [LesionSubset(f'type_{name.replace(" ", "_")}', name,
                                 types == code)
                    for code, name in LESION_TYPE_NAMES.items()]
    masks: Dict[str, List[np.ndarray]] = diameter_subsets([diam])
    out += [LesionSubset(f'size_{key}', label, masks[key][0])
            for key, label in DIAMETER_BINS]
    return out
