# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 findings and candidates from short rows, for tests."""
from typing import Sequence

import numpy as np

from mmlesion.evaluation.functional import luna16 as L


def _columns(rows: Sequence[Sequence]):
    return (np.array([r[0] for r in rows], dtype=object),
            np.array([r[1:4] for r in rows], dtype=np.float64).reshape(-1, 3),
            np.array([r[4] for r in rows], dtype=np.float64))


def findings(rows: Sequence[Sequence]) -> 'L.LUNA16Findings':
    """Nodules (or excluded findings) from ``(uid, x, y, z, diameter_mm)``
    rows."""
    return L.LUNA16Findings(*_columns(rows))


def cands(rows: Sequence[Sequence]) -> 'L.LUNA16Candidates':
    """Candidates from ``(uid, x, y, z, probability)`` rows."""
    return L.LUNA16Candidates(*_columns(rows))
