# Copyright (c) mmlesion contributors. All rights reserved.
"""The detector's convolutions and box head in an exported backend (ONNX
Runtime or OpenVINO on the CPU), the rest in torch (:func:`use_backend`).

What is exported is what does not depend on the data: the detector's
``extract_feat`` (backbone and neck) and, where the detector's ``predict``
is mmdet's own (it hands ``extract_feat``'s output to the head as it is),
the convolutions of its dense head (``rpn_head`` of a two-stage detector,
``bbox_head`` of a one-stage one): the ``forward`` that gives the head's
per-level maps. Where the RoI head is mmdet's standard one with mmcv
RoIAlign layers (:func:`_box_head_of`), its box branch too: the RoIAlign of
each level's RoIs (:class:`RoIAlignGraph`, ONNX's ``RoiAlign`` run by ONNX
Runtime) and the box head's shared FCs, classification and regression, with
the number of RoIs dynamic. The RPN head's decoding and NMS, the assignment
of RoIs to levels and the box head's decoding and NMS run in torch, as
mmdet runs them: nothing a scan decides (kept boxes, their number) is ever
part of a graph.

Each part is exported once with ``torch.onnx.export(..., dynamo=False,
opset_version=17)``, its batch, height and width (and number of RoIs)
dynamic, and cached beside the checkpoint as ``<checkpoint>.<key>.onnx``
(the convolutions) and ``<checkpoint>.<key>.box_head.onnx``: the key is the
SHA-256 of the checkpoint's SHA-256, the config's text and the model
adjustments' record (:class:`BackendKey`), so a later scan, run or job of
the same model, in either backend, reads it back, and another config or
checkpoint exports its own. The file is written atomically
(:mod:`mmlesion.utils.writing.atomic`). Without a checkpoint (random
weights) or where its folder takes no file, the export lives for the run
only. A cached file that fails the check below (the detector's code changed
since) is exported again. OpenVINO reads the ONNX file with its own reader
and computes in f32, set explicitly (its CPU default on a bf16-capable CPU
is bf16); ``openvino-bf16`` asks for bf16. Each backend runs at torch's
thread count.

Each load is checked before a scan runs: the backend and torch on a probe
of another batch size, height and width (and RoI counts) than the export's
(a shape the trace baked in shows there, and a condition on the values the
trace turned into a constant where the random probe takes the other way
than the export's zeros) agree to :data:`TOLERANCE` of each output's
magnitude; the line a run logs names each condition the trace turned into a
constant (most are checks of shapes). A detector that cannot be exported
(an op without an ONNX form, one the backend does not run, a check that
fails) runs in torch, and a box head that cannot stays in torch, with one
line saying why.

:func:`compare_detections` tells whether two runs found the same (the
same kept boxes, within 0.5 px and 1e-3 of score: the backend's promise at
f32).
"""
import hashlib
import io
import json
import logging
import os
import os.path as osp
import time
import warnings
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from mmlesion.utils.writing.atomic import atomic_write_bytes

from .results import SliceDetections

#: What an export holds and how (a change here exports again).
EXPORT_FORMAT = 'mmlesion-features-1'
#: What a box head's export holds and how (:func:`_export_box_head`).
BOX_HEAD_FORMAT = 'mmlesion-box-head-1'
#: The ONNX opset of the export.
OPSET = 17
#: The export's dummy input (height, width) and the check's probe (batch,
#: height, width): multiples of 64 (a stride-64 level of a few pixels),
#: each axis other than the export's.
EXPORT_HW = (192, 256)
PROBE_BHW = (2, 256, 128)
#: Largest difference allowed between the backend and torch on the probe,
#: relative to each output's largest magnitude, by the backend's precision
#: (f32: about 1e-6 measured; bf16: up to 8e-2 on random weights: the check
#: at bf16 sees a baked shape, not a subtly baked value).
TOLERANCE = {'f32': 1e-4, 'bf16': .15}


class BackendUnavailable(RuntimeError):
    """The detector's part cannot run in the backend (the reason)."""


