# Copyright (c) mmlesion contributors. All rights reserved.
"""What each LENS mining strategy adds, and at what precision, on a demo set.

LENS (Sec. V) mines missing annotations with three strategies: cross-slice
box propagation, intra-patient lesion matching and cross-dataset mining
(uncertain boxes). :func:`~mmlesion.methods.lens.mining.demo_eval.evaluate_mining` scores
the mined boxes as a whole against the synthetic set's complete truth; this
module breaks that down with the provenance the strategies record on the
tracklets (:class:`~mmlesion.methods.lens.mining.strategies.Tracklet`'s ``key_slices``
and ``match_distance``):

- precision and unannotated-lesion recall per strategy;
- propagation precision per slice distance from the annotated key slice
  (and per slice interval);
- intra-patient precision per embedding-distance bin, for every tracklet
  matching considered (so a bin above delta says what a larger delta would
  add) and for those it matched;
- a sweep over delta (and a minimum tracklet score) of the precision and
  recall the mined boxes (propagation + intra-patient) would have. Matching
  decides every tracklet on its own distance, so the sweep is exact without
  re-running the strategies.

A box is true when its centre lies in a drawn lesion's section on its slice
(annotated or not), as in :func:`~mmlesion.methods.lens.mining.demo_eval.evaluate_mining`;
boxes are rounded to 2 decimals first, as the mined file stores them.
"""
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from mmlesion.methods.lens.mining.demo_eval import (followup_missing_lesions,
                                                    score_boxes)
from mmlesion.methods.lens.mining.strategies import SeriesMining

#: the strategies, in the paper's order.
STRATEGIES = ('propagation', 'intra_patient', 'cross_dataset')
#: edges of the embedding-distance bins (unit vectors: distances <= 2).
DISTANCE_BINS = (0., 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 1.0, 2.0)
#: deltas of the sweep (the run's own delta is added).
SWEEP_DELTAS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)

Lesion = Tuple[str, int]


def _box(box) -> List[float]:
    return [round(float(v), 2) for v in np.asarray(box).reshape(4)]


def mining_records(series: Sequence[SeriesMining]) -> List[dict]:
    """One record per box that :func:`~mmlesion.methods.lens.mining.mine_series` added.

    Args:
        series (Sequence[SeriesMining]): after ``mine_series``.

    Returns:
        list[dict]: ``series``, ``slice``, ``box`` (rounded), ``strategy``
        and its provenance: ``key_distance`` (propagation: slices to the
        nearest key slice whose annotation the tracklet matched),
        ``embedding_distance`` and ``tracklet_score`` (intra-patient),
        ``score`` (cross-dataset: the single-type expert's score).
    """
    out = []
    for s in series:
        for t in s.tracklets:
            if t.matched_by == 'propagation':
                keys = t.key_slices or []
                for z, (box, _) in sorted(t.boxes.items()):
                    if z not in keys:
                        out.append(dict(
                            series=s.series, slice=int(z), box=_box(box),
                            strategy='propagation',
                            key_distance=min(abs(z - k) for k in keys)))
            elif t.matched_by == 'intra_patient':
                for z, (box, _) in sorted(t.boxes.items()):
                    out.append(dict(
                        series=s.series, slice=int(z), box=_box(box),
                        strategy='intra_patient',
                        embedding_distance=t.match_distance,
                        tracklet_score=t.score))
        for z, boxes in sorted(s.uncertain.items()):
            for box, score in boxes:
                out.append(dict(series=s.series, slice=int(z),
                                box=_box(box), strategy='cross_dataset',
                                score=float(score)))
    return out


def intra_patient_candidates(series: Sequence[SeriesMining]) -> List[dict]:
    """The tracklets intra-patient matching considered, matched or not.

    Returns:
        list[dict]: ``series``, ``distance`` (to the nearest annotation of
        another series of the patient), ``score``, ``matched`` and
        ``boxes`` (list of (slice, rounded box)).
    """
    return [
        dict(series=s.series, distance=t.match_distance, score=t.score,
             matched=t.matched_by == 'intra_patient',
             boxes=[(int(z), _box(b)) for z, (b, _) in sorted(
                 t.boxes.items())])
        for s in series for t in s.tracklets
        if t.match_distance is not None
    ]


class _Scorer:
    """Box hits and lesion sets of the processed series of a demo set."""

    def __init__(self, truth: Dict[str, dict], series: Sequence[str]):
        self.truth = truth
        self.series = sorted(set(series) & set(truth))
        self.unannotated: Set[Lesion] = {
            (s, i) for s in self.series
            for i, les in enumerate(truth[s]['lesions'])
            if not les['annotated']}
        self.followup = followup_missing_lesions(truth, self.series)

    def summary(self, boxes: Sequence[Tuple[str, int, Sequence[float]]]
                ) -> dict:
        """Count, precision and recalls of (series, slice, box) triples
        (those of series without truth are left out, as
        ``evaluate_mining`` does)."""
        n, tp, found = score_boxes(self.truth, boxes)
        return dict(
            boxes=n, true_boxes=tp,
            precision=round(tp / n, 4) if n else None,
            unannotated_found=len(found & self.unannotated),
            recall_unannotated=_ratio(found & self.unannotated,
                                      self.unannotated),
            followup_recall=_ratio(found & self.followup, self.followup))


def _ratio(found: set, wanted: set) -> Optional[float]:
    return round(len(found) / len(wanted), 4) if wanted else None


def _triples(records: Sequence[dict]) -> list:
    return [(r['series'], r['slice'], r['box']) for r in records]


def _per_value(scorer: _Scorer, records: Sequence[dict], key: str) -> list:
    """:meth:`_Scorer.summary` of the records per value of ``key``."""
    values = sorted({r[key] for r in records})
    return [dict({key: v}, **scorer.summary(
        _triples([r for r in records if r[key] == v]))) for v in values]


