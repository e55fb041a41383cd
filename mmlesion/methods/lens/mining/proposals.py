# Copyright (c) mmlesion contributors. All rights reserved.
"""Collect a trained LENS model's proposals on every stored slice of a
DeepLesion-layout training set (LENS Sec. III, step 2)."""
import hashlib
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset

from mmlesion.datasets.deeplesion.series_slices import iter_series_slices
from mmlesion.utils.checkpoints.checksum import sha256_file
from .strategies import SeriesMining, SliceProposals, box_sites

#: mm per unit of normalised z when no series of the set has two key slices
#: to measure it on (a body about a metre long)
DEFAULT_BODY_LENGTH_MM = 1000.


def body_box(packed: dict) -> np.ndarray:
    """(x0, y0, x1, y1) of the body on a packed slice, original pixels: the
    crop of ``ClipBlackBorder`` when the pipeline clipped the border, else
    the bounding box of the key channel's pixels above its minimum (the air
    after windowing)."""
    meta = packed['data_samples'].metainfo
    sx, sy = meta.get('scale_factor', (1., 1.))
    key = packed['inputs'][packed['inputs'].shape[0] // 2].float().numpy()
    h, w = key.shape
    if 'crop_offset' in meta:
        dx, dy = meta['crop_offset']
        return np.array([dx, dy, dx + w / sx, dy + h / sy])
    body = key > key.min()
    rows, cols = np.flatnonzero(body.any(1)), np.flatnonzero(body.any(0))
    if not rows.size:
        return np.array([0., 0., w / sx, h / sy])
    return np.array([cols[0] / sx, rows[0] / sy, (cols[-1] + 1) / sx,
                     (rows[-1] + 1) / sy])


def _fill_slice_z(series: Sequence[SeriesMining],
                  anchors: Dict[str, list]) -> None:
    """Normalised z of every proposal's site: that of the nearest key slice
    of its series (the mean of its annotations' z) plus the distance in mm
    times the set's z per mm (the median over series with two key slices of
    different z; :data:`DEFAULT_BODY_LENGTH_MM` without one)."""
    slopes = []
    for pts in anchors.values():
        pts = sorted(pts)
        for (k0, z0, mm), (k1, z1, _) in zip(pts, pts[1:]):
            if k1 != k0 and z1 != z0:
                slopes.append((z1 - z0) / ((k1 - k0) * mm))
    per_mm = float(np.median(slopes)) if slopes else \
        1. / DEFAULT_BODY_LENGTH_MM
    for s in series:
        pts = anchors.get(s.series)
        for p in s.proposals:
            if p.sites is None or not len(p.sites):
                continue
            if not pts:
                p.sites = None
                continue
            k, z, mm = min(pts, key=lambda a: abs(a[0] - p.z))
            p.sites[:, 2] = z + (p.z - k) * mm * per_mm


def _valid(res) -> tuple:
    """numpy boxes / scores / embeddings of one result, without degenerate
    boxes (a detection clipped at the image border can have zero width)."""
    boxes = res.bboxes.cpu().numpy()
    keep = ((boxes[:, 2] - boxes[:, 0]) >= 0.1) & (
        (boxes[:, 3] - boxes[:, 1]) >= 0.1)
    emb = res.embeddings.cpu().numpy()[keep] if 'embeddings' in res else None
    return boxes[keep], res.scores.cpu().numpy()[keep], emb


def embed_boxes(model: torch.nn.Module, data: dict,
                boxes: np.ndarray) -> np.ndarray:
    """LENS embeddings (:meth:`mmlesion.models.LENS.embed`) of boxes on one
    preprocessed slice.

    Args:
        model (LENS): the model.
        data (dict): ``model.data_preprocessor`` output of one sample.
        boxes (np.ndarray): (k, 4) boxes in original pixels (moved here by
            the sample's ``crop_offset`` when its border was clipped, then
            scaled by its ``scale_factor``).

    Returns:
        np.ndarray: (k, D) unit-norm embeddings.
    """
    meta = data['data_samples'][0].metainfo
    scale = np.tile(np.array(meta.get('scale_factor', (1., 1.)), np.float32),
                    2)
    offset = np.tile(np.array(meta.get('crop_offset', (0., 0.)), np.float32),
                     2)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    with torch.no_grad():
        emb = model.embed(data['inputs'],
                          [torch.from_numpy((boxes - offset) * scale)])
    return emb.cpu().numpy()


@torch.no_grad()
def collect_series_proposals(model: torch.nn.Module,
                             dataset: BaseDataset,
                             universal_expert: int = 0,
                             single_type_experts: Sequence[int] = (),
                             max_offset: Optional[int] = None,
                             show_progress: bool = True
                             ) -> List[SeriesMining]:
    """Run LENS's experts on all stored slices of the dataset's series.

    Args:
        model (LENS): a trained LENS model (eval mode is set here).
        dataset (DeepLesionDataset): the partially labelled training set,
            with a test pipeline that ends in ``PackDetInputs``.
        universal_expert (int): the expert of this dataset.
        single_type_experts (Sequence[int]): experts of the fully labelled
            single-type datasets (cross-dataset mining).
        max_offset (int, optional): only slices at most this many slices
            from a key slice of the series (all stored slices if None).
        show_progress (bool): mmengine progress bar over the slices.

    Returns:
        list[SeriesMining]: one per series, with proposals of every
        processed slice (also those without proposals), annotations of the
        key slices, their embeddings and the sites of both
        (:func:`~.strategies.box_sites`).
    """
    model.eval()
    experts = [int(universal_expert)] + [int(e) for e in single_type_experts]
    results: Dict[str, SeriesMining] = {}
    anchors: Dict[str, list] = {}
    for series_dir, z, template, is_key, packed in iter_series_slices(
            dataset, max_offset, show_progress):
        name = osp.basename(osp.normpath(series_dir))
        sm = results.get(name)
        if sm is None:
            sm = results[name] = SeriesMining(
                series=name,
                patient=str(template.get('patient_id', name)),
                annotations={},
                annotation_embeddings=np.zeros((0, 0), np.float32),
                annotation_sites=np.zeros((0, 4)))
        data = model.data_preprocessor(
            dict(inputs=[packed['inputs']],
                 data_samples=[packed['data_samples']]), False)
        outs = model.predict_experts(data['inputs'], data['data_samples'],
                                     experts=experts, rescale=True,
                                     with_embeddings=True)
        body, spacing = body_box(packed), float(template['spacing'])
        proposals = SliceProposals(z, *_valid(outs[0][0]))
        proposals.sites = box_sites(proposals.boxes, body, np.nan, spacing)
        sm.proposals.append(proposals)
        for out in outs[1:]:
            sm.single_type_proposals.append(
                SliceProposals(z, *_valid(out[0])[:2]))
        if is_key:
            kept = [ins for ins in template['instances']
                    if not ins.get('ignore_flag', 0)]
            boxes = np.array([ins['bbox'] for ins in kept],
                             np.float32).reshape(-1, 4)
            sm.annotations[z] = boxes
            if len(boxes):
                emb = embed_boxes(model, data, boxes)
                prev = sm.annotation_embeddings
                sm.annotation_embeddings = emb if prev.size == 0 else \
                    np.concatenate([prev, emb])
                zs = [ins.get('normalized_location', [np.nan] * 3)[2]
                      for ins in kept]
                if np.isnan(zs).any():  # no location: location unknown
                    sm.annotation_sites = None
                if sm.annotation_sites is not None:
                    sites = box_sites(boxes, body, 0., spacing)
                    sites[:, 2] = zs
                    sm.annotation_sites = np.concatenate(
                        [sm.annotation_sites, sites])
                    anchors.setdefault(name, []).append(
                        (z, float(np.mean(zs)),
                         float(template['slice_interval'])))
    _fill_slice_z(list(results.values()), anchors)
    return list(results.values())


def proposals_fingerprint(cfg: Config, checkpoint: str,
                          experts: Sequence[int],
                          max_offset: Optional[int]) -> str:
    """sha256 of what :func:`collect_series_proposals` depends on: the
    merged config, the checkpoint's bytes, the experts (the mined dataset's
    first) and the slices.

    Args:
        cfg (Config): the config, options merged.
        checkpoint (str): the model's weights.
        experts (Sequence[int]): universal expert, then single-type ones.
        max_offset (int, optional): as in :func:`collect_series_proposals`.

    Returns:
        str: the hex digest.
    """
    digest = hashlib.sha256(sha256_file(checkpoint).encode())
    digest.update(json.dumps(
        dict(config=cfg.to_dict(), experts=[int(e) for e in experts],
             max_offset=max_offset), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def series_to_entries(series: Sequence[SeriesMining]) -> List[dict]:
    """Entries of the mined file (one per processed slice)."""
    out = []
    for s in series:
        for z in sorted({p.z for p in s.proposals}):
            mined = s.mined.get(z, [])
            unc = s.uncertain.get(z, [])
            out.append(dict(
                series_dir=s.series, slice=int(z),
                mined=[[round(float(v), 2) for v in b] for b, _ in mined],
                mined_sources=[src for _, src in mined],
                uncertain=[[round(float(v), 2) for v in b] for b, _ in unc],
                uncertain_scores=[round(float(sc), 4) for _, sc in unc]))
    return out
