# Copyright (c) mmlesion contributors. All rights reserved.
"""The detector's convolutional part in an exported backend (ONNX Runtime on
the CPU), the rest in torch (:func:`use_backend`).

What is exported is what does not depend on the data: the detector's
``extract_feat`` (backbone and neck) and, where the detector's ``predict``
is mmdet's own (it hands ``extract_feat``'s output to the head as it is),
the convolutions of its dense head (``rpn_head`` of a two-stage detector,
``bbox_head`` of a one-stage one): the ``forward`` that gives the head's
per-level maps. The head's decoding and NMS, RoIAlign and the RoI head run
in torch, as mmdet runs them: nothing a scan decides (kept boxes, their
number) is ever part of the graph.

The part is exported once with ``torch.onnx.export(..., dynamo=False,
opset_version=17)``, its batch, height and width dynamic, and cached beside
the checkpoint as ``<checkpoint>.<key>.onnx``: the key is the SHA-256 of
the checkpoint's SHA-256, the config's text and the model adjustments'
record (:class:`BackendKey`), so a later scan, run or job of the same model
reads it back, and another config or checkpoint exports its own. The file
is written atomically (:mod:`mmlesion.utils.writing.atomic`). Without a
checkpoint (random weights) or where its folder takes no file, the export
lives for the run only. A cached file that fails the check below (the
detector's code changed since) is exported again.

Each load is checked before a scan runs: the backend and torch on a probe
of another batch size, height and width than the export's (a shape the
trace baked in shows there, and a condition on the values the trace turned
into a constant where the random probe takes the other way than the
export's zeros) agree to 1e-4 of each output's magnitude; the line a run
logs names each condition the trace turned into a constant (most are
checks of shapes). A detector that cannot be exported (an op without an
ONNX form, one ONNX Runtime does not run, a check that fails) runs in
torch, with one warning saying why.

:func:`compare_detections` tells whether two runs found the same (the
same kept boxes, within 0.5 px and 1e-3 of score: the backend's promise).
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
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from mmlesion.utils.writing.atomic import atomic_write_bytes

from .results import SliceDetections

#: What an export holds and how (a change here exports again).
EXPORT_FORMAT = 'mmlesion-features-1'
#: The ONNX opset of the export.
OPSET = 17
#: The export's dummy input (height, width) and the check's probe (batch,
#: height, width): multiples of 64 (a stride-64 level of a few pixels),
#: each axis other than the export's.
EXPORT_HW = (192, 256)
PROBE_BHW = (2, 256, 128)
#: Largest difference allowed between the backend and torch on the probe,
#: relative to each output's largest magnitude (f32: about 1e-6 measured).
TOLERANCE = 1e-4


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

    def cache_path(self) -> Optional[str]:
        """``<checkpoint>.<first 16 hex of the key>.onnx``; None without a
        checkpoint file."""
        if not (self.checkpoint and self.checkpoint_sha256
                and osp.isfile(self.checkpoint)):
            return None
        return f'{self.checkpoint}.{self.digest()[:16]}.onnx'


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
    """
    requested: str
    backend: str
    action: str
    model_file: Optional[str] = None
    part: str = ''
    reason: Optional[str] = None
    seconds: float = 0.

    def line(self) -> str:
        """One line for the log."""
        if self.backend == 'torch':
            return (f'backend {self.requested}: {self.reason}; the detector '
                    'runs in torch' if self.requested != 'torch'
                    else 'backend torch')
        where = (f' {self.model_file}' if self.model_file else '')
        note = f' ({self.reason})' if self.reason else ''
        return (f'backend {self.backend}: {self.part} {self.action}{where} '
                f'in {self.seconds:.1f} s, checked against torch{note}')


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


