# Copyright (c) mmlesion contributors. All rights reserved.
"""The detector's convolutions and box head in an exported backend (ONNX
Runtime or OpenVINO on the CPU), the rest in torch (:func:`use_backend`).

What is exported is what does not depend on the data: the detector's
convolutions (:mod:`.features`) and, where the RoI head is mmdet's standard
one with mmcv RoIAlign layers, its box branch (:mod:`.box_head`). The
decoding, NMS and the assignment of RoIs to levels run in torch, as mmdet
runs them: nothing a scan decides (kept boxes, their number) is ever part
of a graph. RoIAlign runs in torch, on channels-last features
(:mod:`mmlesion.models.roi_heads.roi_extractors.roi_align_rows`), and an
RPN's proposals by top-k and level by level (:mod:`.proposals`: the same
proposals as mmdet's). Each part
is exported once and cached beside the checkpoint by the checkpoint, config
and model adjustments (:mod:`.export`), run at torch's thread count and
checked against torch before a scan runs (:func:`check_part`,
:func:`check_box_head`); a part that cannot be exported runs in torch,
with one line saying why (:mod:`.use`). :func:`compare_detections` tells
whether two runs found the same (:mod:`.agreement`).

==================== =====================================================
``session``          an ONNX model run on the CPU; its check against torch
``export``           a part as an ONNX file: traced, keyed, cached
``features``         ``extract_feat`` and the dense head's convolutions
``box_head``         the RoI head's RoIAlign and box head FCs
``proposals``        the RPN's proposals, faster on a CPU
``use``              attach the parts to a detector, or say why not
``agreement``        whether two runs found the same
==================== =====================================================
"""
from .agreement import Agreement, compare_detections
from .box_head import (BOX_HEAD_FORMAT, BoxHeadPart, ChannelsLastBoxHead,
                       ChannelsLastRoIAlign, check_box_head)
from .export import EXPORT_FORMAT, EXPORT_HW, OPSET, PROBE_BHW, BackendKey
from .features import (ExportedPart, FeaturePart, Layout, check_part,
                       dense_head_of, input_channels)
from .session import (BACKEND_PRECISION, TOLERANCE, BackendUnavailable,
                      Session)
from .use import (AttachedParts, BackendStatus, attach_backend,
                  attached_parts, detach_backend, use_backend)

__all__ = [
    'Agreement', 'AttachedParts', 'BACKEND_PRECISION', 'BOX_HEAD_FORMAT',
    'BackendKey', 'BackendStatus', 'BackendUnavailable', 'BoxHeadPart',
    'ChannelsLastBoxHead', 'ChannelsLastRoIAlign',
    'EXPORT_FORMAT', 'EXPORT_HW', 'ExportedPart', 'FeaturePart', 'Layout',
    'OPSET', 'PROBE_BHW', 'Session', 'TOLERANCE',
    'attach_backend', 'attached_parts', 'check_box_head', 'check_part',
    'compare_detections', 'dense_head_of', 'detach_backend',
    'input_channels', 'use_backend'
]
