# Copyright (c) mmlesion contributors. All rights reserved.
"""The box branch of mmdet's standard RoI head with mmcv RoIAlign layers
(:func:`_box_head_of`) in the backend: the RoIAlign of each level's RoIs
in torch on channels-last features (:class:`ChannelsLastRoIAlign`) and the
box head's shared FCs, classification and regression exported, with the
number of RoIs dynamic (:class:`BoxHeadPart`): exported, checked against torch
(:func:`check_box_head`) and put in the RoI head's ``_bbox_forward``
(:func:`_attach_box_head`). The assignment of RoIs to levels and the box
head's decoding and NMS run in torch, as mmdet runs them: nothing a scan
decides (kept boxes, their number) is ever part of a graph. A box head that
cannot be exported stays in torch (:func:`_box_head_part` says why)."""
import copy
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmlesion.models.roi_heads.roi_extractors.roi_align_rows import (
    PooledRoIs, RoIAlignSettings, pool_levels, pools_here)
from .export import (PROBE_BHW, BackendKey, _load_or_export, _onnx_export,
                     _with_metadata)
from .session import (BackendUnavailable, Session, _check_outputs,
                      _first_line)

#: What a box head's export holds and how (:func:`_export_box_head`).
BOX_HEAD_FORMAT = 'mmlesion-box-head-2'


class ChannelsLastRoIAlign:
    """A ``SingleRoIExtractor``'s RoIAlign on channels-last features
    (:func:`~mmlesion.models.roi_heads.roi_extractors.roi_align_rows.
    roi_align_rows`: every level's RoIs in one ``embedding_bag``, grouped by
    sampling grid), pooled as mmcv pools.

    Args:
        roi_head (nn.Module): an mmdet ``StandardRoIHead``
            (:func:`_box_head_of`).
    """

    def __init__(self, roi_head: nn.Module):
        self.settings = [RoIAlignSettings.of(layer) for layer in
                         roi_head.bbox_roi_extractor.roi_layers]

    def __call__(self, feats: Sequence[Tensor],
                 rois: Sequence[Tensor]) -> PooledRoIs:
        """The RoIs of each level (given level by level) pooled from its
        (N, C, H, W) features: (n, out_h * out_w, C), in the order of
        :class:`PooledRoIs` (:func:`pool_levels`)."""
        return pool_levels(feats, rois, self.settings)


class ChannelsLastBoxHead(nn.Module):
    """A box head on (n, out_h * out_w, C) pooled RoIs (bin, then channel:
    :class:`PooledRoIs`), for the export: where its first layer
    is a shared FC on the flattened (C, out_h, out_w) RoI (mmdet's
    ``ConvFCBBoxHead`` without shared convolutions or pooling), that FC's
    input columns reordered once to (out_h, out_w, C), so the graph takes
    the pooled rows as they are; else the pooled RoIs transposed to
    (n, C, out_h, out_w) in the graph.

    Args:
        bbox_head (nn.Module): the RoI head's box head (copied where its
            FC is reordered; never changed).
        output_size (tuple[int, int]): the pooled height and width.
    """

    def __init__(self, bbox_head: nn.Module, output_size: Tuple[int, int]):
        super().__init__()
        self.output_size = tuple(output_size)
        self.reordered = _fc_first(bbox_head)
        if self.reordered:
            bbox_head = copy.deepcopy(bbox_head)
            fc = bbox_head.shared_fcs[0]
            bins = self.output_size[0] * self.output_size[1]
            with torch.no_grad():
                fc.weight.copy_(fc.weight.view(fc.out_features, -1, bins)
                                .transpose(1, 2).reshape_as(fc.weight))
        self.head = bbox_head
        self.train(bbox_head.training)

    def forward(self, pooled: Tensor) -> Tuple[Tensor, Tensor]:
        if self.reordered:  # the head's flatten(1): bin-major columns
            return self.head(pooled)
        return self.head(pooled.transpose(1, 2).reshape(
            -1, pooled.shape[2], *self.output_size))


def _fc_first(bbox_head: nn.Module) -> bool:
    """Whether the box head's ``forward`` is mmdet's ``ConvFCBBoxHead``'s
    and starts with a shared FC on the flattened RoI."""
    from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
    return (isinstance(bbox_head, ConvFCBBoxHead)
            and type(bbox_head).forward is ConvFCBBoxHead.forward
            and bbox_head.num_shared_convs == 0
            and bbox_head.num_shared_fcs > 0
            and not bbox_head.with_avg_pool)