class OnnxRuntimePart:
    """An exported part run by ONNX Runtime on the CPU, at torch's thread
    count (a sleeping wait where ``OMP_WAIT_POLICY`` is passive).

    Args:
        model_bytes (bytes): the ONNX model.
        layout (Layout): its outputs.
    """

    def __init__(self, model_bytes: bytes, layout: Layout):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        if os.environ.get('OMP_WAIT_POLICY', '').lower() == 'passive':
            options.add_session_config_entry(
                'session.intra_op.allow_spinning', '0')
        try:
            self.session = ort.InferenceSession(
                model_bytes, options, providers=['CPUExecutionProvider'])
        except Exception as err:  # e.g. an op of mmcv's own domain
            raise BackendUnavailable(
                f'onnxruntime cannot run its export: {_first_line(err)}'
            ) from err
        self.layout = layout

    def __call__(self, inputs: Tensor
                 ) -> Tuple[Tuple[Tensor, ...], Optional[tuple]]:
        array = np.ascontiguousarray(
            inputs.detach().cpu().numpy(), dtype=np.float32)
        flat = self.session.run(None, {'inputs': array})
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
        digest (str): its :meth:`BackendKey.digest`, kept in the file.

    Returns:
        tuple: the ONNX model (its format, key and layout in its metadata)
        and the :class:`Layout`.

    Raises:
        BackendUnavailable: the part cannot be exported (the reason).
    """
    import onnx
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
        buffer = io.BytesIO()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', torch.jit.TracerWarning)
            try:
                torch.onnx.export(
                    part, (dummy, ), buffer, dynamo=False,
                    opset_version=OPSET, input_names=['inputs'],
                    output_names=names, dynamic_axes=axes)
            except BackendUnavailable:
                raise
            except Exception as err:  # any op the exporter refuses
                raise BackendUnavailable(
                    f'torch.onnx.export failed: {type(err).__name__}: '
                    f'{_first_line(err)}') from err
    # shape checks (and any value) a trace turned into constants: the
    # check at another shape and other values (:func:`check_part`) decides
    layout.constants = sorted({
        f'{osp.basename(w.filename)}:{w.lineno}' for w in caught
        if issubclass(w.category, torch.jit.TracerWarning)})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {
        'mmlesion.format': EXPORT_FORMAT, 'mmlesion.key': digest,
        'mmlesion.layout': json.dumps(layout.__dict__)})
    return proto.SerializeToString(), layout


def _first_line(err: Any) -> str:
    return (str(err).strip().splitlines() or [''])[0][:200]


def _read_export(path: str, digest: str) -> Tuple[bytes, Layout]:
    """A cached export and its layout.

    Raises:
        BackendUnavailable: not an export of this format and key.
    """
    import onnx
    with open(path, 'rb') as f:
        data = f.read()
    try:
        props = {p.key: p.value
                 for p in onnx.load_from_string(data).metadata_props}
        layout = Layout(**json.loads(props['mmlesion.layout']))
    except Exception as err:
        raise BackendUnavailable(f'{path}: not a readable export '
                                 f'({_first_line(err)})') from err
    if props.get('mmlesion.format') != EXPORT_FORMAT or props.get(
            'mmlesion.key') != digest:
        raise BackendUnavailable(f'{path}: an export of another model')
    return data, layout


def check_part(model: nn.Module, runner: OnnxRuntimePart) -> None:
    """The backend and torch agree on a probe of another batch size,
    height and width than the export's (:data:`TOLERANCE`).

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
    got = list(feats) + [t for level_maps in (outs or ()) for t in level_maps]
    if len(got) != len(expected):
        raise BackendUnavailable(f'the export gives {len(got)} outputs, '
                                 f'torch {len(expected)}')
    for i, (a, b) in enumerate(zip(got, expected)):
        if a.shape != b.shape:
            raise BackendUnavailable(
                f'output {i} is {tuple(a.shape)} in the backend, '
                f'{tuple(b.shape)} in torch (a shape the trace baked in)')
        scale = max(float(b.abs().max()), 1e-6)
        worst = float((a - b).abs().max())
        if not worst <= TOLERANCE * scale:
            raise BackendUnavailable(
                f'output {i} differs from torch by {worst:.3g} (of '
                f'{scale:.3g})')


