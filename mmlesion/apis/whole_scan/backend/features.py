# Copyright (c) mmlesion contributors. All rights reserved.
"""The detector's convolutions in the backend: its ``extract_feat``
(backbone and neck) and, where the detector's ``predict`` is mmdet's own
(it hands ``extract_feat``'s output to the head as it is), the
convolutions of its dense head (``rpn_head`` of a two-stage detector,
``bbox_head`` of a one-stage one): the ``forward`` that gives the head's
per-level maps (:class:`ExportedPart`), exported (:func:`_export_part`),
run (:class:`FeaturePart`) and checked against torch
(:func:`check_part`). The dense head's decoding and NMS run in torch."""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .export import (EXPORT_FORMAT, EXPORT_HW, PROBE_BHW, _onnx_export,
                     _with_metadata)
from .session import BackendUnavailable, Session, _check_outputs


class ExportedPart(nn.Module):
    """The exportable part of a detector as one module: the features, then
    each of the dense head's outputs level by level (flat).

    Args:
        model (nn.Module): an mmdet detector.
        head (nn.Module, optional): its dense head (None: features only).
    """

    def __init__(self, model: nn.Module, head: Optional[nn.Module]):
        super().__init__()
        self.model = model
        self.head = head
        # in the model's mode: the exporter restores this module's mode,
        # which a new module's default (training) would set on the model
        self.train(model.training)

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        feats = tuple(self.model.extract_feat(inputs))
        if self.head is None:
            return feats
        outs = self.head(feats)
        return feats + tuple(t for level_maps in outs for t in level_maps)


@dataclass
class Layout:
    """How the flat outputs of an :class:`ExportedPart` split.

    Args:
        in_channels (int): the input's channels.
        num_feats (int): feature levels.
        head_outputs (int): the head's outputs (0: no head), each a list of
            ``num_feats`` maps.
        constants (list[str]): ``file:line`` of each Python condition on a
            tensor the trace turned into a constant (a shape check, most
            often).
    """
    in_channels: int
    num_feats: int
    head_outputs: int = 0
    constants: List[str] = field(default_factory=list)

    def _split(self, flat: Sequence[Tensor]
              ) -> Tuple[Tuple[Tensor, ...], Optional[tuple]]:
        """``(features, head outputs or None)`` of the flat outputs."""
        n = self.num_feats
        feats = tuple(flat[:n])
        if not self.head_outputs:
            return feats, None
        return feats, tuple(list(flat[n + k * n:n + (k + 1) * n])
                            for k in range(self.head_outputs))


class FeaturePart:
    """The exported features (and dense head maps) run by a
    :class:`Session`.

    Args:
        session (Session): the export's session.
        layout (Layout): its outputs.
    """

    def __init__(self, session: Session, layout: Layout):
        self.session = session
        self.layout = layout

    def __call__(self, inputs: Tensor
                 ) -> Tuple[Tuple[Tensor, ...], Optional[tuple]]:
        flat = self.session.run([inputs.detach().cpu().numpy()])
        return self.layout._split([torch.from_numpy(a) for a in flat])


def dense_head_of(model: nn.Module) -> Optional[nn.Module]:
    """The dense head exported with the features: a two-stage detector's
    ``rpn_head``, a one-stage one's ``bbox_head``, where the detector's
    ``predict`` is mmdet's own (it hands ``extract_feat``'s output to the
    head as it is); else None."""
    from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
    for base, name in ((TwoStageDetector, 'rpn_head'),
                       (SingleStageDetector, 'bbox_head')):
        if isinstance(model, base) and type(model).predict is base.predict:
            return getattr(model, name, None)
    return None