class BoxHeadPart:
    """A standard RoI head's box branch: its RoIAlign on channels-last
    features in torch (:class:`ChannelsLastRoIAlign`, on every thread: on
    4,000 RoIs of a full-size detector half the CPU seconds of ONNX
    Runtime's ``RoiAlign``, which reads a channel at a time, and 0.37 of
    mmcv's, on one thread; OpenVINO's was slower than mmcv's) and its box
    head's ``forward`` (shared FCs, classification and regression) on the
    pooled channels-last RoIs (:class:`ChannelsLastBoxHead`) in the
    backend's session.

    Args:
        align (ChannelsLastRoIAlign): the RoI extractor's RoIAlign.
        head (Session): the box head's session.
        layout (dict): ``levels`` (feature levels), ``channels``,
            ``fc_reordered`` (:attr:`ChannelsLastBoxHead.reordered`),
            ``strides`` and the trace's ``constants``.
    """

    def __init__(self, align: ChannelsLastRoIAlign, head: Session,
                 layout: Mapping[str, Any]):
        self.align = align
        self.session = head
        self.layout = dict(layout)

    def __call__(self, feats: Sequence[Tensor],
                 rois: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """The classification and regression outputs of the RoIs (given
        level by level), in that order (the pooled RoIs' order put back on
        these few columns, not on the pooled RoIs)."""
        with torch.no_grad():
            pooled = self.align([f.detach().cpu() for f in feats],
                                [r.detach().cpu() for r in rois])
        return tuple(
            pooled.in_given_order(torch.from_numpy(a))
            for a in self.session.run([pooled.pooled.numpy()]))


def _box_head_of(model: nn.Module) -> Tuple[Optional[nn.Module], str]:
    """The RoI head whose box branch can be exported (:class:`BoxHeadPart`)
    and, where none, why.

    One of mmdet's ``StandardRoIHead`` with its own ``_bbox_forward``, no
    shared head, a ``SingleRoIExtractor`` (or ``RowsRoIExtractor``) of mmcv
    ``RoIAlign`` layers with average pooling.
    """
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

    from mmlesion.models.roi_heads import RowsRoIExtractor
    roi_head = getattr(model, 'roi_head', None)
    if not isinstance(roi_head, StandardRoIHead):
        return None, 'no standard RoI head'
    if (type(roi_head)._bbox_forward is not StandardRoIHead._bbox_forward
            or roi_head.with_shared_head or not roi_head.with_bbox):
        return None, f'{type(roi_head).__name__} has its own box forward'
    extractor = roi_head.bbox_roi_extractor
    if (type(extractor) not in (SingleRoIExtractor, RowsRoIExtractor)
            or not all(pools_here(layer) for layer in extractor.roi_layers)):
        return None, (f'its RoI extractor ({type(extractor).__name__}) is '
                      "not mmdet's SingleRoIExtractor of mmcv RoIAlign")
    return roi_head, ''


def _box_head_inputs(roi_head: nn.Module, batch: int, hw: Tuple[int, int],
                     counts: Sequence[int],
                     seed: int) -> List[Tensor]:
    """Random features of an image of ``hw`` and ``counts`` random RoIs a
    level (:class:`ChannelsLastRoIAlign`'s inputs)."""
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


def _export_box_head(roi_head: nn.Module,
                     digest: str = '') -> Tuple[bytes, Dict[str, Any]]:
    """Export the box head's ``forward`` (shared FCs, classification and
    regression) on the pooled channels-last RoIs (:class:`ChannelsLastBoxHead`)
    with the number of RoIs dynamic.

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
    head = ChannelsLastBoxHead(roi_head.bbox_head, size)
    with torch.no_grad():
        outs = roi_head.bbox_head(dummy)
        if not (isinstance(outs, tuple) and len(outs) == 2
                and all(isinstance(t, Tensor) for t in outs)):
            raise BackendUnavailable(
                f'{type(roi_head.bbox_head).__name__} gives no '
                'classification and regression tensors')
        data, constants = _onnx_export(
            head, (dummy.flatten(2).transpose(1, 2).contiguous(), ),
            ['pooled'],
            ['cls_score', 'bbox_pred'],
            dict(pooled={0: 'rois'}, cls_score={0: 'rois'},
                 bbox_pred={0: 'rois'}))
    layout = dict(levels=len(extractor.roi_layers),
                  channels=extractor.out_channels,
                  fc_reordered=head.reordered,
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
    layers = roi_head.bbox_roi_extractor.roi_layers
    with torch.no_grad():  # mmcv's RoIAlign, level by level: the reference
        expected = roi_head.bbox_head(torch.cat([
            layer(f, r) for f, r, layer in zip(inputs[:levels],
                                               inputs[levels:], layers)]))
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
        align = ChannelsLastRoIAlign(roi_head)
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
    notes = list(filter(None, [
        'its first FC reordered to take the pooled RoIs channels last'
        if runner.layout.get('fc_reordered') else 'the pooled RoIs '
        'transposed in its graph', note, constants and (
            f"the trace fixed {', '.join(constants)}")]))
    note = f" ({'; '.join(notes)})"
    return runner, (f'RoIAlign in torch (channels last), box head FCs '
                    f'{action}'
                    f'{where}{note}')
