# Copyright (c) mmlesion contributors. All rights reserved.
"""The subsets of :class:`~mmlesion.evaluation.metrics.FROCMetric`'s
breakdowns (docs/protocols.md §1 "Subsets"): which lesions, and for the
class-aware type breakdown which detections, each subset curve uses."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from .froc import (DIAMETER_BINS, LESION_TYPE_NAMES, diameter_subsets,
                   lesion_type_subsets)

#: (key, label, per-image ground-truth masks, per-image detection masks or
#: None for all detections)
BreakdownGroup = Tuple[str, str, List[np.ndarray], Optional[List[np.ndarray]]]


def froc_breakdown_groups(results: Sequence[dict],
                          valid: Sequence[np.ndarray],
                          breakdowns: bool = True,
                          type_classes: bool = False,
                          metric_name: str = 'FROCMetric'
                          ) -> List[BreakdownGroup]:
    """The breakdown subsets of a FROC evaluation (as
    :class:`~mmlesion.evaluation.metrics.FROCMetric` describes them):
    ``type_<name>`` and ``size_<bin>`` (ground truth filtered, a group
    skipped with a log line when no instance carries its field) and, with
    ``type_classes``, ``typecls_<name>`` (type ``k`` against the detections
    labelled ``k - 1``).

    Args:
        results (Sequence[dict]): per image, as ``FROCMetric.process``
            stores them.
        valid (Sequence[np.ndarray]): per image, the non-ignored instances.
        breakdowns (bool): the type and size breakdowns.
        type_classes (bool): the class-aware type breakdown.
        metric_name (str): named in errors and log lines.

    Returns:
        list[tuple]: ``(key, label, gt_masks, det_masks)`` per subset;
        ``det_masks`` is None where every detection is kept.

    Raises:
        ValueError: ``type_classes`` on data without ``lesion_type``.
    """
    groups: List[BreakdownGroup] = []
    has_types = any(r['has_types'] for r in results)
    types = [r['gt_types'][v] for r, v in zip(results, valid)]
    if breakdowns:
        if has_types:
            groups += [(f'type_{name.replace(" ", "_")}', name, masks, None)
                       for name, masks in lesion_type_subsets(types).items()]
        else:
            print_log(f'{metric_name}: no instance has "lesion_type"; '
                      'lesion-type breakdown skipped', logger='current')
        if any(r['has_diams'] for r in results):
            subsets = diameter_subsets(
                [r['gt_long_mm'][v] for r, v in zip(results, valid)])
            groups += [(f'size_{key}', label, subsets[key], None)
                       for key, label in DIAMETER_BINS]
        else:
            print_log(f'{metric_name}: no instance has "diameters_mm"; size '
                      'breakdown skipped', logger='current')
    if type_classes:
        if not has_types:
            raise ValueError(
                f"{metric_name}: type_classes=True but no instance has "
                "'lesion_type' (a multi-type dataset, label_mode="
                "'coarse_type', is needed)")
        subsets = lesion_type_subsets(types)
        for code, name in LESION_TYPE_NAMES.items():
            groups.append((f'typecls_{name.replace(" ", "_")}',
                           f'{name}, detections labelled {name}',
                           subsets[name],
                           [r['det_labels'] == code - 1 for r in results]))
    return groups
