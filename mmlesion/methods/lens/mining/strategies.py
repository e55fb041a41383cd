# Copyright (c) mmlesion contributors. All rights reserved.
"""Missing-annotation mining of LENS (Yan et al., TMI 2020, Sec. V): a
trained LENS model's 2D proposals on a partially labelled training set
turned into extra labels by cross-slice box propagation (Sec. V-A,
:func:`propagate_annotations`), intra-patient lesion matching (Sec. V-B,
:func:`match_intra_patient`) and cross-dataset lesion mining (Sec. V-C,
:func:`mine_uncertain`), run in that order by :func:`mine_series`.

``tools/lens_mine_annotations.py`` collects the proposals and writes the
file :class:`~mmlesion.methods.lens.datasets.DeepLesionMinedDataset` reads.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, TypedDict

import numpy as np

from mmlesion.evaluation.functional.box_stacking import (StackSettings,
                                                         stack_slice_boxes)
from mmlesion.structures.box_iou_2d import box_iou
from mmlesion.utils.tool_defaults import tool_defaults
from mmlesion.utils.writing.field_record import FieldRecord


class Percentiles(TypedDict):
    """``n`` values and their 10th / 50th / 90th percentiles (a JSON
    record of the mining tools)."""
    n: int
    p10: float
    p50: float
    p90: float


def summarise(values: np.ndarray) -> Optional[Percentiles]:
    """n and the 10th / 50th / 90th percentiles (None when empty)."""
    if not len(values):
        return None
    p10, p50, p90 = (round(float(np.percentile(values, q)), 4)
                     for q in (10, 50, 90))
    return Percentiles(n=int(len(values)), p10=p10, p50=p50, p90=p90)


@dataclass
class SliceProposals:
    """One expert's proposals on one slice.

    Args:
        z (int): slice index in its series.
        boxes (np.ndarray): (n, 4) x1y1x2y2.
        scores (np.ndarray): (n,).
        embeddings (np.ndarray, optional): (n, D) L2-normalised.
        sites (np.ndarray, optional): (n, 4) where each box is in the body
            and how big (:func:`box_sites`).
    """
    z: int
    boxes: np.ndarray
    scores: np.ndarray
    embeddings: Optional[np.ndarray] = None
    sites: Optional[np.ndarray] = None


@dataclass
class Tracklet:
    """Boxes of one lesion candidate on consecutive slices.

    ``boxes`` maps slice index -> (box, score); ``embedding`` and ``site``
    are those of the highest-scoring box. Provenance, not read by mining:
    ``key_slices``, the slices whose box matched an annotation
    (:func:`propagate_annotations`), and ``match_distance``, the smallest
    distance to an annotation of another series of the patient
    (:func:`match_intra_patient`, matched or not).
    """
    boxes: Dict[int, Tuple[np.ndarray, float]]
    score: float
    embedding: Optional[np.ndarray] = None
    site: Optional[np.ndarray] = None
    matched_by: Optional[str] = None
    key_slices: Optional[List[int]] = None
    match_distance: Optional[float] = None


@dataclass
class SeriesMining:
    """Input and output of mining for one series (one sub-volume).

    Args:
        series (str): series identifier (e.g. the folder name).
        patient (str): patient identifier.
        annotations (dict): slice index -> (k, 4) annotated boxes.
        annotation_embeddings (np.ndarray, optional): (A, D) embeddings of
            the annotations, by increasing slice.
        annotation_sites (np.ndarray, optional): (A, 4) their sites
            (:func:`box_sites`), same order.
        proposals (list[SliceProposals]): the universal expert's
            proposals, with embeddings for strategy 2.
        single_type_proposals (list[SliceProposals]): proposals of the
            single-type dataset experts (strategy 3).
    """
    series: str
    patient: str
    annotations: Dict[int, np.ndarray]
    proposals: List[SliceProposals] = field(default_factory=list)
    single_type_proposals: List[SliceProposals] = field(
        default_factory=list)
    annotation_embeddings: Optional[np.ndarray] = None
    annotation_sites: Optional[np.ndarray] = None
    tracklets: List[Tracklet] = field(default_factory=list)
    mined: Dict[int, List[Tuple[np.ndarray, str]]] = field(
        default_factory=dict)
    uncertain: Dict[int, List[Tuple[np.ndarray, float]]] = field(
        default_factory=dict)


def build_tracklets(proposals: Sequence[SliceProposals],
                    iou_thr: float = 0.5,
                    score_thr: float = 0.) -> List[Tracklet]:
    """Link proposals on consecutive slices into tracklets (Sec. V-A).

    Args:
        proposals (Sequence[SliceProposals]): one entry per slice.
        iou_thr (float): theta: link when IoU > theta.
        score_thr (float): drop weaker proposals first.

    Returns:
        list[Tracklet]: with the embedding of the best box when given.
    """
    if not proposals:
        return []
    lookup = {}
    for p in proposals:
        for j, b in enumerate(np.asarray(p.boxes).reshape(-1, 4)):
            lookup[(p.z, tuple(np.round(b, 4)))] = (p, j)
    findings = stack_slice_boxes([p.z for p in proposals],
                                 [np.asarray(p.boxes) for p in proposals],
                                 [np.asarray(p.scores) for p in proposals],
                                 StackSettings(iou_thr, score_thr=score_thr))
    tracklets = []
    for f in findings:
        boxes = {int(z): (np.asarray(box, dtype=np.float32), float(score))
                 for z, box, score in f.boxes_2d}
        z, (box, _) = max(boxes.items(), key=lambda item: item[1][1])
        p, j = lookup.get((z, tuple(np.round(box, 4))), (None, 0))
        emb = site = None
        if p is not None and p.embeddings is not None:
            emb = np.asarray(p.embeddings[j], dtype=np.float32)
        if p is not None and p.sites is not None:
            site = np.asarray(p.sites[j], dtype=np.float64)
        tracklets.append(Tracklet(boxes=boxes, score=float(f.score),
                                  embedding=emb, site=site))
    return tracklets


def propagate_annotations(tracklets: Sequence[Tracklet],
                          annotations: Dict[int, np.ndarray],
                          iou_thr: float = 0.5
                          ) -> Dict[int, List[np.ndarray]]:
    """Cross-slice box propagation (Sec. V-A): a tracklet with a box of
    IoU > ``iou_thr`` with an annotation on its slice is matched
    (``matched_by='propagation'``); its other boxes become mined.

    Returns:
        dict: slice index -> list of mined boxes.
    """
    mined: Dict[int, List[np.ndarray]] = {}
    for t in tracklets:
        hit = set()
        for z, (box, _) in t.boxes.items():
            ann = annotations.get(z)
            if ann is not None and len(ann) and box_iou(
                    box[None], ann).max() > iou_thr:
                hit.add(z)
        if not hit:
            continue
        t.matched_by = 'propagation'
        t.key_slices = sorted(hit)
        for z, (box, _) in t.boxes.items():
            if z not in hit:
                mined.setdefault(z, []).append(box)
    return mined


#: What intra-patient matching compares (:class:`Matcher`).
MATCHERS = tuple(tool_defaults(__file__)['MATCHERS'])


def box_sites(boxes: np.ndarray, body_box: Sequence[float], z_norm: float,
              spacing: float) -> np.ndarray:
    """Where boxes lie in the body and how big they are: DeepLesion's
    ``Normalized_lesion_location`` (x, y of the box centre relative to the
    body's bounding box on the slice, z along the body) and the log of the
    box's long side in mm.

    Args:
        boxes (np.ndarray): (k, 4) x1y1x2y2, original pixels.
        body_box (Sequence[float]): x0, y0, x1, y1 of the body on the
            slice, same pixels.
        z_norm (float): the slice's normalised z.
        spacing (float): mm per pixel.

    Returns:
        np.ndarray: (k, 4) ``[x, y, z, log(long side / mm)]``.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = (float(v) for v in body_box)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return np.stack([
        ((boxes[:, 0] + boxes[:, 2]) / 2 - x0) / max(x1 - x0, 1.),
        ((boxes[:, 1] + boxes[:, 3]) / 2 - y0) / max(y1 - y0, 1.),
        np.full(len(boxes), float(z_norm)),
        np.log(np.maximum(side * spacing, 1e-3))
    ], axis=1)


@dataclass
class Matcher:
    """The distance of intra-patient lesion matching (Sec. V-B).

    ``kind`` picks what a tracklet and an annotation are compared on:

    - ``'appearance'``: the L2 distance of their embeddings (LENS's RoI
      features standing in for the paper's LesaNet embedding);
    - ``'location'``: the L2 distance of their normalised locations (x, y,
      z of their sites, :func:`box_sites`);
    - ``'combined'``: the mean of the appearance, location and size
      (|difference of the log long sides|) distances, each divided by its
      ``scale`` (:meth:`fit_scale`).

    Args:
        kind (str): one of :data:`MATCHERS`.
        scale (tuple[float, float, float]): appearance, location and size
            scales (``'combined'`` only).
    """
    kind: str = 'appearance'
    scale: Tuple[float, float, float] = (1., 1., 1.)

    def __post_init__(self) -> None:
        if self.kind not in MATCHERS:
            raise ValueError(f'unknown matcher {self.kind!r}; one of '
                             f'{list(MATCHERS)}')

    @property
    def needs(self) -> Tuple[bool, bool]:
        """Whether it reads (embeddings, sites)."""
        return self.kind != 'location', self.kind != 'appearance'

    def distances(self, emb: Optional[np.ndarray], site: Optional[np.ndarray],
                  embs: Optional[np.ndarray],
                  sites: Optional[np.ndarray]) -> np.ndarray:
        """Distances of one box (``emb``, ``site``) to ``n`` others
        (``embs`` (n, D), ``sites`` (n, 4)); what it does not read may be
        None."""
        parts = []
        if self.kind != 'location':
            parts.append(np.linalg.norm(embs - emb[None], axis=1))
        if self.kind != 'appearance':
            parts.append(np.linalg.norm(sites[:, :3] - site[None, :3],
                                        axis=1))
        if self.kind != 'combined':
            return parts[0]
        parts.append(np.abs(sites[:, 3] - site[3]))
        return sum(p / max(sc, 1e-6)
                   for p, sc in zip(parts, self.scale)) / 3.

    def fit_scale(self, series: Sequence['SeriesMining']) -> 'Matcher':
        """This matcher with ``scale`` set to the median appearance,
        location and size distances of the annotations of one patient in
        different series (unchanged when there is no such pair)."""
        if self.kind != 'combined':
            return self
        parts: List[List[float]] = [[], [], []]
        named = {s.series: s for s in series}
        for s, (embs, sites) in _other_series_annotations(series).items():
            own = named[s]
            if sites is None or own.annotation_sites is None:
                continue
            for e, t in zip(own.annotation_embeddings, own.annotation_sites):
                parts[0].extend(np.linalg.norm(embs - e[None], axis=1))
                parts[1].extend(np.linalg.norm(sites[:, :3] - t[None, :3],
                                               axis=1))
                parts[2].extend(np.abs(sites[:, 3] - t[3]))
        if not parts[0]:
            return self
        return Matcher(self.kind, tuple(float(np.median(p)) for p in parts))


def _other_series_annotations(series: Sequence[SeriesMining]
                              ) -> Dict[str, Tuple[np.ndarray,
                                                   Optional[np.ndarray]]]:
    """Series -> (A, D) annotation embeddings and (A, 4) sites (None unless
    every one has them) of the *other* series of its patient (Sec. V-B; the
    series' own annotations are cross-slice propagation's job)."""
    by_patient: Dict[str, List[SeriesMining]] = {}
    for s in series:
        by_patient.setdefault(s.patient, []).append(s)
    out: Dict[str, Tuple[np.ndarray, Optional[np.ndarray]]] = {}
    for members in by_patient.values():
        for s in members:
            others = [
                o for o in members
                if o.series != s.series and o.annotation_embeddings is not
                None and len(o.annotation_embeddings)
            ]
            if not others:
                continue
            sites = None
            if all(o.annotation_sites is not None for o in others):
                sites = np.concatenate([o.annotation_sites for o in others])
            out[s.series] = (np.concatenate(
                [o.annotation_embeddings for o in others]).astype(
                    np.float32), sites)
    return out


def match_intra_patient(series: Sequence[SeriesMining],
                        dist_thr: float = 0.15,
                        min_score: float = 0.,
                        matcher: Optional[Matcher] = None
                        ) -> Dict[str, Dict[int, List[np.ndarray]]]:
    """Intra-patient lesion matching (Sec. V-B): every not yet matched
    tracklet closer than ``dist_thr`` to an annotation of *another series*
    of its patient becomes a mined lesion (``matched_by='intra_patient'``).
    ``dist_thr`` = 0.15 is the paper's value for LesaNet's embedding, not
    LENS's RoI features (:meth:`mmlesion.models.LENS.embed`): calibrate it
    (:mod:`~mmlesion.methods.lens.mining.calibration`).

    Args:
        series (Sequence[SeriesMining]): with tracklets built and
            ``annotation_embeddings`` (and ``annotation_sites`` for a
            matcher reading locations) set.
        dist_thr (float): delta.
        min_score (float): minimum tracklet score of a match.
        matcher (Matcher, optional): the distance.

    Returns:
        dict: series -> slice index -> list of mined boxes.
    """
    matcher = matcher or Matcher()
    need_emb, need_site = matcher.needs
    others = _other_series_annotations(series)
    out: Dict[str, Dict[int, List[np.ndarray]]] = {}
    for s in series:
        embs, sites = others.get(s.series, (None, None))
        if embs is None or (need_site and sites is None):
            continue
        for t in s.tracklets:
            if t.matched_by is not None or (
                    need_emb and t.embedding is None) or (need_site
                                                          and t.site is None):
                continue
            dist = matcher.distances(t.embedding, t.site, embs, sites)
            t.match_distance = float(dist.min())
            if dist.min() < dist_thr and t.score >= min_score:
                t.matched_by = 'intra_patient'
                for z, (box, _) in t.boxes.items():
                    out.setdefault(s.series, {}).setdefault(z,
                                                            []).append(box)
    return out


def mine_uncertain(single_type_proposals: Sequence[SliceProposals],
                   known: Dict[int, np.ndarray],
                   score_thr: float = 0.5,
                   overlap_thr: float = 0.) -> Dict[int, List[tuple]]:
    """Cross-dataset lesion mining (Sec. V-C).

    Args:
        single_type_proposals (Sequence[SliceProposals]): proposals of the
            single-type experts (several entries may share a slice).
        known (dict): slice index -> (k, 4) existing and mined annotations.
        score_thr (float): sigma: keep proposals scoring higher.
        overlap_thr (float): a proposal "overlaps" an annotation when their
            IoU is > overlap_thr (0: any intersection).

    Returns:
        dict: slice index -> list of (box, score) uncertain lesions (the
        overlapping boxes of several experts all kept: ignored regions).
    """
    out: Dict[int, List[tuple]] = {}
    for p in single_type_proposals:
        boxes = np.asarray(p.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(p.scores, dtype=np.float32).reshape(-1)
        keep = scores > score_thr
        if not keep.any():
            continue
        boxes, scores = boxes[keep], scores[keep]
        ann = known.get(p.z)
        if ann is not None and len(ann):
            free = box_iou(boxes, ann).max(axis=1) <= overlap_thr
            boxes, scores = boxes[free], scores[free]
        for b, s in zip(boxes, scores):
            out.setdefault(p.z, []).append((b, float(s)))
    return out


def _embedding_distance_summary(series: Sequence[SeriesMining]) -> dict:
    """Each tracklet's smallest embedding distance to an annotation of
    another series of its patient, for those propagation matched and the
    others (a hint at delta's scale).

    Returns:
        dict: ``same_lesion`` and ``others``, each with ``n`` and the 10th,
        50th and 90th percentiles.
    """
    others = _other_series_annotations(series)
    dists = dict(same_lesion=[], others=[])
    for s in series:
        if s.series not in others:
            continue
        ann = others[s.series][0]
        for t in s.tracklets:
            if t.embedding is None:
                continue
            d = float(np.linalg.norm(ann - t.embedding[None], axis=1).min())
            key = 'same_lesion' if t.matched_by == 'propagation' \
                else 'others'
            dists[key].append(d)
    return {k: summarise(v) or dict(n=0) for k, v in dists.items()}


#: The defaults of :class:`MiningSettings` (``tool_defaults.json``: what
#: ``tools/lens_mine_annotations.py --help`` shows).
_SHOWN = tool_defaults(__file__)['MiningSettings']


@dataclass(frozen=True)
class MiningSettings:
    """How :func:`mine_series` mines (the options of
    ``tools/lens_mine_annotations.py``).

    Args:
        iou_thr (float): theta (tracklets and key-slice IoU).
        dist_thr (float): delta (embedding distance).
        score_thr (float): sigma (single-type expert score).
        proposal_score_thr (float): proposals below it are not linked into
            tracklets.
        match_score_thr (float): minimum tracklet score of an
            intra-patient match (:func:`match_intra_patient`).
        strategies (Sequence[str]): which strategies to run.
        matcher (str): what intra-patient matching compares
            (:class:`Matcher`).
    """
    iou_thr: float = _SHOWN['iou_thr']
    dist_thr: float = _SHOWN['dist_thr']
    score_thr: float = _SHOWN['score_thr']
    proposal_score_thr: float = _SHOWN['proposal_score_thr']
    match_score_thr: float = _SHOWN['match_score_thr']
    strategies: Sequence[str] = tuple(_SHOWN['strategies'])
    matcher: str = _SHOWN['matcher']


@dataclass
class MiningCounts(FieldRecord):
    """What :func:`mine_series` found (a mined file's ``counts``).

    Args:
        tracklets (int): tracklets built over all series.
        propagation, intra_patient (int): boxes mined by each strategy.
        cross_dataset (int): uncertain boxes of the single-type experts.
        mined_lesions_intra_patient (int): tracklets matched by the
            intra-patient strategy.
        embedding_distances (dict): :func:`_embedding_distance_summary`.
    """
    tracklets: int = 0
    propagation: int = 0
    intra_patient: int = 0
    cross_dataset: int = 0
    mined_lesions_intra_patient: int = 0
    embedding_distances: dict = field(default_factory=dict)


def mine_series(series: Sequence[SeriesMining],
                settings: MiningSettings = MiningSettings()
                ) -> MiningCounts:
    """Run the three strategies in the paper's order; fills ``mined``
    (slice -> [(box, strategy)]) and ``uncertain`` of every series.

    Args:
        series (Sequence[SeriesMining]): inputs.
        settings (MiningSettings): the thresholds, strategies and matcher.

    Returns:
        MiningCounts: tracklets, mined boxes per strategy, uncertain boxes.
    """
    st = settings
    strategies = st.strategies
    Matcher(st.matcher)  # refuses an unknown one before any work
    unknown = set(strategies) - {'propagation', 'intra_patient',
                                 'cross_dataset'}
    if unknown:
        raise ValueError(f'unknown mining strategies {sorted(unknown)}')
    counts = MiningCounts()
    for s in series:
        s.tracklets = build_tracklets(s.proposals, st.iou_thr,
                                      st.proposal_score_thr)
        counts.tracklets += len(s.tracklets)
        s.mined, s.uncertain = {}, {}
        if 'propagation' in strategies:
            for z, boxes in propagate_annotations(s.tracklets, s.annotations,
                                                  st.iou_thr).items():
                s.mined.setdefault(z, []).extend(
                    (b, 'propagation') for b in boxes)
                counts.propagation += len(boxes)
    counts.embedding_distances = _embedding_distance_summary(series)
    if 'intra_patient' in strategies:
        matched = match_intra_patient(
            series, st.dist_thr, st.match_score_thr,
            Matcher(st.matcher).fit_scale(series))
        for s in series:
            for z, boxes in matched.get(s.series, {}).items():
                s.mined.setdefault(z, []).extend(
                    (b, 'intra_patient') for b in boxes)
                counts.intra_patient += len(boxes)
            counts.mined_lesions_intra_patient += sum(
                t.matched_by == 'intra_patient' for t in s.tracklets)
    if 'cross_dataset' in strategies:
        for s in series:
            known = {}
            for z in set(s.annotations) | set(s.mined):
                parts = [np.asarray(s.annotations.get(z, np.zeros((0, 4))),
                                    dtype=np.float32).reshape(-1, 4)]
                parts += [b[None] for b, _ in s.mined.get(z, [])]
                known[z] = np.concatenate(parts)
            s.uncertain = mine_uncertain(s.single_type_proposals, known,
                                         st.score_thr)
            counts.cross_dataset += sum(
                len(v) for v in s.uncertain.values())
    return counts
