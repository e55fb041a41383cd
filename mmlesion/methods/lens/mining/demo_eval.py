# Copyright (c) mmlesion contributors. All rights reserved.
"""Score mined annotations against the synthetic demo set's ground truth.

The demo generator leaves some lesions out of ``DL_info.csv`` on purpose
and lists every lesion it drew in ``demo_meta.json`` (3D ellipsoids), which
makes the precision and recall of LENS's mining measurable.
"""
import json
import math
import os.path as osp
from typing import (Dict, Iterable, List, NamedTuple, Sequence, Set, Tuple,
                    TypedDict)


class DemoSeries(TypedDict):
    """A series of a demo set: its key slice, the slices' position and
    spacing, whether it is a follow-up study of the patient's first one,
    and its lesions as ``demo_meta.json`` lists them (``center_px``,
    ``center_mm``, ``semi_axes_mm``, ``annotated``, ``lesion_id``, ...)."""
    key_index: int
    z_mm: float
    interval: float
    spacing: float
    followup: bool
    lesions: List[dict]


class KindScore(TypedDict):
    """Boxes, their precision and the recall of the unannotated lesions."""
    boxes: int
    precision: float
    recall_unannotated: float


class SourceScore(KindScore):
    """:class:`KindScore` of one strategy, plus its recall of the lesions
    missing from follow-up studies."""
    recall_followup_missing: float


class FollowupRecall(TypedDict):
    """The lesions missing from follow-up studies and their recall."""
    lesions: int
    mined_recall: float
    uncertain_recall: float
    any_recall: float


class MiningEvaluation(TypedDict):
    """What :func:`evaluate_mining` measured (module doc)."""
    unannotated_lesions: int
    series: int
    mined: KindScore
    uncertain: KindScore
    any_recall_unannotated: float
    by_source: Dict[str, SourceScore]
    followup_missing: FollowupRecall


def load_demo_lesions(meta_path: str) -> Dict[str, DemoSeries]:
    """Lesions of every series of a demo set, by series folder."""
    if not osp.isfile(meta_path):
        raise FileNotFoundError(f'demo meta file not found: {meta_path}')
    with open(meta_path) as f:
        meta = json.load(f)
    out: Dict[str, DemoSeries] = {}
    for key in meta.get('key_slices', []):
        stem = osp.splitext(key['file_name'])[0]
        series, index = stem.rsplit('_', 1)
        entry = out.setdefault(
            series,
            DemoSeries(key_index=int(index), z_mm=float(key['z_mm']),
                       interval=float(key['slice_interval']),
                       spacing=float(key['spacing']),
                       followup=bool(key.get('followup', False)),
                       lesions=[]))
        seen = {tuple(les['center_mm']) for les in entry['lesions']}
        for les in key['lesions']:
            if tuple(les['center_mm']) not in seen:
                entry['lesions'].append(les)
    return out


def _hits(info: dict, z: int, box: Sequence[float]) -> List[int]:
    """Indices of the lesions whose section on slice z contains the box
    centre."""
    z_mm = info['z_mm'] + (z - info['key_index']) * info['interval']
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hits = []
    for i, les in enumerate(info['lesions']):
        a, _, c = les['semi_axes_mm']
        dz = (z_mm - les['center_mm'][2]) / c
        if abs(dz) >= 1.:
            continue
        radius_px = a * math.sqrt(1. - dz * dz) / info['spacing'] + 1.
        px, py = les['center_px']
        if math.hypot(cx - px, cy - py) <= radius_px:
            hits.append(i)
    return hits


def followup_missing_lesions(truth: Dict[str, dict],
                              series: Sequence[str]) -> Set[Tuple[str, int]]:
    """The lesions of the follow-up ``series`` that have no CSV row there
    but one in another study of the patient (same ``lesion_id``): what LENS's
    intra-patient lesion matching (Sec. V-B) can recover.

    Args:
        truth (dict): :func:`load_demo_lesions` of the whole set.
        series (Sequence[str]): series folders to look at.

    Returns:
        set[tuple[str, int]]: (series folder, lesion index) pairs.
    """
    annotated = {les['lesion_id'] for info in truth.values()
                 for les in info['lesions']
                 if les['annotated'] and 'lesion_id' in les}
    return {(s, i)
            for s in series if truth[s]['followup']
            for i, les in enumerate(truth[s]['lesions'])
            if not les['annotated'] and les.get('lesion_id') in annotated}


class BoxScore(NamedTuple):
    """Boxes scored, how many are true, and the (series, lesion index)
    pairs they hit."""
    scored: int
    true: int
    hit: Set[Tuple[str, int]]


