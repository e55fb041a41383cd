# Copyright (c) mmlesion contributors. All rights reserved.
"""The lesion type of a 3D finding, for detectors that predict one.

The multi-type configs (e.g. ``elixirnet*_multitype.py``) classify boxes
into DeepLesion's eight coarse lesion types
(:data:`~mmlesion.datasets.dl_info.COARSE_LESION_TYPES`, Yan et al. 2018).
A finding stacks 2D boxes of several slices; its type is the one with the
largest summed score over its 2D boxes (a choice: the stacking itself
ignores labels, docs/protocols.md §2). Other detectors (one ``lesion``
class, or classes that are not these types, e.g. mmdet's COCO default of a model
built without a checkpoint) give no type.
"""
from typing import List, Optional, Sequence

import numpy as np

from mmlesion.datasets.dl_info import COARSE_LESION_TYPES


def lesion_type_classes(model) -> Optional[List[str]]:
    """The model's classes if they are DeepLesion lesion types, else None.

    Args:
        model (nn.Module): the detector (``dataset_meta['classes']``).

    Returns:
        list[str] | None: the class names by label.
    """
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = [str(c) for c in (meta.get('classes') or ())]
    if len(classes) > 1 and set(classes) <= set(COARSE_LESION_TYPES):
        return classes
    return None


def add_lesion_types(findings: List[dict],
                     slice_boxes: Sequence[np.ndarray],
                     slice_labels: Sequence[np.ndarray],
                     classes: Sequence[str],
                     tol: float = 1e-2) -> None:
    """Give every finding ``lesion_type`` (in place; see the module doc).

    Args:
        findings (list[dict]): findings with ``boxes_2d`` (slice, box as
            stacked, score).
        slice_boxes (Sequence[np.ndarray]): per slice the (n, 4) boxes the
            findings were stacked from.
        slice_labels (Sequence[np.ndarray]): per slice their (n,) labels.
        classes (Sequence[str]): class name of each label.
        tol (float): largest coordinate difference of a matching box (the
            findings' boxes are rounded).

    Raises:
        ValueError: a 2D box of a finding is not among its slice's boxes.
    """
    for f in findings:
        votes = np.zeros(len(classes))
        for item in f['boxes_2d']:
            z = item['slice']
            boxes = np.asarray(slice_boxes[z]).reshape(-1, 4)
            diff = np.abs(boxes - np.asarray(item['bbox'])).max(1) \
                if len(boxes) else np.zeros(0)
            if not len(diff) or diff.min() > tol:
                raise ValueError(f"finding {f['id']}: its box {item['bbox']}"
                                 f' is not a detection of slice {z}')
            votes[int(slice_labels[z][int(np.argmin(diff))])] += item['score']
        f['lesion_type'] = classes[int(np.argmax(votes))]
