# Copyright (c) mmlesion contributors. All rights reserved.
"""Do the attention gates look at the lesions? An after-run check of the
:class:`~mmlesion.methods.retinanet_lesion.models.AttentionGate` maps of a trained model.

Improved RetinaNet (Zlocha et al. 2019, Sec. 2.3) gates feature responses
so that the detector attends to lesions. For every gate of the model this
probe collects its attention map ``alpha`` (through a forward hook) over the
images of a split and compares ``alpha`` at pixels inside the ground-truth
boxes with ``alpha`` outside them:

* ``mean_in`` / ``mean_out``: mean attention inside / outside the boxes,
* ``auc``: the probability that a pixel inside a box gets a higher
  attention than a pixel outside (Mann-Whitney U / (n_in * n_out), ties
  counted half; 0.5 = the map does not tell lesions from the rest, 1 =
  every lesion pixel above every other pixel).

A pixel of a map of size (h, w) for an input of size (H, W) is inside a box
when its centre ``((x + 0.5) * W / w, (y + 0.5) * H / h)`` is.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from scipy.stats import mannwhitneyu
from torch import Tensor

from mmlesion.methods.retinanet_lesion.models.attention_gate import AttentionGate


def boxes_to_mask(boxes: Tensor, size: Tuple[int, int],
                  input_size: Tuple[int, int]) -> Tensor:
    """Pixels of an (h, w) map whose centres lie inside any box.

    Args:
        boxes (Tensor): (G, 4) boxes (x1, y1, x2, y2) in input coordinates.
        size (tuple[int, int]): (h, w) of the map.
        input_size (tuple[int, int]): (H, W) of the network input.

    Returns:
        Tensor: (h, w) bool mask.
    """
    h, w = size
    sy, sx = input_size[0] / h, input_size[1] / w
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * sy
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * sx
    mask = torch.zeros(h, w, dtype=torch.bool)
    for x1, y1, x2, y2 in boxes.float().cpu().tolist():
        mask |= (((ys >= y1) & (ys <= y2))[:, None]
                 & ((xs >= x1) & (xs <= x2))[None, :])
    return mask


class AttentionGateProbe:
    """Collect the attention maps of every gate of ``model`` while it runs.

    Use as a context manager around the forward passes (the hooks are
    removed on exit), and call :meth:`update` after each batch.

    Args:
        model (torch.nn.Module): a model containing
            :class:`AttentionGate` modules.

    Raises:
        ValueError: ``model`` has no attention gate.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.gates = {
            name: m
            for name, m in model.named_modules()
            if isinstance(m, AttentionGate)
        }
        if not self.gates:
            raise ValueError(f'{type(model).__name__} has no AttentionGate')
        self._maps: Dict[str, Tensor] = {}
        self._values: Dict[str, Tuple[List[np.ndarray], List[np.ndarray]]] = {
            name: ([], [])
            for name in self.gates
        }
        self._handles = []

    def __enter__(self) -> 'AttentionGateProbe':
        for name, gate in self.gates.items():
            self._handles.append(
                gate.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, name: str):

        def hook(module, inputs, outputs) -> None:
            self._maps[name] = outputs[1].detach()

        return hook

    def update(self, batch_gt_bboxes: Sequence[Tensor],
               input_size: Tuple[int, int]) -> None:
        """Split the maps of the last forward pass into inside / outside.

        Args:
            batch_gt_bboxes (Sequence[Tensor]): per image (G, 4) boxes in
                input coordinates.
            input_size (tuple[int, int]): (H, W) of the network input.

        Raises:
            RuntimeError: no gate ran since the last update.
        """
        if not self._maps:
            raise RuntimeError('AttentionGateProbe.update: no attention map '
                               'was recorded (run the model inside `with '
                               'probe:`)')
        for name, alpha in self._maps.items():
            inside, outside = self._values[name]
            for i, boxes in enumerate(batch_gt_bboxes):
                a = alpha[i, 0].float().cpu()
                mask = boxes_to_mask(boxes, tuple(a.shape), input_size)
                inside.append(a[mask].numpy())
                outside.append(a[~mask].numpy())
        self._maps = {}

    def summary(self) -> Dict[str, Dict[str, float]]:
        """Per gate (module name): ``mean_in``, ``mean_out``, ``auc``,
        ``pixels_in``, ``pixels_out`` (NaN where a side is empty)."""
        out = {}
        for name, (inside, outside) in self._values.items():
            a_in = np.concatenate(inside) if inside else np.zeros(0)
            a_out = np.concatenate(outside) if outside else np.zeros(0)
            auc = float('nan')
            if a_in.size and a_out.size:
                u = mannwhitneyu(a_in, a_out, alternative='two-sided')
                auc = float(u.statistic) / (a_in.size * a_out.size)
            out[name] = dict(
                mean_in=float(a_in.mean()) if a_in.size else float('nan'),
                mean_out=float(a_out.mean()) if a_out.size else float('nan'),
                auc=auc,
                pixels_in=int(a_in.size),
                pixels_out=int(a_out.size))
        return out
