# Copyright (c) mmlesion contributors. All rights reserved.
"""Intra-patient matchers compared on synthetic follow-ups, and every mining
source scored, at the miner's defaults (``projects/lens/RESULTS.md``,
"Intra-patient matching: what the match compares").

For each demo set (a ``demo_deeplesion`` folder of
``projects/study_demo/tools/generate_study_data.py`` with follow-up
studies): one trained LENS collects its proposals on the training split once (every stored
slice, the mining tool's default; ``--max-offset`` keeps those within that
many of a key slice); then, per matcher
(:class:`~mmlesion.methods.lens.mining.strategies.Matcher`), delta is calibrated on the
annotated lesions of one patient in different series (identity: the
generator's ``lesion_id``; the largest delta with pair precision >= 0.9, as
``tools/lens_mine_annotations.py`` does with its location proxy on real
data) and the three strategies run at the tool's defaults (theta 0.5, sigma
0.5, proposals >= 0.05, every tracklet matchable). Scored: the matched new
lesion instances (:func:`score_matched_lesions`,
the paper's measure), and each source's boxes
(:func:`~mmlesion.methods.lens.mining.demo_eval.evaluate_mining`).

Example (from the folder holding ``data/demo_deeplesion`` and
``data/demo_lung``, the model's training data)::

    python projects/lens/matcher_comparison.py CONFIG CHECKPOINT \\
        --sets data/demo_deeplesion /sets/s1/demo_deeplesion \\
        --out matchers.json
"""
# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import os.path as osp  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Dict, List, Sequence, Set, Tuple  # noqa: E402

import numpy as np  # noqa: E402

from mmlesion.methods.lens.mining.demo_eval import (  # noqa: E402
    _hits, followup_missing_lesions)
from mmlesion.methods.lens.mining.strategies import (  # noqa: E402
    MATCHERS, Matcher)


@dataclass
class MatchedLesions:
    """New lesion instances of intra-patient matching scored against a demo
    set's truth: the measure of the paper's check ("We randomly checked 100
    of the new instances and found 90% are true lesions", Sec. VI-D), on
    every instance instead of 100.

    Args:
        matched (int): tracklets matched (new lesion instances).
        true (int): of them, those whose best box hits a drawn lesion.
        followup_missing (int): follow-up lesions without a row that are
            annotated in another study (:func:`~mmlesion.methods.lens.
            mining.demo_eval.followup_missing_lesions`).
        found (int): of them, those a matched tracklet hits on some slice.
    """
    matched: int
    true: int
    followup_missing: int
    found: int

    @property
    def precision(self) -> float:
        return self.true / self.matched if self.matched else float('nan')

    @property
    def recall(self) -> float:
        return self.found / self.followup_missing if \
            self.followup_missing else float('nan')

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (0 when nothing is
        matched or found)."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.


def score_matched_lesions(series: Sequence, truth: Dict[str, dict]
                          ) -> MatchedLesions:
    """Score the tracklets :func:`~mmlesion.methods.lens.mining.strategies.
    match_intra_patient` matched (``matched_by == 'intra_patient'``).

    Args:
        series (Sequence[SeriesMining]): mined series.
        truth (dict): :func:`~mmlesion.methods.lens.mining.demo_eval.
            load_demo_lesions` of the set.

    Returns:
        MatchedLesions: the counts.
    """
    names = [s.series for s in series if s.series in truth]
    wanted = followup_missing_lesions(truth, names)
    matched = true = 0
    found: Set[Tuple[str, int]] = set()
    for s in series:
        if s.series not in truth:
            continue
        for t in s.tracklets:
            if t.matched_by != 'intra_patient':
                continue
            matched += 1
            best = max(t.boxes, key=lambda z: t.boxes[z][1])
            true += bool(_hits(truth[s.series], best, t.boxes[best][0]))
            for z, (box, _) in t.boxes.items():
                found.update((s.series, i)
                             for i in _hits(truth[s.series], z, box))
    return MatchedLesions(matched, true, len(wanted), len(found & wanted))


def annotation_identities(series: Sequence, truth: Dict[str, dict]
                          ) -> List[tuple]:
    """(series, patient, lesion id or None, embedding, site) of every
    annotation of the mined series, in their stored order."""
    out = []
    for s in series:
        info = truth.get(s.series)
        boxes = [(z, b) for z in sorted(s.annotations)
                 for b in np.asarray(s.annotations[z]).reshape(-1, 4)]
        for k, (z, box) in enumerate(boxes):
            hits = _hits(info, z, box) if info else []
            lid = info['lesions'][hits[0]].get('lesion_id') if hits else None
            out.append((s.series, s.patient, lid,
                        s.annotation_embeddings[k], s.annotation_sites[k]))
    return out


