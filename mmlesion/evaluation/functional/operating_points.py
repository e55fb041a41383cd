# Copyright (c) mmlesion contributors. All rights reserved.
"""The score thresholds a validation's FROC chose at its FP rates
(:meth:`~mmlesion.evaluation.functional.froc.FROCMatch.thresholds_at_fp`),
as a checkpoint records them: :class:`OperatingPoints`."""
import math
import numbers
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence

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
        lesion_steps (dict, optional): for ``fp_unit='scan'``: the
            stacking's lesion steps chosen with the thresholds
            (``max_gap``, ``min_slices``, ``contain_thr``, ``join_gap``,
            ``merge_iou``, ``merge_inside``, and ``score_thr``, the 2D score
            below which boxes are not stacked; the last two absent from
            older records; :class:`~mmlesion.
            evaluation.functional.box_stacking.StackSettings`), which the
            thresholds hold for.
        scans (int, optional): for ``fp_unit='scan'``: the validation
            scans (absent from older records).
        scan_z_mm (float, optional): their mean extent along z (mm): a
            rate per scan holds for scans of about that length.
    """
    fp_unit: str
    fp_rates: List[float]
    thresholds: List[float]
    sensitivities: List[float] = field(default_factory=list)
    metric: str = 'froc'
    split: Optional[str] = None
    epoch: Optional[int] = None
    iter: Optional[int] = None
    lesion_steps: Optional[Dict[str, Any]] = None
    scans: Optional[int] = None
    scan_z_mm: Optional[float] = None

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
        """The record of :meth:`to_dict`, checked: ``fp_unit`` one of
        :data:`FP_UNITS`; distinct finite ``fp_rates`` >= 0; one threshold
        per rate, each in the score range [0, 1] (up to
        :data:`MAX_THRESHOLD`: keep nothing) and none above that of a
        lower rate (a higher FP rate keeps at least the same findings);
        ``sensitivities`` none or one per rate, in [0, 1]. Thresholds are
        NaN only all together, where the validation had no detections
        (:meth:`~mmlesion.evaluation.functional.froc.FROCMatch.
        thresholds_at_fp`; every sensitivity 0).

        Raises:
            ValueError: a malformed record: ``malformed operating points:
                <field>: <what is wrong>``.
        """
        if not isinstance(record, Mapping):
            raise _malformed('the record', f'a {type(record).__name__}, not '
                             'a mapping of fields')
        names = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in record if k not in names)
        if unknown:
            raise _malformed(unknown[0], 'not a field of the record')
        for name in ('fp_unit', 'fp_rates', 'thresholds'):
            if name not in record:
                raise _malformed(name, 'missing')
        if record['fp_unit'] not in FP_UNITS:
            raise _malformed('fp_unit', f"{record['fp_unit']!r}, not one of "
                             + ', '.join(map(repr, FP_UNITS)))
        rates = _numbers(record, 'fp_rates')
        thrs = _numbers(record, 'thresholds', allow_nan=True)
        sens = _numbers(record, 'sensitivities') if record.get(
            'sensitivities') else []
        for i, rate in enumerate(rates):
            if rate < 0 or rates.index(rate) != i:
                raise _malformed('fp_rates', f'{rate!r} is negative or '
                                 'repeated')
        for name, values in (('thresholds', thrs), ('sensitivities', sens)):
            if values and len(values) != len(rates):
                raise _malformed(name, f'{len(values)} for {len(rates)} '
                                 'fp_rates (one per rate)')
        for i, value in enumerate(sens):
            if not 0 <= value <= 1:
                raise _malformed(f'sensitivities[{i}]',
                                 f'{value!r} is outside [0, 1]')
        nan = [math.isnan(t) for t in thrs]
        if any(nan) and not (all(nan) and not any(sens)):
            raise _malformed(f'thresholds[{nan.index(True)}]',
                             'NaN (NaN only where the validation had no '
                             'detections: every threshold, sensitivity 0)')
        for i, thr in enumerate(thrs):
            if not 0 <= thr <= MAX_THRESHOLD and not nan[i]:
                raise _malformed(f'thresholds[{i}]', f'{thr!r} is outside '
                                 'the score range [0, 1]')
        order = sorted(range(len(rates)), key=rates.__getitem__)
        for low, high in zip(order, order[1:]):
            if thrs[high] > thrs[low]:
                raise _malformed(
                    f'thresholds[{high}]',
                    f'{thrs[high]!r} at {rates[high]:g} FPs is above '
                    f'{thrs[low]!r} at {rates[low]:g} FPs (a higher FP '
                    'rate keeps at least the same findings)')
        for name, kinds in (('metric', (str, )), ('split', (str, NoneType)),
                            ('epoch', (int, NoneType)),
                            ('iter', (int, NoneType)),
                            ('scans', (int, NoneType))):
            value = record.get(name)
            if name in record and (not isinstance(value, kinds)
                                   or isinstance(value, bool)):
                raise _malformed(name, f'{value!r}, not ' + ' or '.join(
                    'None' if k is NoneType else k.__name__ for k in kinds))
        for name in ('scans', 'scan_z_mm'):
            value = record.get(name)
            if value is not None and (not isinstance(value, numbers.Real)
                                      or isinstance(value, bool)
                                      or not 0 < value < math.inf):
                raise _malformed(name, f'{value!r}, not None or a number '
                                 '> 0')
        steps = record.get('lesion_steps')
        if steps is not None:
            if not isinstance(steps, Mapping) or not set(
                    LESION_STEP_NAMES) - set(OPTIONAL_LESION_STEPS) <= set(
                        steps) <= set(LESION_STEP_NAMES):
                raise _malformed('lesion_steps', f'{steps!r}, not a mapping '
                                 'of ' + ', '.join(LESION_STEP_NAMES))
            for name, value in steps.items():
                if value is not None and (not isinstance(
                        value, numbers.Real) or isinstance(value, bool)
                                          or not 0 <= value < 1e6):
                    raise _malformed(f'lesion_steps.{name}',
                                     f'{value!r}, not None or a number >= 0')
            steps = dict(steps)
        return replace(cls(**record), fp_rates=rates, thresholds=thrs,
                       sensitivities=sens, lesion_steps=steps)


NoneType = type(None)
#: What one unit of a record's FP denominator can be: a 2D validation
#: image (:class:`~mmlesion.evaluation.metrics.FROCMetric`) or a (sub-)
#: volume (:class:`~mmlesion.evaluation.metrics.FROC3DMetric`).
FP_UNITS = ('image', 'sub-volume', 'scan')
#: The names of :attr:`OperatingPoints.lesion_steps`.
LESION_STEP_NAMES = ('max_gap', 'min_slices', 'contain_thr', 'join_gap',
                     'merge_iou', 'merge_inside', 'score_thr')
#: Lesion steps a record may lack (made before they were chosen with the
#: point): the run keeps its own setting.
OPTIONAL_LESION_STEPS = ('score_thr', 'merge_inside')
#: The highest threshold a record holds: just above a best score of 1
#: (where even the best detection exceeds the rate: keep nothing).
MAX_THRESHOLD = float(np.nextafter(1., 2.))


def _malformed(name: str, problem: str) -> ValueError:
    return ValueError(f'malformed operating points: {name}: {problem}')


def _numbers(record: Mapping[str, Any], name: str,
             allow_nan: bool = False) -> List[float]:
    """``record[name]`` as a non-empty list of finite floats (NaN too with
    ``allow_nan``), or :func:`_malformed` naming the entry."""
    values = record[name]
    if isinstance(values, (str, bytes)) or not isinstance(
            values, Sequence) or not values:
        raise _malformed(name, f'{values!r}, not a non-empty list of '
                         'numbers')
    out = []
    for i, value in enumerate(values):
        number = (float(value) if isinstance(value, numbers.Real)
                  and not isinstance(value, bool) else None)
        if number is None or math.isinf(number) or (
                math.isnan(number) and not allow_nan):
            raise _malformed(f'{name}[{i}]', f'{value!r}, not a finite '
                             'number')
        out.append(number)
    return out


#: Key of :class:`OperatingPoints` in a checkpoint's ``meta``.
OPERATING_POINTS_KEY = 'mmlesion_operating_points'
#: Key of the per-scan :class:`OperatingPoints` (``fp_unit='scan'``) in a
#: checkpoint's ``meta`` (``tools/eval_whole_scan.py --calibrate``).
SCAN_OPERATING_POINTS_KEY = 'mmlesion_scan_operating_points'
