# Copyright (c) mmlesion contributors. All rights reserved.
"""Run the after-run mechanism checks of a study row on a data split: the
TruncatedRPN mask (:mod:`.trpn_probe`), the attention-gate maps
(:mod:`.gate_probe`), the lesion map the score calibration needs
(:mod:`.seg_probe`) and the Relation Transfer Module's effect on the type
predictions (:mod:`.rtm_probe`) of a trained (or freshly initialised)
model."""
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                           init_lesion_detector)
from mmlesion.methods.retinanet_lesion.models.attention_gate import AttentionGate
from projects.retinanet_lesion.gate_probe import AttentionGateProbe
from projects.elixirnet.rtm_probe import RTMProbe
from projects.retinanet_lesion.seg_probe import LesionMapProbe
from projects.elixirnet.trpn_probe import TRPNTruncationProbe


def annotations_before_resize(pipeline: list) -> bool:
    """Whether a pipeline loads the boxes before resizing (then they are in
    network-input coordinates); mmdet's test pipelines load them after the
    resize, in original-image coordinates.

    Raises:
        ValueError: the pipeline has no ``LoadAnnotations`` step.
    """
    types = [step.get('type', '') for step in pipeline]
    if 'LoadAnnotations' not in types:
        raise ValueError('the split\'s pipeline has no LoadAnnotations step: '
                         'the probes need the ground-truth boxes')
    ann = types.index('LoadAnnotations')
    resizes = [i for i, t in enumerate(types) if 'Resize' in t]
    return not resizes or ann < resizes[0]


def probe_mechanisms(cfg: Config,
                     checkpoint: Optional[str] = None,
                     split: str = 'test',
                     iou_thr: Optional[float] = None,
                     seed: int = 0,
                     max_images: Optional[int] = None) -> dict:
    """Run the model of ``cfg`` over a split and report its mechanisms.

    Args:
        cfg (Config): a row's config (e.g. the one mmengine dumped into the
            row's work dir, which holds its optimised anchors).
        checkpoint (str, optional): trained weights; None tests the
            initialisation (seeded with ``seed``), the reference a trained
            map is compared with.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        iou_thr (float, optional): TRPN lesion-location threshold; default
            the RPN assigner's ``pos_iou_thr`` (0.7 when absent).
        seed (int): seed of the initialisation.
        max_images (int, optional): stop after this many images.

    Returns:
        dict: ``trpn`` (:meth:`TRPNTruncationProbe.summary`) when the model
        has a ``TruncatedRPNHead``, ``gates`` (per gate,
        :meth:`AttentionGateProbe.summary`) when it has attention gates,
        ``lesion_map`` (:meth:`LesionMapProbe.summary`) when it has a lesion
        segmentation head (P0, the first neck output), ``rtm``
        (:meth:`RTMProbe.summary`) when its box head has a Relation
        Transfer Module, and ``images``.

    Raises:
        ValueError: the model has none of these mechanisms.
    """
    torch.manual_seed(seed)
    model = init_lesion_detector(
        cfg, checkpoint, DetectorLoadSettings(init_weights=True)).model
    rpn = getattr(model, 'rpn_head', None)
    trpn = None
    if rpn is not None and hasattr(rpn, 'location_keep_mask'):
        if iou_thr is None:
            iou_thr = cfg.model.get('train_cfg', {}).get('rpn', {}).get(
                'assigner', {}).get('pos_iou_thr', 0.7)
        trpn = TRPNTruncationProbe(rpn, iou_thr)
    has_gates = any(isinstance(m, AttentionGate) for m in model.modules())
    seg = None
    if getattr(model, 'seg_head', None) is not None:
        calib = getattr(model, 'score_calibration', None) or {}
        seg = LesionMapProbe(calib.get('mask_thr', 0.5))
    bbox_head = getattr(getattr(model, 'roi_head', None), 'bbox_head', None)
    rtm = RTMProbe(bbox_head) if hasattr(bbox_head, 'rtm') else None
    if trpn is None and not has_gates and seg is None and rtm is None:
        raise ValueError(f'{type(model).__name__}: no TruncatedRPNHead, '
                         'AttentionGate, lesion segmentation head or '
                         'Relation Transfer Module to probe')
    gates = AttentionGateProbe(model) if has_gates else None
    loader_cfg = cfg[f'{split}_dataloader']
    scale = not annotations_before_resize(loader_cfg.dataset.pipeline)
    loader = Runner.build_dataloader(loader_cfg, seed=seed)
    images = 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            inputs, samples = data['inputs'], data['data_samples']
            boxes = []
            for s in samples:
                b = s.gt_instances.bboxes
                b = b.tensor if hasattr(b, 'tensor') else b
                if scale:
                    w, h = s.metainfo['scale_factor']
                    b = b * b.new_tensor([w, h, w, h])
                boxes.append(b)
            if gates is not None:
                with gates:
                    feats = model.extract_feat(inputs)
                gates.update(boxes, tuple(inputs.shape[-2:]))
            else:
                feats = model.extract_feat(inputs)
            if trpn is not None:
                trpn.update(feats, boxes)
            if seg is not None:
                seg.update(model.seg_head.predict(feats[0], samples), boxes)
            if rtm is not None:
                with rtm:
                    model.predict(inputs, samples)
            images += len(samples)
            if max_images is not None and images >= max_images:
                break
    out = dict(images=images)
    if trpn is not None:
        out['trpn'] = trpn.summary()
    if gates is not None:
        out['gates'] = gates.summary()
    if seg is not None:
        out['lesion_map'] = seg.summary()
    if rtm is not None:
        out['rtm'] = rtm.summary()
    return out