def calibrated_delta(matcher: Matcher, annotations: List[tuple]) -> dict:
    """delta of ``matcher`` on the annotated pairs (same patient, other
    series), identity by ``lesion_id``."""
    from mmlesion.methods.lens.mining.calibration import (choose_delta,
                                                          pair_distances)
    known = [a for a in annotations if a[2] is not None]

    def distance(i: int, j: int) -> float:
        a, b = known[i], known[j]
        return float(matcher.distances(a[3], a[4], b[3][None], b[4][None])[0])

    same, diff = pair_distances(np.zeros((len(known), 1)),
                                [a[0] for a in known], [a[1] for a in known],
                                lambda i, j: known[i][2] == known[j][2],
                                distance)
    return choose_delta(same, diff, 0.9)


def compare(series: Sequence, meta_path: str) -> dict:
    """Every matcher on one set's collected proposals."""
    from mmlesion.methods.lens.mining import MiningSettings, mine_series
    from mmlesion.methods.lens.mining.demo_eval import (evaluate_mining,
                                                        load_demo_lesions)
    from mmlesion.methods.lens.mining.proposals import series_to_entries
    truth = load_demo_lesions(meta_path)
    annotations = annotation_identities(series, truth)
    out = {}
    for kind in MATCHERS:
        run = copy.deepcopy(series)
        matcher = Matcher(kind).fit_scale(run)
        cal = calibrated_delta(matcher, annotations)
        counts = mine_series(run, MiningSettings(
            dist_thr=cal['delta'], proposal_score_thr=0.05, matcher=kind))
        lesions = score_matched_lesions(run, truth)
        out[kind] = dict(
            delta=cal['delta'], calibration=cal, scale=matcher.scale,
            tracklets=counts.tracklets,
            matched=lesions.matched, true=lesions.true,
            precision=lesions.precision,
            followup_missing=lesions.followup_missing,
            found=lesions.found, recall=lesions.recall, f1=lesions.f1,
            by_source=evaluate_mining(series_to_entries(run),
                                      meta_path)['by_source'])
    return out


def paired(results: List[dict], a: str, b: str) -> dict:
    """F1 of ``a`` minus ``b`` per set, mean, std (ddof 1) and whether the
    mean exceeds 2 std (the rule of RESULTS.md). A set without a test
    lesion (no follow-up lesion without a row) has no recall, so no F1 to
    compare: it is left out (``per_set`` None), and ``test_lesions`` counts
    those of the sets compared."""
    used = [r for r in results if r[a]['followup_missing'] > 0]
    diff = np.array([r[a]['f1'] - r[b]['f1'] for r in used])
    std = float(diff.std(ddof=1)) if len(diff) > 1 else float('nan')
    mean = float(diff.mean()) if len(diff) else float('nan')
    return dict(per_set=[round(r[a]['f1'] - r[b]['f1'], 4)
                         if r[a]['followup_missing'] > 0 else None
                         for r in results],
                num_sets=len(used),
                test_lesions=sum(r[a]['followup_missing'] for r in used),
                mean=round(mean, 4), std=round(std, 4),
                shown=bool(len(diff) > 2 and abs(mean) > 2 * std))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='a LENS config (the demo two-set one)')
    p.add_argument('checkpoint', help='its trained checkpoint')
    p.add_argument('--sets', nargs='+', required=True,
                   help='demo_deeplesion folders (with demo_meta.json)')
    p.add_argument('--max-offset', type=int, default=None,
                   help='only slices at most this many from a key slice '
                   '(default: every slice, as tools/lens_mine_annotations.py)')
    p.add_argument('--out', required=True, help='JSON written atomically')
    args = p.parse_args(argv)
    from mmlesion.methods.lens.experts import load_lens_and_train_set
    from mmlesion.methods.lens.mining.calibration import key_slice_dataset
    from mmlesion.methods.lens.mining.proposals import collect_series_proposals
    from mmlesion.utils.writing.atomic import atomic_write
    loaded = load_lens_and_train_set(args.config, args.checkpoint, 0)
    results = []
    for root in args.sets:
        ds = key_slice_dataset(loaded.cfg, root, 'DL_info.csv', 'train')
        series = collect_series_proposals(
            loaded.model, ds, 0, list(range(1, loaded.model.num_datasets)),
            args.max_offset, show_progress=False)
        results.append(compare(series, osp.join(root, 'demo_meta.json')))
        print(json.dumps({k: {m: v[m] for m in ('delta', 'matched',
                                                  'precision', 'found',
                                                  'followup_missing', 'f1')}
                          for k, v in results[-1].items()}), flush=True)
    record = dict(sets=args.sets, per_set=results,
                  combined_vs_appearance=paired(results, 'combined',
                                                'appearance'),
                  location_vs_appearance=paired(results, 'location',
                                                'appearance'),
                  combined_vs_location=paired(results, 'combined',
                                              'location'))
    with atomic_write(args.out) as f:
        json.dump(record, f, indent=1)
    print(json.dumps({k: v for k, v in record.items()
                      if k.endswith('appearance') or k.endswith('location')}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
