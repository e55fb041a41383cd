# Copyright (c) mmlesion contributors. All rights reserved.
"""The score thresholds a validation's FROC chose at its FP rates
(:meth:`~mmlesion.evaluation.functional.froc.FROCMatch.thresholds_at_fp`),
as a checkpoint records them: :class:`OperatingPoints`."""
from dataclasses import dataclass, field, replace
from typing import Any, List, Mapping, Optional

import numpy as np

from mmlesion.utils.writing.field_record import FieldRecord


@dataclass(frozen=True)
class OperatingPoints(FieldRecord):
    """Score thresholds at FP rates chosen on a validation, as a checkpoint
    records them (``meta[OPERATING_POINTS_KEY]``) for inference to keep the
    findings of a validated operating point.

    Args:
        fp_unit (str): what one unit of the FP denominator was
            (``'image'``: a 2D key slice; ``'sub-volume'``: a 3D volume).
        fp_rates (list[float]): the FP rates, per ``fp_unit``.
        thresholds (list[float]): the score threshold of each rate.
        sensitivities (list[float]): the validation's sensitivity at each
            rate.
        metric (str): the metric that chose them (its prefix).
        split (str, optional): the validation data (its annotation
            file(s)).
        epoch (int, optional): the epoch validated.
        iter (int, optional): the iteration validated.
    """
    fp_unit: str
    fp_rates: List[float]
    thresholds: List[float]
    sensitivities: List[float] = field(default_factory=list)
    metric: str = 'froc'
    split: Optional[str] = None
    epoch: Optional[int] = None
    iter: Optional[int] = None

    def rate_index(self, fp_rate: float) -> int:
        """The index of ``fp_rate`` in :attr:`fp_rates`.

        Raises:
            ValueError: the rate is not recorded (naming those that are).
        """
        for i, rate in enumerate(self.fp_rates):
            if np.isclose(rate, fp_rate):
                return i
        raise ValueError(
            f'no operating point at {fp_rate:g} FPs per {self.fp_unit} is '
            'recorded; the validation recorded '
            + ', '.join(f'{r:g}' for r in self.fp_rates))

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> 'OperatingPoints':
        """The record of :meth:`to_dict`.

        Raises:
            ValueError: a malformed record (naming the field).
        """
        try:
            out = cls(**record)
            rates = [float(v) for v in out.fp_rates]
            thrs = [float(v) for v in out.thresholds]
        except (TypeError, ValueError) as err:
            raise ValueError(f'malformed operating points {dict(record)!r}: '
                             f'{err}') from None
        if len(rates) != len(thrs):
            raise ValueError(f'operating points: {len(rates)} fp_rates but '
                             f'{len(thrs)} thresholds')
        return replace(out, fp_rates=rates, thresholds=thrs)


#: Key of :class:`OperatingPoints` in a checkpoint's ``meta``.
OPERATING_POINTS_KEY = 'mmlesion_operating_points'