def score_boxes(truth: Dict[str, dict],
                boxes: Iterable[Tuple[str, int, Sequence[float]]]
                ) -> BoxScore:
    """Score ``(series, slice, box)`` triples against the truth: a box is
    true when its centre lies in a drawn lesion's section on its slice;
    boxes of series without truth are left out.

    Returns:
        tuple: number of boxes scored, number of true boxes, and the
        (series, lesion index) pairs they hit.
    """
    n = tp = 0
    found: Set[Tuple[str, int]] = set()
    for name, z, box in boxes:
        info = truth.get(name)
        if info is None:
            continue
        n += 1
        hits = _hits(info, z, box)
        tp += bool(hits)
        found.update((name, i) for i in hits)
    return BoxScore(n, tp, found)


def _recall(found: Set[Tuple[str, int]],
            wanted: Set[Tuple[str, int]]) -> float:
    return round(len(found & wanted) / len(wanted), 4) if wanted else \
        float('nan')


def split_by_strategy(slices: Sequence[dict]) -> Dict[str, List[dict]]:
    """Mined-file entries restricted to the boxes of each mining strategy
    (``cross_dataset``: the uncertain boxes).

    Returns:
        dict: strategy -> entries.
    """
    out: Dict[str, List[dict]] = dict(propagation=[], intra_patient=[],
                                      cross_dataset=[])
    for s in slices:
        for name in ('propagation', 'intra_patient'):
            boxes = [b for b, src in zip(s.get('mined', []),
                                         s.get('mined_sources', []))
                     if src == name]
            out[name].append(dict(s, mined=boxes, mined_sources=[name] *
                                  len(boxes), uncertain=[]))
        out['cross_dataset'].append(
            dict(s, mined=[], mined_sources=[],
                 uncertain=s.get('uncertain', [])))
    return out


def evaluate_mining(slices: Sequence[dict],
                    meta_path: str) -> MiningEvaluation:
    """Precision / recall of mined and uncertain boxes on a demo set.

    Args:
        slices (Sequence[dict]): entries of the mined file (``series_dir``,
            ``slice``, ``mined``, ``uncertain``).
        meta_path (str): the set's ``demo_meta.json``.

    Returns:
        MiningEvaluation: for ``mined`` and ``uncertain`` boxes: number,
        precision (box centre inside a drawn lesion) and recall of the
        unannotated lesions of the processed series (hit on any slice);
        ``any_recall`` for both together; ``unannotated_lesions``;
        ``followup_missing``: the count of :func:`followup_missing_lesions`
        and their recall by mined, uncertain and any boxes; ``by_source``:
        boxes, precision and both recalls of each mining strategy alone
        (:func:`split_by_strategy`).
    """
    truth = load_demo_lesions(meta_path)
    series = sorted({s['series_dir'] for s in slices} & set(truth))
    unannotated = {(s, i)
                   for s in series
                   for i, les in enumerate(truth[s]['lesions'])
                   if not les['annotated']}
    found_any = set()
    found_by_kind = {}
    scores = {}
    for kind in ('mined', 'uncertain'):
        n, tp, found = score_boxes(
            truth, ((s['series_dir'], s['slice'], box) for s in slices
                    for box in s.get(kind, [])))
        found &= unannotated
        found_any |= found
        found_by_kind[kind] = found
        scores[kind] = KindScore(
            boxes=n,
            precision=round(tp / n, 4) if n else float('nan'),
            recall_unannotated=_recall(found, unannotated))
    followup = followup_missing_lesions(truth, series)
    by_source = {}
    for name, part in split_by_strategy(slices).items():
        kind = 'uncertain' if name == 'cross_dataset' else 'mined'
        n, tp, found = score_boxes(
            truth, ((s['series_dir'], s['slice'], box) for s in part
                    for box in s.get(kind, [])))
        by_source[name] = SourceScore(
            boxes=n, precision=round(tp / n, 4) if n else float('nan'),
            recall_unannotated=_recall(found & unannotated, unannotated),
            recall_followup_missing=_recall(found, followup))
    return MiningEvaluation(
        unannotated_lesions=len(unannotated), series=len(series),
        mined=scores['mined'], uncertain=scores['uncertain'],
        any_recall_unannotated=_recall(found_any, unannotated),
        by_source=by_source,
        followup_missing=FollowupRecall(
            lesions=len(followup),
            mined_recall=_recall(found_by_kind['mined'], followup),
            uncertain_recall=_recall(found_by_kind['uncertain'], followup),
            any_recall=_recall(found_any, followup)))
