# Copyright (c) mmlesion contributors. All rights reserved.
"""An ONNX model run on the CPU (:class:`Session`: ONNX Runtime or
OpenVINO, at torch's thread count) and the check of its outputs against
torch's (:func:`_check_outputs`).

OpenVINO reads the ONNX file with its own reader and computes in f32, set
explicitly (its CPU default on a bf16-capable CPU is bf16);
``openvino-bf16`` asks for bf16. Each load is checked before a scan runs:
the backend and torch on a probe of another batch size, height and width
(and RoI counts) than the export's (a shape the trace baked in shows there,
and a condition on the values the trace turned into a constant where the
random probe takes the other way than the export's zeros) agree to
:data:`TOLERANCE` of each output's magnitude.
"""
import os
from typing import Any, List, Sequence

import numpy as np
import torch
from torch import Tensor

#: The exported backends and the precision each computes in.
BACKEND_PRECISION = {'onnxruntime': 'f32', 'openvino': 'f32',
                     'openvino-bf16': 'bf16'}
#: Largest difference allowed between the backend and torch on the probe,
#: relative to each output's largest magnitude, by the backend's precision
#: (f32: about 1e-6 measured; bf16: up to 8e-2 on random weights: the check
#: at bf16 sees a baked shape, not a subtly baked value).
TOLERANCE = {'f32': 1e-4, 'bf16': .15}


class BackendUnavailable(RuntimeError):
    """The detector's part cannot run in the backend (the reason)."""


def _first_line(err: Any) -> str:
    return (str(err).strip().splitlines() or [''])[0][:200]


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