def propagation_by_distance(scorer: _Scorer,
                            records: Sequence[dict]) -> List[dict]:
    """Propagated boxes per key-slice distance, and per slice interval."""
    rows = [dict(r, interval=scorer.truth[r['series']]['interval'])
            for r in records if r['strategy'] == 'propagation'
            and r['series'] in scorer.truth]
    out = []
    for row in _per_value(scorer, rows, 'key_distance'):
        sub = [r for r in rows if r['key_distance'] == row['key_distance']]
        row['by_interval'] = _per_value(scorer, sub, 'interval')
        out.append(row)
    return out


def intra_patient_by_distance(scorer: _Scorer, candidates: Sequence[dict],
                              bins: Sequence[float] = DISTANCE_BINS
                              ) -> List[dict]:
    """Boxes of the considered / matched tracklets per distance bin
    ``[low, high)`` (the last bin is closed)."""
    out = []
    for k, (lo, hi) in enumerate(zip(bins[:-1], bins[1:])):
        last = k == len(bins) - 2
        inside = [c for c in candidates
                  if lo <= c['distance'] and (c['distance'] < hi or last
                                              and c['distance'] <= hi)]
        cand = scorer.summary(_boxes_of(inside))
        matched = scorer.summary(_boxes_of(
            [c for c in inside if c['matched']]))
        out.append(dict(low=lo, high=hi, tracklets=len(inside),
                        candidate_boxes=cand['boxes'],
                        candidate_precision=cand['precision'],
                        matched_tracklets=sum(c['matched'] for c in inside),
                        matched_boxes=matched['boxes'],
                        matched_precision=matched['precision']))
    return out


def _boxes_of(candidates: Sequence[dict]) -> list:
    return [(c['series'], z, b) for c in candidates for z, b in c['boxes']]


def delta_sweep(scorer: _Scorer, records: Sequence[dict],
                candidates: Sequence[dict], deltas: Sequence[float],
                min_scores: Sequence[float] = (0., )) -> List[dict]:
    """Mined boxes (propagation + intra-patient) for other deltas and
    minimum tracklet scores: a tracklet is matched when its distance is
    < delta and its score >= the minimum (propagation is unchanged).

    Returns:
        list[dict]: per (delta, min_score): ``delta``, ``min_score``, the
        :meth:`_Scorer.summary` of all mined boxes, and ``intra_tracklets``,
        ``intra_boxes``, ``intra_precision``.
    """
    prop = _triples([r for r in records if r['strategy'] == 'propagation'])
    out = []
    for delta in sorted(set(float(d) for d in deltas)):
        for smin in min_scores:
            chosen = [c for c in candidates
                      if c['distance'] < delta and c['score'] >= smin]
            intra = _boxes_of(chosen)
            row = dict(delta=delta, min_score=float(smin),
                       **scorer.summary(prop + intra))
            part = scorer.summary(intra)
            row.update(intra_tracklets=len(chosen),
                       intra_boxes=part['boxes'],
                       intra_precision=part['precision'])
            out.append(row)
    return out


def mining_breakdown(series: Sequence[SeriesMining],
                     truth: Dict[str, dict],
                     dist_thr: Optional[float] = None,
                     deltas: Sequence[float] = SWEEP_DELTAS,
                     min_scores: Sequence[float] = (0., ),
                     distance_bins: Sequence[float] = DISTANCE_BINS) -> dict:
    """Precision of each mining strategy against a demo set's full truth.

    Args:
        series (Sequence[SeriesMining]): after
            :func:`~mmlesion.methods.lens.mining.mine_series` (all or some strategies).
        truth (dict): :func:`~mmlesion.methods.lens.mining.demo_eval.load_demo_lesions`.
        dist_thr (float, optional): the delta ``mine_series`` ran with;
            added to the sweep and reported.
        deltas (Sequence[float]): deltas of the sweep.
        min_scores (Sequence[float]): minimum tracklet scores of the sweep.
        distance_bins (Sequence[float]): edges of the embedding-distance
            bins.

    Returns:
        dict: ``dist_thr``, ``series``, ``unannotated_lesions``,
        ``followup_missing_lesions``, ``per_strategy`` (strategy ->
        summary: ``boxes``, ``true_boxes``, ``precision``,
        ``unannotated_found``, ``recall_unannotated``, ``followup_recall``;
        ``intra_patient`` also ``tracklets``), ``mined`` (propagation and
        intra-patient together, as ``evaluate_mining``'s ``mined``),
        ``propagation_by_distance``, ``intra_patient_by_distance`` and
        ``delta_sweep`` (see the functions of the same names). Precisions
        and recalls of nothing are None.
    """
    scorer = _Scorer(truth, [s.series for s in series if s.proposals])
    records = mining_records(series)
    candidates = intra_patient_candidates(series)
    per = {k: scorer.summary(_triples([r for r in records
                                       if r['strategy'] == k]))
           for k in STRATEGIES}
    per['intra_patient']['tracklets'] = sum(c['matched'] for c in candidates)
    mined = _triples([r for r in records if r['strategy'] != 'cross_dataset'])
    sweep = list(deltas) + ([dist_thr] if dist_thr is not None else [])
    return dict(
        dist_thr=dist_thr, series=len(scorer.series),
        unannotated_lesions=len(scorer.unannotated),
        followup_missing_lesions=len(scorer.followup),
        per_strategy=per, mined=scorer.summary(mined),
        propagation_by_distance=propagation_by_distance(scorer, records),
        intra_patient_by_distance=intra_patient_by_distance(
            scorer, candidates, distance_bins),
        delta_sweep=delta_sweep(scorer, records, candidates, sweep,
                                min_scores))
