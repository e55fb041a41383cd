# Copyright (c) mmlesion contributors. All rights reserved.
"""The detector with its parts in the backend: :func:`use_backend`
exports or reads each part, checks it and attaches its runner
(:func:`attach_backend`); :func:`detach_backend` gives the detector its
torch parts back. A detector that cannot be exported (an op without an
ONNX form, one the backend does not run, a check that fails) runs in torch,
with one line saying why (:class:`BackendStatus`)."""
import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from mmengine.logging import print_log
from torch import Tensor, nn

from .box_head import BoxHeadPart, _attach_box_head, _box_head_part
from .export import EXPORT_FORMAT, BackendKey, _load_or_export
from .features import (FeaturePart, Layout, _export_part, check_part,
                       dense_head_of)
from .proposals import attach_proposals
from .session import BACKEND_PRECISION, BackendUnavailable, Session


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


def attach_backend(model: nn.Module, runner: FeaturePart,
                   box_head: Optional[BoxHeadPart] = None) -> None:
    """Let the detector's ``extract_feat`` (and its dense head's
    ``forward``, where exported; and its RoI head's box branch, where
    ``box_head`` is given) run in the backend, and an mmdet ``RPNHead``
    give its proposals the faster way (:mod:`.proposals`).

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
    attach_proposals(getattr(model, 'rpn_head', None), runner)


def detach_backend(model: nn.Module) -> None:
    """Undo :func:`attach_backend` (no-op where nothing was attached)."""
    for owner, name in ((model, 'extract_feat'),
                        (getattr(model, 'rpn_head', None), 'forward'),
                        (getattr(model, 'rpn_head', None),
                         '_predict_by_feat_single'),
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