def input_channels(model: nn.Module) -> int:
    """The input channels of the detector: its backbone's ``num_slices`` or
    ``in_channels`` where it names them (a backbone that groups the slices),
    else those of its first convolution.

    Raises:
        BackendUnavailable: none found, or a 3D convolution first.
    """
    backbone = getattr(model, 'backbone', model)
    for name in ('num_slices', 'in_channels'):
        value = getattr(backbone, name, None)
        if isinstance(value, int) and value > 0:
            return value
    for module in backbone.modules():
        if isinstance(module, nn.Conv3d):
            raise BackendUnavailable(
                'its backbone starts with a 3D convolution (not a 2.5D '
                'detector of 2D slices)')
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    raise BackendUnavailable('its backbone has no 2D convolution')


def _flat_outputs(part: ExportedPart, inputs: Tensor) -> List[Tensor]:
    """The part's outputs on ``inputs`` in torch, checked to be a flat
    tuple of tensors."""
    flat = part(inputs)
    if not all(isinstance(t, Tensor) for t in flat):
        raise BackendUnavailable(
            'its extract_feat or head gives more than tensors')
    return list(flat)


def _layout(model: nn.Module, head: Optional[nn.Module],
            in_channels: int) -> Layout:
    """The layout of the part's outputs, from a small input in torch (a
    head whose outputs are not per-level lists of maps is left out)."""
    x = torch.zeros(1, in_channels, *EXPORT_HW)
    feats = model.extract_feat(x)
    if not (isinstance(feats, (tuple, list))
            and all(isinstance(t, Tensor) for t in feats)):
        raise BackendUnavailable(
            f'{type(model).__name__}.extract_feat gives no tuple of '
            'feature maps')
    heads = 0
    if head is not None:
        outs = head(tuple(feats))
        if isinstance(outs, tuple) and all(
                isinstance(o, (list, tuple)) and len(o) == len(feats)
                and all(isinstance(t, Tensor) for t in o) for o in outs):
            heads = len(outs)
    return Layout(in_channels, len(feats), heads)


def _export_part(model: nn.Module, digest: str = '') -> Tuple[bytes, Layout]:
    """Export the detector's part (:class:`ExportedPart`) to ONNX.

    Args:
        model (nn.Module): the detector, in eval mode, on the CPU.
        digest (str): its :meth:`~.export.BackendKey.digest`, kept in the file.

    Returns:
        tuple: the ONNX model (its format, key and layout in its metadata)
        and the :class:`Layout`.

    Raises:
        BackendUnavailable: the part cannot be exported (the reason).
    """
    in_channels = input_channels(model)
    head = dense_head_of(model)
    with torch.no_grad():
        layout = _layout(model, head, in_channels)
        part = ExportedPart(model, head if layout.head_outputs else None)
        dummy = torch.zeros(1, in_channels, *EXPORT_HW)
        count = len(_flat_outputs(part, dummy))
        names = [f'out{i}' for i in range(count)]
        axes = {name: {0: 'batch', 2: f'h{i}', 3: f'w{i}'}
                for i, name in enumerate(names)}
        axes['inputs'] = {0: 'batch', 2: 'height', 3: 'width'}
        data, layout.constants = _onnx_export(part, (dummy, ), ['inputs'],
                                              names, axes)
    return _with_metadata(data, EXPORT_FORMAT, digest,
                          layout.__dict__), layout


def check_part(model: nn.Module, runner: FeaturePart) -> FeaturePart:
    """The backend and torch agree on a probe of another batch size,
    height and width than the export's (:data:`~.session.TOLERANCE`).

    Returns:
        FeaturePart: ``runner``, checked.

    Raises:
        BackendUnavailable: they do not (the worst output named).
    """
    layout = runner.layout
    head = dense_head_of(model) if layout.head_outputs else None
    probe = torch.randn(PROBE_BHW[0], layout.in_channels, *PROBE_BHW[1:],
                        generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = _flat_outputs(ExportedPart(model, head), probe)
    feats, outs = runner(probe)
    _check_outputs(
        list(feats) + [t for level_maps in (outs or ()) for t in level_maps],
        expected, runner.session)
    return runner
