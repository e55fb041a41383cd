# Copyright (c) mmlesion contributors. All rights reserved.
"""Copies of CPU tensors on the calling thread: torch runs a copy of more
than 32768 elements on all its threads, which on a busy machine wait to be
scheduled far longer than one thread copies (by numpy, or by torch in
slabs under the grain).
"""
from typing import Optional

import numpy as np
import torch
from torch import Tensor

#: torch's parallel grain (``at::internal::GRAIN_SIZE``): an element-wise
#: op on at most this many elements runs on the calling thread.
GRAIN_SIZE = 32768


def numpy_view(tensor: Tensor) -> Optional[np.ndarray]:
    """``tensor``'s memory as a numpy array (no copy), or None where numpy
    cannot view it (not on the CPU, requiring grad, bfloat16)."""
    if tensor.device.type != 'cpu' or tensor.requires_grad:
        return None
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError):  # bfloat16, conjugate or negative bit
        return None


def copy_into(dst: Tensor, src: Tensor) -> Tensor:
    """``dst.copy_(src)`` on the calling thread where numpy can view both
    (same shape and dtype), else by torch; returns ``dst``."""
    d, s = numpy_view(dst), numpy_view(src)
    if d is None or s is None or d.shape != s.shape or d.dtype != s.dtype:
        return dst.copy_(src)
    np.copyto(d, s)
    return dst


def fill(dst: Tensor, value: float) -> Tensor:
    """``dst.fill_(value)`` on the calling thread where numpy can view
    ``dst``, else by torch; returns ``dst``."""
    d = numpy_view(dst)
    if d is None:
        return dst.fill_(value)
    d.fill(value)
    return dst


def flatten(tensor: Tensor) -> Tensor:
    """``tensor.reshape(-1)``: a view of a contiguous tensor, else a copy
    made on the calling thread: by torch, in slabs along the first axis of
    at most :data:`GRAIN_SIZE` elements each (faster than numpy's copy of a
    permuted array, whose innermost axis may be short).

    Args:
        tensor (Tensor): any tensor.

    Returns:
        Tensor: 1D, the values in ``tensor``'s index order.
    """
    # a view; a copy on this thread anyway; or not on the CPU
    if tensor.is_contiguous() or tensor.dim() == 0 or \
            tensor.numel() <= GRAIN_SIZE or tensor.device.type != 'cpu' \
            or tensor.requires_grad:
        return tensor.reshape(-1)
    out = torch.empty(tensor.shape, dtype=tensor.dtype, device=tensor.device)
    step = max(GRAIN_SIZE // max(tensor[0].numel(), 1), 1)
    for start in range(0, len(tensor), step):
        out[start:start + step].copy_(tensor[start:start + step])
    return out.view(-1)
