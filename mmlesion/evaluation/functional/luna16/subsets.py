# Copyright (c) mmlesion contributors. All rights reserved.
"""Lesion subsets of a LUNA16-rule evaluation (the 3D Aggregated Faster
R-CNN paper's DeepLesion Tables V and VI).

A subset filters the **ground truth only**: the marks, the scans and the
excluded findings stay as they are, so a mark on a lesion outside the
subset is a false positive, as in the DeepLesion protocol's breakdowns
(docs/protocols.md §1 "Subsets", which the paper follows for Table VI: "As
in [7]"). The same rule removes the very large lesions of Table V's "*"
rows (:func:`below_diameter`).
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
    """Which findings are smaller than ``max_diameter_mm``.

    The 3D Aggregated Faster R-CNN paper removes "very large lesions (>= 48
    mm)" from training, and reports DeepLesion "with and without" them
    ("*" rows of Tables V and VI); the diameter is the lesion's
    ``{X, Y, Z, Diameter}`` one.

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
    """The lesion-type and size subsets of the DeepLesion tables.

    Types are DeepLesion's coarse types (1..8, in the order of
    :data:`~mmlesion.evaluation.functional.froc.LESION_TYPE_NAMES`; -1 =
    unknown, in no type subset); sizes the bins ``<10``, ``10-30``
    (inclusive) and ``>30`` mm of
    :data:`~mmlesion.evaluation.functional.froc.DIAMETER_BINS`.

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
