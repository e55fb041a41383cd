# Copyright (c) mmlesion contributors. All rights reserved.
"""The box branch of mmdet's standard RoI head with mmcv RoIAlign layers
(:func:`_box_head_of`) in the backend: the RoIAlign of each level's RoIs
(:class:`RoIAlignGraph`, ONNX's ``RoiAlign`` run by ONNX Runtime) and the
box head's shared FCs, classification and regression, with the number of
RoIs dynamic (:class:`BoxHeadPart`): exported, checked against torch
(:func:`check_box_head`) and put in the RoI head's ``_bbox_forward``
(:func:`_attach_box_head`). The assignment of RoIs to levels and the box
head's decoding and NMS run in torch, as mmdet runs them: nothing a scan
decides (kept boxes, their number) is ever part of a graph. A box head that
cannot be exported stays in torch (:func:`_box_head_part` says why)."""
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .export import (EXPORT_HW, PROBE_BHW, BackendKey, _load_or_export,
                     _onnx_export, _with_metadata)
from .session import (BackendUnavailable, Session, _check_outputs,
                      _first_line)

#: What a box head's export holds and how (:func:`_export_box_head`).
BOX_HEAD_FORMAT = 'mmlesion-box-head-1'


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
    """The exported box branch and torch agree
    (:data:`~.session.TOLERANCE`) on a probe of another batch, image size
    and RoI counts than the exports', one level without RoIs.

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


def _attach_box_head(roi_head: nn.Module, runner: BoxHeadPart) -> None:
    """``roi_head._bbox_forward`` in the backend
    (:func:`~.use.attach_backend`)."""
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