@dataclass(frozen=True)
class BackendKey:
    """What an exported file depends on.

    Args:
        checkpoint (str, optional): the weights' file (None: random
            weights, nothing cached).
        checkpoint_sha256 (str, optional): its SHA-256.
        config_text (str): the config's text as run.
        model_settings (Mapping): what the run's model adjustments record
            (e.g. the experts a LENS model fuses).
    """
    checkpoint: Optional[str]
    checkpoint_sha256: Optional[str]
    config_text: str
    model_settings: Mapping[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        """The SHA-256 (hex) of the format, checkpoint, config and
        adjustments."""
        text = json.dumps([EXPORT_FORMAT, OPSET, self.checkpoint_sha256,
                           self.config_text, dict(self.model_settings)],
                          sort_keys=True, default=repr)
        return hashlib.sha256(text.encode('utf-8')).hexdigest()

    def cache_path(self, part: str = '') -> Optional[str]:
        """``<checkpoint>.<first 16 hex of the key>[.<part>].onnx``; None
        without a checkpoint file.

        Args:
            part (str): ``''`` (the convolutions) or ``'box_head'``.
        """
        if not (self.checkpoint and self.checkpoint_sha256
                and osp.isfile(self.checkpoint)):
            return None
        suffix = f'.{part}' if part else ''
        return f'{self.checkpoint}.{self.digest()[:16]}{suffix}.onnx'


@dataclass(frozen=True)
class BackendStatus:
    """What :func:`use_backend` did.

    Args:
        requested (str): the backend asked for.
        backend (str): the backend the convolutions run in.
        action (str): ``'torch'`` (asked, or fell back), ``'exported'``
            (written to ``model_file``), ``'reused'`` (read from it) or
            ``'in memory'`` (exported for this run only).
        model_file (str, optional): the cached export.
        part (str): what the backend computes.
        reason (str, optional): why torch runs instead, or why nothing
            was cached.
        seconds (float): the export's or the read's time, with the check.
        box_head (str): what was done with the RoI head's box branch (or
            why it runs in torch).
        precision (str): what the backend computes in (``'f32'``, or
            ``'bf16'`` where ``openvino-bf16`` was asked of a CPU with it).
    """
    requested: str
    backend: str
    action: str
    model_file: Optional[str] = None
    part: str = ''
    reason: Optional[str] = None
    seconds: float = 0.
    box_head: str = ''
    precision: str = 'f32'

    def line(self) -> str:
        """One line for the log."""
        if self.backend == 'torch':
            return (f'backend {self.requested}: {self.reason}; the detector '
                    'runs in torch' if self.requested != 'torch'
                    else 'backend torch')
        where = (f' {self.model_file}' if self.model_file else '')
        note = f' ({self.reason})' if self.reason else ''
        box = f'; {self.box_head}' if self.box_head else ''
        return (f'backend {self.backend} ({self.precision}): {self.part} '
                f'{self.action}{where}{note}{box}; in {self.seconds:.1f} s, '
                'checked against torch')


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


#: The exported backends and the precision each computes in.
BACKEND_PRECISION = {'onnxruntime': 'f32', 'openvino': 'f32',
                     'openvino-bf16': 'bf16'}


class Session:
    """An ONNX model run on the CPU at torch's thread count (intra-op
    threads = ``torch.get_num_threads()``, one stream, no inter-op
    parallelism), arrays in, arrays out, in the graph's input and output
    order.

    Args:
        model_bytes (bytes): the ONNX model.
        backend (str): ``'onnxruntime'`` (a sleeping wait where
            ``OMP_WAIT_POLICY`` is passive), ``'openvino'`` (its ONNX
            reader; inference precision f32, set explicitly: OpenVINO's
            CPU default on a bf16-capable CPU is bf16) or
            ``'openvino-bf16'`` (bf16 where the CPU has it).

    Raises:
        BackendUnavailable: the backend cannot read or compile the model.
    """

    def __init__(self, model_bytes: bytes, backend: str):
        self.backend = backend
        self.threads = torch.get_num_threads()
        self.precision = BACKEND_PRECISION[backend]
        try:
            if backend == 'onnxruntime':
                self._open_onnxruntime(model_bytes)
            else:
                self._open_openvino(model_bytes, BACKEND_PRECISION[backend])
        except ImportError:
            raise
        except Exception as err:  # e.g. an op of mmcv's own domain
            raise BackendUnavailable(
                f'{backend} cannot run its export: {_first_line(err)}'
            ) from err

    def _open_onnxruntime(self, model_bytes: bytes) -> None:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        if os.environ.get('OMP_WAIT_POLICY', '').lower() == 'passive':
            options.add_session_config_entry(
                'session.intra_op.allow_spinning', '0')
        session = ort.InferenceSession(model_bytes, options,
                                       providers=['CPUExecutionProvider'])
        names = [i.name for i in session.get_inputs()]
        self._run = lambda arrays: session.run(None, dict(zip(names,
                                                              arrays)))

    def _open_openvino(self, model_bytes: bytes, precision: str) -> None:
        import openvino as ov
        core = ov.Core()
        # threads not pinned to cores (OpenVINO's default pins them): on a
        # shared machine a pinned thread waits for a core another job holds
        # (6 alternated batches at load 10: 1.29 s a slice against 1.50)
        compiled = core.compile_model(
            core.read_model(model_bytes), 'CPU', {
                'INFERENCE_PRECISION_HINT': precision,
                'INFERENCE_NUM_THREADS': self.threads,
                'NUM_STREAMS': 1,
                'PERFORMANCE_HINT': 'LATENCY',
                'ENABLE_CPU_PINNING': False
            })
        #: what the CPU plugin computes in (f32 where bf16 was asked of a
        #: CPU without it)
        self.precision = compiled.get_property(
            'INFERENCE_PRECISION_HINT').get_type_name()
        request = compiled.create_infer_request()
        outputs = compiled.outputs

        def run(arrays):
            result = request.infer(list(arrays), share_inputs=True)
            return [result[o] for o in outputs]

        self._run = run

    def run(self, arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
        """The model's outputs on ``arrays`` (float32, C-contiguous)."""
        return list(self._run([np.ascontiguousarray(a, dtype=np.float32)
                               for a in arrays]))


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


def _onnx_export(module: nn.Module, args: Tuple[Tensor, ...],
                 input_names: List[str], output_names: List[str],
                 axes: Dict[str, Dict[int, str]]) -> Tuple[bytes, List[str]]:
    """``module`` traced to ONNX (:data:`OPSET`) and the ``file:line`` of
    each Python condition on a tensor the trace turned into a constant (a
    shape check, most often: the check at another shape and other values
    decides).

    Raises:
        BackendUnavailable: the exporter refused (the reason).
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', torch.jit.TracerWarning)
        try:
            torch.onnx.export(module, args, buffer, dynamo=False,
                              opset_version=OPSET, input_names=input_names,
                              output_names=output_names, dynamic_axes=axes)
        except BackendUnavailable:
            raise
        except Exception as err:  # any op the exporter refuses
            raise BackendUnavailable(
                f'torch.onnx.export failed: {type(err).__name__}: '
                f'{_first_line(err)}') from err
    constants = sorted({
        f'{osp.basename(w.filename)}:{w.lineno}' for w in caught
        if issubclass(w.category, torch.jit.TracerWarning)})
    return buffer.getvalue(), constants


def _with_metadata(data: bytes, fmt: str, digest: str,
                   layout: Mapping[str, Any]) -> bytes:
    """The ONNX model with its format, key and layout in its metadata."""
    import onnx
    proto = onnx.load_from_string(data)
    onnx.helper.set_model_props(proto, {
        'mmlesion.format': fmt, 'mmlesion.key': digest,
        'mmlesion.layout': json.dumps(dict(layout))})
    return proto.SerializeToString()


def _export_part(model: nn.Module, digest: str = '') -> Tuple[bytes, Layout]:
    """Export the detector's part (:class:`ExportedPart`) to ONNX.

    Args:
        model (nn.Module): the detector, in eval mode, on the CPU.
        digest (str): its :meth:`BackendKey.digest`, kept in the file.

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


def _first_line(err: Any) -> str:
    return (str(err).strip().splitlines() or [''])[0][:200]


def _read_export(path: str, digest: str,
                 fmt: str = EXPORT_FORMAT) -> Tuple[bytes, Dict[str, Any]]:
    """A cached export and its layout's fields.

    Raises:
        BackendUnavailable: not an export of this format and key.
    """
    import onnx
    with open(path, 'rb') as f:
        data = f.read()
    try:
        props = {p.key: p.value
                 for p in onnx.load_from_string(data).metadata_props}
        layout = json.loads(props['mmlesion.layout'])
    except Exception as err:
        raise BackendUnavailable(f'{path}: not a readable export '
                                 f'({_first_line(err)})') from err
    if props.get('mmlesion.format') != fmt or props.get(
            'mmlesion.key') != digest:
        raise BackendUnavailable(f'{path}: an export of another model')
    return data, layout


def _check_outputs(got: Sequence[Tensor], expected: Sequence[Tensor],
                   session: Session, what: str = 'output') -> None:
    """Each output of the backend (``session``) within its precision's
    :data:`TOLERANCE` of torch's magnitude, of torch's shape.

    Raises:
        BackendUnavailable: not so (the worst output named).
    """
    if len(got) != len(expected):
        raise BackendUnavailable(f'the export gives {len(got)} outputs, '
                                 f'torch {len(expected)}')
    for i, (a, b) in enumerate(zip(got, expected)):
        if a.shape != b.shape:
            raise BackendUnavailable(
                f'{what} {i} is {tuple(a.shape)} in the backend, '
                f'{tuple(b.shape)} in torch (a shape the trace baked in)')
        scale = max(float(b.abs().max()) if b.numel() else 0., 1e-6)
        worst = float((a - b).abs().max()) if b.numel() else 0.
        if not worst <= TOLERANCE[session.precision] * scale:
            raise BackendUnavailable(
                f'{what} {i} differs from torch by {worst:.3g} (of '
                f'{scale:.3g})')


def check_part(model: nn.Module, runner: FeaturePart) -> FeaturePart:
    """The backend and torch agree on a probe of another batch size,
    height and width than the export's (:data:`TOLERANCE`).

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


class _RoIAlignExport(torch.autograd.Function):
    """mmcv's ``roi_align`` (average pooling) in torch; ONNX's ``RoiAlign``
    in an export (mmcv's ``aligned=True`` is its ``half_pixel`` mode,
    ``False`` its ``output_half_pixel``; sampling ratio 0 is adaptive in
    both). The RoIs are an input of the graph: which RoIs, and how many,
    is the data's, never the trace's."""

    @staticmethod
    def forward(ctx, feats: Tensor, rois: Tensor, output_size: Tuple[int,
                                                                      int],
                spatial_scale: float, sampling_ratio: int,
                aligned: bool) -> Tensor:
        from mmcv.ops import roi_align
        return roi_align(feats, rois, output_size, spatial_scale,
                         sampling_ratio, 'avg', aligned)

    @staticmethod
    def symbolic(g, feats, rois, output_size, spatial_scale, sampling_ratio,
                 aligned):
        def constant(value):
            return g.op('Constant', value_t=torch.tensor(value))

        int64 = 7  # onnx.TensorProto.INT64
        batch = g.op('Cast', g.op('Gather', rois, constant(0), axis_i=1),
                     to_i=int64)
        boxes = g.op('Gather', rois, constant([1, 2, 3, 4]), axis_i=1)
        return g.op(
            'RoiAlign', feats, boxes, batch,
            coordinate_transformation_mode_s=('half_pixel' if aligned else
                                              'output_half_pixel'),
            mode_s='avg', output_height_i=output_size[0],
            output_width_i=output_size[1], sampling_ratio_i=sampling_ratio,
            spatial_scale_f=spatial_scale)


class RoIAlignGraph(nn.Module):
    """A ``SingleRoIExtractor``'s RoIAlign as one module: each feature
    level's RoIs (given apart, level after level) pooled from that level,
    concatenated. No weights: exported for each run, not cached.

    Args:
        roi_head (nn.Module): an mmdet ``StandardRoIHead``
            (:func:`_box_head_of`).
    """

    def __init__(self, roi_head: nn.Module):
        super().__init__()
        self.layers = roi_head.bbox_roi_extractor.roi_layers

    def forward(self, *inputs: Tensor) -> Tensor:
        n = len(self.layers)
        return torch.cat([
            _RoIAlignExport.apply(f, r, tuple(layer.output_size),
                                  float(layer.spatial_scale),
                                  int(layer.sampling_ratio),
                                  bool(layer.aligned))
            for f, r, layer in zip(inputs[:n], inputs[n:], self.layers)
        ])


class BoxHeadPart:
    """A standard RoI head's box branch exported: its RoIAlign
    (:class:`RoIAlignGraph`) in ONNX Runtime, whatever the backend (its
    RoiAlign runs on every thread: 1.7x mmcv's, which runs on one, and
    OpenVINO's was slower than mmcv's, on 4,000 RoIs of a full-size
    detector), and its box head's ``forward`` (shared FCs, classification
    and regression) in the backend's session.

    Args:
        align (Session): the RoIAlign graph's session.
        head (Session): the box head's session.
        layout (dict): ``levels`` (feature levels), ``channels``,
            ``strides`` and the trace's ``constants``.
    """

    def __init__(self, align: Session, head: Session,
                 layout: Mapping[str, Any]):
        self.align = align
        self.session = head
        self.layout = dict(layout)

    def __call__(self, feats: Sequence[Tensor],
                 rois: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """The classification and regression outputs of the RoIs (given
        level by level), in that order."""
        pooled = self.align.run([t.detach().cpu().numpy()
                                 for t in list(feats) + list(rois)])
        return tuple(torch.from_numpy(a) for a in self.session.run(pooled))


def _box_head_of(model: nn.Module) -> Tuple[Optional[nn.Module], str]:
    """The RoI head whose box branch can be exported (:class:`BoxHeadPart`)
    and, where none, why.

    One of mmdet's ``StandardRoIHead`` with its own ``_bbox_forward``, no
    shared head, a ``SingleRoIExtractor`` of mmcv ``RoIAlign`` layers with
    average pooling.
    """
    from mmcv.ops import RoIAlign
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    roi_head = getattr(model, 'roi_head', None)
    if not isinstance(roi_head, StandardRoIHead):
        return None, 'no standard RoI head'
    if (type(roi_head)._bbox_forward is not StandardRoIHead._bbox_forward
            or roi_head.with_shared_head or not roi_head.with_bbox):
        return None, f'{type(roi_head).__name__} has its own box forward'
    extractor = roi_head.bbox_roi_extractor
    if type(extractor) is not SingleRoIExtractor or not all(
            type(layer) is RoIAlign and layer.pool_mode == 'avg'
            and not layer.use_torchvision for layer in extractor.roi_layers):
        return None, (f'its RoI extractor ({type(extractor).__name__}) is '
                      "not mmdet's SingleRoIExtractor of mmcv RoIAlign")
    return roi_head, ''


def _box_head_inputs(roi_head: nn.Module, batch: int, hw: Tuple[int, int],
                     counts: Sequence[int],
                     seed: int) -> List[Tensor]:
    """Random features of an image of ``hw`` and ``counts`` random RoIs a
    level (:class:`RoIAlignGraph`'s inputs)."""
    extractor = roi_head.bbox_roi_extractor
    generator = torch.Generator().manual_seed(seed)
    feats = [
        torch.randn(batch, extractor.out_channels, -(-hw[0] // s),
                    -(-hw[1] // s), generator=generator)
        for s in extractor.featmap_strides
    ]
    rois = []
    for n in counts:
        corner = torch.rand(n, 2, generator=generator) * torch.tensor(
            [hw[1], hw[0]]) * .8
        size = torch.rand(n, 2, generator=generator) * torch.tensor(
            [hw[1], hw[0]]) * .5 + 1.
        index = torch.randint(0, batch, (n, 1), generator=generator).float()
        rois.append(torch.cat([index, corner, corner + size], 1))
    return feats + rois


def _export_roi_align(roi_head: nn.Module) -> bytes:
    """The RoIAlign graph (:class:`RoIAlignGraph`) in ONNX, the features'
    batch, height and width and each level's number of RoIs dynamic.

    Raises:
        BackendUnavailable: it cannot be exported (the reason).
    """
    levels = len(roi_head.bbox_roi_extractor.roi_layers)
    dummy = _box_head_inputs(roi_head, 1, EXPORT_HW, [3] * levels, 0)
    names = ([f'feat{i}' for i in range(levels)]
             + [f'rois{i}' for i in range(levels)])
    axes = {f'feat{i}': {0: 'batch', 2: f'h{i}', 3: f'w{i}'}
            for i in range(levels)}
    axes.update({f'rois{i}': {0: f'n{i}'} for i in range(levels)})
    axes.update(pooled={0: 'rois'})
    with torch.no_grad():
        data, _ = _onnx_export(RoIAlignGraph(roi_head), tuple(dummy), names,
                               ['pooled'], axes)
    return data


def _export_box_head(roi_head: nn.Module,
                     digest: str = '') -> Tuple[bytes, Dict[str, Any]]:
    """Export the box head's ``forward`` (shared FCs, classification and
    regression) with the number of RoIs dynamic.

    Returns:
        tuple: the ONNX model (its format, key and layout in its metadata)
        and its layout.

    Raises:
        BackendUnavailable: it cannot be exported (the reason).
    """
    extractor = roi_head.bbox_roi_extractor
    size = tuple(extractor.roi_layers[0].output_size)
    dummy = torch.randn(3, extractor.out_channels, *size,
                        generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outs = roi_head.bbox_head(dummy)
        if not (isinstance(outs, tuple) and len(outs) == 2
                and all(isinstance(t, Tensor) for t in outs)):
            raise BackendUnavailable(
                f'{type(roi_head.bbox_head).__name__} gives no '
                'classification and regression tensors')
        data, constants = _onnx_export(
            roi_head.bbox_head, (dummy, ), ['pooled'],
            ['cls_score', 'bbox_pred'],
            dict(pooled={0: 'rois'}, cls_score={0: 'rois'},
                 bbox_pred={0: 'rois'}))
    layout = dict(levels=len(extractor.roi_layers),
                  channels=extractor.out_channels,
                  strides=list(extractor.featmap_strides),
                  constants=constants)
    return _with_metadata(data, BOX_HEAD_FORMAT, digest, layout), layout


def check_box_head(roi_head: nn.Module, runner: BoxHeadPart) -> BoxHeadPart:
    """The exported box branch and torch agree (:data:`TOLERANCE`) on a
    probe of another batch, image size and RoI counts than the exports',
    one level without RoIs.

    Returns:
        BoxHeadPart: ``runner``, checked.

    Raises:
        BackendUnavailable: they do not (the worst output named).
    """
    levels = runner.layout['levels']
    counts = [7 + 2 * i for i in range(levels)]
    if levels > 1:
        counts[-1] = 0
    inputs = _box_head_inputs(roi_head, PROBE_BHW[0], PROBE_BHW[1:], counts,
                              1)
    with torch.no_grad():
        expected = roi_head.bbox_head(RoIAlignGraph(roi_head)(*inputs))
    _check_outputs(runner(inputs[:levels], inputs[levels:]), expected,
                   runner.session, 'box head output')
    return runner


def attach_backend(model: nn.Module, runner: FeaturePart,
                   box_head: Optional[BoxHeadPart] = None) -> None:
    """Let the detector's ``extract_feat`` (and its dense head's
    ``forward``, where exported; and its RoI head's box branch, where
    ``box_head`` is given) run in the backend.

    The head gives the backend's maps only for the very features the
    backend gave (else it runs in torch), so a detector that hands the head
    something else still gets the right maps. The RoIs are assigned to
    feature levels in torch by the RoI extractor's own ``map_roi_levels``,
    handed to the backend level by level and its outputs put back in the
    RoIs' order. :func:`detach_backend` undoes it.
    """
    head = dense_head_of(model) if runner.layout.head_outputs else None
    last: Dict[str, Any] = {}

    def extract_feat(batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        feats, outs = runner(batch_inputs)
        last.update(feats=feats, outs=outs)
        return feats

    extract_feat.backend = runner
    model.extract_feat = extract_feat
    if head is not None:
        torch_forward = head.forward

        def head_forward(x, *args, **kwargs):
            if not args and not kwargs and x is last.get('feats'):
                return last.pop('outs')
            return torch_forward(x, *args, **kwargs)

        head_forward.backend = runner
        head.forward = head_forward
    if box_head is not None:
        _attach_box_head(model.roi_head, box_head)


def _attach_box_head(roi_head: nn.Module, runner: BoxHeadPart) -> None:
    """``roi_head._bbox_forward`` in the backend (:func:`attach_backend`)."""
    extractor = roi_head.bbox_roi_extractor

    def bbox_forward(x: Tuple[Tensor, ...], rois: Tensor) -> dict:
        levels = runner.layout['levels']
        rois = rois.type_as(x[0])
        level = extractor.map_roi_levels(rois, levels)
        order = torch.argsort(level, stable=True)
        counts = torch.bincount(level, minlength=levels).tolist()
        cls_score, bbox_pred = runner(x[:levels],
                                      rois[order].split(counts))
        back = torch.argsort(order)
        return dict(cls_score=cls_score[back], bbox_pred=bbox_pred[back],
                    bbox_feats=None)

    bbox_forward.backend = runner
    roi_head._bbox_forward = bbox_forward


def detach_backend(model: nn.Module) -> None:
    """Undo :func:`attach_backend` (no-op where nothing was attached)."""
    for owner, name in ((model, 'extract_feat'),
                        (getattr(model, 'rpn_head', None), 'forward'),
                        (getattr(model, 'bbox_head', None), 'forward'),
                        (getattr(model, 'roi_head', None), '_bbox_forward')):
        if isinstance(owner, nn.Module) and hasattr(
                owner.__dict__.get(name), 'backend'):
            del owner.__dict__[name]


@dataclass(frozen=True)
class AttachedParts:
    """The runners :func:`attach_backend` gave a detector.

    Args:
        features (FeaturePart, optional): its convolutions'.
        box_head (BoxHeadPart, optional): its box head's.
    """
    features: Optional[FeaturePart] = None
    box_head: Optional[BoxHeadPart] = None


def attached_parts(model: nn.Module) -> AttachedParts:
    """The runners :func:`attach_backend` gave ``model`` (None where
    none), to attach again after :func:`detach_backend`."""
    roi_head = getattr(model, 'roi_head', None)
    box = (roi_head.__dict__.get('_bbox_forward')
           if isinstance(roi_head, nn.Module) else None)
    return AttachedParts(
        getattr(model.__dict__.get('extract_feat'), 'backend', None),
        getattr(box, 'backend', None))


def _load_or_export(path: Optional[str], digest: str, fmt: str,
                    export: Callable[[], Tuple[bytes, Any]],
                    runner_of: Callable[[bytes, Mapping[str, Any]], Any]
                    ) -> Tuple[Any, str, Optional[str], Optional[str]]:
    """A part's runner, checked, read from ``path`` where it holds an
    export of this key, else exported (and cached at ``path``); its action,
    file and note (:class:`BackendStatus`).

    Args:
        path (str, optional): the cache file (None: not cached).
        digest (str): the key.
        fmt (str): the part's format.
        export (callable): ``() -> (bytes, layout)``.
        runner_of (callable): ``(bytes, layout fields) -> runner``,
            checked against torch.
    """
    note = None if path else 'random weights: not cached'
    if path and osp.isfile(path):
        try:
            return runner_of(*_read_export(path, digest, fmt)), 'reused', \
                path, None
        except (BackendUnavailable, OSError) as err:  # broken, foreign,
            note = f'{_first_line(err)}; exported again'  # stale, unreadable
    data, layout = export()
    runner = runner_of(data, dict(getattr(layout, '__dict__', layout)))
    if path is None:
        return runner, 'in memory', None, note
    try:
        atomic_write_bytes(path, data)
    except OSError as err:  # a read-only checkpoint folder
        return runner, 'in memory', None, f'not cached: {_first_line(err)}'
    return runner, 'exported', path, note


def _box_head_part(model: nn.Module, backend: str,
                   key: BackendKey) -> Tuple[Optional[BoxHeadPart], str]:
    """The box branch's runner (None where it stays in torch) and a phrase
    for the log saying what was done or why not."""
    roi_head, why = _box_head_of(model)
    if roi_head is None:
        return None, f'the box head in torch ({why})'
    try:
        align = Session(_export_roi_align(roi_head), 'onnxruntime')
        runner, action, path, note = _load_or_export(
            key.cache_path('box_head'), key.digest(), BOX_HEAD_FORMAT,
            lambda: _export_box_head(roi_head, key.digest()),
            lambda data, layout: check_box_head(
                roi_head, BoxHeadPart(align, Session(data, backend),
                                      layout)))
    except (BackendUnavailable, ImportError) as err:
        return None, f'the box head in torch ({_first_line(err)})'
    where = f' {path}' if path else ''
    constants = runner.layout.get('constants') or []
    notes = list(filter(None, [note, constants and (
        f"the trace fixed {', '.join(constants)}")]))
    note = f" ({'; '.join(notes)})" if notes else ''
    return runner, (f'RoIAlign in onnxruntime, box head FCs {action}'
                    f'{where}{note}')


def use_backend(model: nn.Module, backend: str,
                key: BackendKey) -> BackendStatus:
    """Run the detector's convolutions, and its box head where it can, in
    ``backend`` (module doc); a detector that cannot runs in torch, with
    one warning saying why.

    Args:
        model (nn.Module): the detector, in eval mode, on the CPU (its
            ``extract_feat``, dense head ``forward`` and RoI head
            ``_bbox_forward`` replaced on the instance:
            :func:`detach_backend`).
        backend (str): ``'torch'`` or one of :data:`BACKEND_PRECISION`.
        key (BackendKey): what the export depends on.

    Returns:
        BackendStatus: what was done (also logged).
    """
    if backend == 'torch':
        return BackendStatus('torch', 'torch', 'torch')
    if backend not in BACKEND_PRECISION:
        raise ValueError(f"backend must be 'torch' or one of "
                         f'{tuple(BACKEND_PRECISION)}, got {backend!r}')
    detach_backend(model)  # a model given again: its own torch part
    start = time.perf_counter()
    try:
        runner, action, path, note = _load_or_export(
            key.cache_path(), key.digest(), EXPORT_FORMAT,
            lambda: _export_part(model, key.digest()),
            lambda data, layout: check_part(model, FeaturePart(
                Session(data, backend), Layout(**layout))))
        box_head, box_line = _box_head_part(model, backend, key)
    except (BackendUnavailable, ImportError) as err:
        why = (f'{type(model).__name__} not exported: {err}'
               if isinstance(err, BackendUnavailable) else
               f'{err} (pip install -r requirements/runtime.txt)')
        status = BackendStatus(backend, 'torch', 'torch', reason=why)
        print_log(status.line(), logger='current', level=logging.WARNING)
        return status
    attach_backend(model, runner, box_head)
    part = ('extract_feat' + (' + dense head convolutions'
                              if runner.layout.head_outputs else ''))
    constants = runner.layout.constants
    if constants:
        note = '; '.join(filter(None, [note, (
            f'the trace fixed {len(constants)} condition(s) at '
            f"{', '.join(constants)}")]))
    status = BackendStatus(
        backend, backend, action, path, part, note,
        time.perf_counter() - start, box_line,
        getattr(runner.session, 'precision', 'f32'))
    print_log(status.line(), logger='current', level=logging.INFO)
    return status


@dataclass(frozen=True)
class Agreement:
    """How closely two runs' 2D detections agree
    (:func:`compare_detections`).

    Args:
        slices (int): slices compared.
        boxes (int): boxes of the reference run.
        unmatched (int): boxes of either run without a partner of the same
            label in the other (a different kept set).
        box_px (float): the largest coordinate difference of a matched pair
            (pixels of the resampled slice).
        score (float): the largest score difference of a matched pair.
        box_tol (float): the box tolerance of :attr:`same`.
        score_tol (float): the score tolerance of :attr:`same`.
    """
    slices: int
    boxes: int
    unmatched: int
    box_px: float
    score: float
    box_tol: float = .5
    score_tol: float = 1e-3

    @property
    def same(self) -> bool:
        """The same findings: the same kept set, each box within
        ``box_tol`` px and its score within ``score_tol``."""
        return (self.unmatched == 0 and self.box_px <= self.box_tol
                and self.score <= self.score_tol)


def compare_detections(reference: SliceDetections, other: SliceDetections,
                       box_tol: float = .5,
                       score_tol: float = 1e-3) -> Agreement:
    """Pair each slice's boxes of two runs (per label, the pairing of the
    smallest largest coordinate difference: Hungarian) and give the worst
    differences.

    Args:
        reference (SliceDetections): e.g. eager torch's.
        other (SliceDetections): e.g. the backend's.
        box_tol (float): pixels. Defaults to 0.5.
        score_tol (float): Defaults to 1e-3.

    Returns:
        Agreement: unmatched boxes and the worst box and score differences.

    Raises:
        ValueError: the runs cover different numbers of slices.
    """
    from scipy.optimize import linear_sum_assignment
    if len(reference.boxes) != len(other.boxes):
        raise ValueError(f'{len(reference.boxes)} slices against '
                         f'{len(other.boxes)}')
    unmatched, total, box_px, score = 0, 0, 0., 0.
    for z in range(len(reference.boxes)):
        a_box, b_box = reference.boxes[z], other.boxes[z]
        total += len(a_box)
        a_lab, b_lab = reference.labels[z], other.labels[z]
        for label in set(a_lab.tolist()) | set(b_lab.tolist()):
            ia, ib = np.flatnonzero(a_lab == label), np.flatnonzero(
                b_lab == label)
            cost = np.abs(a_box[ia, None, :] - b_box[None, ib, :]).max(-1)
            rows, cols = linear_sum_assignment(cost)
            unmatched += len(ia) + len(ib) - 2 * len(rows)
            if len(rows):
                box_px = max(box_px, float(cost[rows, cols].max()))
                score = max(score, float(np.abs(
                    reference.scores[z][ia[rows]]
                    - other.scores[z][ib[cols]]).max()))
    return Agreement(len(reference.boxes), total, unmatched, box_px, score,
                     box_tol, score_tol)
