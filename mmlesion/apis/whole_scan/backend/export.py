# Copyright (c) mmlesion contributors. All rights reserved.
"""A detector's part as an ONNX file: traced once (:func:`_onnx_export`),
its format, key and layout in its metadata, and cached beside the
checkpoint (:func:`_load_or_export`).

Each part is exported with ``torch.onnx.export(..., dynamo=False,
opset_version=17)``, its batch, height and width (and number of RoIs)
dynamic, and cached as ``<checkpoint>.<key>.onnx`` (the convolutions) and
``<checkpoint>.<key>.box_head.onnx``: the key is the SHA-256 of the
checkpoint's SHA-256, the config's text and the model adjustments' record
(:class:`BackendKey`), so a later scan, run or job of the same model, in
either backend, reads it back, and another config or checkpoint exports its
own. The file is written atomically (:mod:`mmlesion.utils.writing.atomic`).
Without a checkpoint (random weights) or where its folder takes no file,
the export lives for the run only. A cached file that fails the check
against torch (the detector's code changed since) is exported again.
"""
import hashlib
import io
import json
import os.path as osp
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from mmlesion.utils.writing.atomic import atomic_write_bytes

from .session import BackendUnavailable, _first_line

#: What an export holds and how (a change here exports again).
EXPORT_FORMAT = 'mmlesion-features-1'
#: The ONNX opset of the export.
OPSET = 17
#: The export's dummy input (height, width) and the check's probe (batch,
#: height, width): multiples of 64 (a stride-64 level of a few pixels),
#: each axis other than the export's.
EXPORT_HW = (192, 256)
PROBE_BHW = (2, 256, 128)


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


def _load_or_export(path: Optional[str], digest: str, fmt: str,
                    export: Callable[[], Tuple[bytes, Any]],
                    runner_of: Callable[[bytes, Mapping[str, Any]], Any]
                    ) -> Tuple[Any, str, Optional[str], Optional[str]]:
    """A part's runner, checked, read from ``path`` where it holds an
    export of this key, else exported (and cached at ``path``); its action,
    file and note (:class:`~.use.BackendStatus`).

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