def attach_backend(model: nn.Module, runner: OnnxRuntimePart) -> None:
    """Let the detector's ``extract_feat`` (and its dense head's
    ``forward``, where exported) run in the backend.

    The head gives the backend's maps only for the very features the
    backend gave (else it runs in torch), so a detector that hands the head
    something else still gets the right maps. :func:`detach_backend`
    undoes it.
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


def detach_backend(model: nn.Module) -> None:
    """Undo :func:`attach_backend` (no-op where nothing was attached)."""
    for owner, name in ((model, 'extract_feat'),
                        (getattr(model, 'rpn_head', None), 'forward'),
                        (getattr(model, 'bbox_head', None), 'forward')):
        if isinstance(owner, nn.Module) and hasattr(
                owner.__dict__.get(name), 'backend'):
            del owner.__dict__[name]


def _load_or_export(model: nn.Module, key: BackendKey
                    ) -> Tuple[OnnxRuntimePart, str, Optional[str],
                               Optional[str]]:
    """The backend's runner, checked (:func:`check_part`), its action,
    file and note (:class:`BackendStatus`)."""
    digest, path = key.digest(), key.cache_path()
    note = None if path else 'random weights: not cached'
    if path and osp.isfile(path):
        try:
            data, layout = _read_export(path, digest)
            runner = OnnxRuntimePart(data, layout)
            check_part(model, runner)  # code changed since: exported anew
            return runner, 'reused', path, None
        except Exception as err:  # a broken or foreign file: exported anew
            note = f'{_first_line(err)}; exported again'
    data, layout = _export_part(model, digest)
    runner = OnnxRuntimePart(data, layout)
    check_part(model, runner)
    if path is None:
        return runner, 'in memory', None, note
    try:
        atomic_write_bytes(path, data)
    except OSError as err:  # a read-only checkpoint folder
        return runner, 'in memory', None, f'not cached: {_first_line(err)}'
    return runner, 'exported', path, note


def use_backend(model: nn.Module, backend: str,
                key: BackendKey) -> BackendStatus:
    """Run the detector's convolutions in ``backend`` (module doc); a
    detector that cannot runs in torch, with one warning saying why.

    Args:
        model (nn.Module): the detector, in eval mode, on the CPU (its
            ``extract_feat`` and dense head ``forward`` replaced on the
            instance: :func:`detach_backend`).
        backend (str): ``'torch'`` or ``'onnxruntime'``.
        key (BackendKey): what the export depends on.

    Returns:
        BackendStatus: what was done (also logged).
    """
    if backend == 'torch':
        return BackendStatus('torch', 'torch', 'torch')
    if backend != 'onnxruntime':
        raise ValueError(f"backend must be 'torch' or 'onnxruntime', got "
                         f'{backend!r}')
    detach_backend(model)  # a model given again: its own torch part
    start = time.perf_counter()
    try:
        runner, action, path, note = _load_or_export(model, key)
    except (BackendUnavailable, ImportError) as err:
        why = (f'{type(model).__name__} not exported: {err}'
               if isinstance(err, BackendUnavailable) else
               f'{err} (pip install -r requirements/runtime.txt)')
        status = BackendStatus(backend, 'torch', 'torch', reason=why)
        print_log(status.line(), logger='current', level=logging.WARNING)
        return status
    attach_backend(model, runner)
    part = ('extract_feat' + (' + dense head convolutions'
                              if runner.layout.head_outputs else ''))
    constants = runner.layout.constants
    if constants:
        note = '; '.join(filter(None, [note, (
            f'the trace fixed {len(constants)} condition(s) at '
            f"{', '.join(constants)}")]))
    status = BackendStatus(backend, backend, action, path, part, note,
                           time.perf_counter() - start)
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
