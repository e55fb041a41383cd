# Copyright (c) mmlesion contributors. All rights reserved.
"""The IoU of two sets of 2D boxes given as numpy arrays (LENS mining,
Sec. V, and its FPR patches)."""
import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of x1y1x2y2 boxes (mmdet's ``bbox_overlaps``)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), dtype=np.float32)
    return bbox_overlaps(torch.from_numpy(a), torch.from_numpy(b)).numpy()
