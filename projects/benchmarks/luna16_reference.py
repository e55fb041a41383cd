# Copyright (c) mmlesion contributors. All rights reserved.
"""A plain LUNA16 reference and random cases, for tests and benchmarks.

:func:`reference_luna16` is a direct loop transcription (Python 3, no file
output) of the algorithm of the official ``noduleCADEvaluationLUNA16.py``:
the per-scan cap with its strictly-greater-than-the-101st rule, the matching
loop over each nodule and excluded finding against every kept mark (strict
``dist < r**2``, diameter < 0 -> 10 mm), ``computeFROC`` through
``sklearn.metrics.roc_curve``, ``computeFROC_bootstrap`` with the global
``np.random`` stream after ``np.random.seed(seed)`` and ``compute_mean_ci``.
It is deliberately slow and plain: the vectorised
:mod:`mmlesion.evaluation.functional.luna16` must give the same numbers.

:func:`random_luna16_case` builds random marks around given annotations
with every odd corner by construction: scans without marks, scans with more
than 100 marks and ties at the cut, many equal probabilities, marks exactly
on a nodule's sphere, marks inside excluded findings (many with diameter
-1), and three nodules with an overlapping twin and a mark inside both.
"""
import math
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import sklearn.metrics as skl_metrics

from mmlesion.evaluation.functional import luna16 as L


def reference_luna16(ann_rows: Sequence[tuple],
                     exc_rows: Sequence[tuple],
                     uids: Sequence[str],
                     cand_rows: Sequence[tuple],
                     num_boot: int = 0,
                     seed: int = 0,
                     max_marks: int = 100) -> Dict:
    """Loop transcription of the official evaluation (no file output).

    Args:
        ann_rows, exc_rows (Sequence[tuple]): ``(uid, x, y, z, diameter)``.
        uids (Sequence[str]): the scans.
        cand_rows (Sequence[tuple]): ``(uid, x, y, z, probability)``.
        num_boot (int): bootstrap resamples (0: none).
        seed (int): ``np.random.seed`` before the bootstrap.
        max_marks (int): per-scan cap.

    Returns:
        dict: ``fps``, ``sens``, ``thr``, counts and the band
        (``boot_mean``, ``boot_lb``, ``boot_ub``).
    """
    cands_by_scan = {}
    for row in cand_rows:
        cands_by_scan.setdefault(row[0], []).append(row)
    all_cands = {}
    for uid in uids:
        nodules = {i: c for i, c in enumerate(cands_by_scan.get(uid, []))}
        if len(nodules) > max_marks:
            probs = sorted((float(c[4]) for c in nodules.values()),
                           reverse=True)
            thr = probs[max_marks]
            nodules2 = {}
            n2 = 0
            for key, c in nodules.items():
                if n2 >= max_marks:
                    break
                if float(c[4]) > thr:
                    nodules2[key] = c
                    n2 += 1
            nodules = nodules2
        all_cands[uid] = nodules
    annots = {uid: [] for uid in uids}
    for row in ann_rows:
        if row[0] in annots:
            annots[row[0]].append(('Included', row))
    for row in exc_rows:
        if row[0] in annots:
            annots[row[0]].append(('Excluded', row))

    gt_list, prob_list, div_list, excl_list = [], [], [], []
    tps = fps_count = irrelevant = double = 0
    for uid in uids:
        candidates = all_cands[uid]
        candidates2 = dict(candidates)
        for state, annot in annots[uid]:
            x, y, z = float(annot[1]), float(annot[2]), float(annot[3])
            diameter = float(annot[4])
            if diameter < 0.0:
                diameter = 10.0
            radius_sq = math.pow(diameter / 2.0, 2.0)
            found = False
            matches = []
            for key, cand in candidates.items():
                x2, y2, z2 = float(cand[1]), float(cand[2]), float(cand[3])
                dist = (math.pow(x - x2, 2.) + math.pow(y - y2, 2.) +
                        math.pow(z - z2, 2.))
                if dist < radius_sq:
                    if state == 'Included':
                        found = True
                        matches.append(cand)
                        if key in candidates2:
                            del candidates2[key]
                    elif key in candidates2:
                        irrelevant += 1
                        del candidates2[key]
            if len(matches) > 1:
                double += len(matches) - 1
            if state == 'Included':
                if found:
                    max_prob = None
                    for cand in matches:
                        if max_prob is None or float(cand[4]) > max_prob:
                            max_prob = float(cand[4])
                    gt_list.append(1.0)
                    prob_list.append(max_prob)
                    div_list.append(uid)
                    excl_list.append(False)
                    tps += 1
                else:
                    gt_list.append(1.0)
                    prob_list.append(-1000000000.0)
                    div_list.append(uid)
                    excl_list.append(True)
        for key, cand in candidates2.items():
            fps_count += 1
            gt_list.append(0.0)
            prob_list.append(float(cand[4]))
            div_list.append(uid)
            excl_list.append(False)

    def compute_froc(gts, probs, num_images, excl):
        gts_local = [g for g, e in zip(gts, excl) if not e]
        probs_local = [p for p, e in zip(probs, excl) if not e]
        detected = sum(gts_local)
        total = sum(gts)
        num_cands = len(probs_local)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            fpr, tpr, thr = skl_metrics.roc_curve(gts_local, probs_local)
        if sum(gts) == len(gts):
            fps = np.zeros(len(fpr))
        else:
            fps = fpr * (num_cands - detected) / num_images
        sens = (tpr * detected) / total
        return fps, sens, thr

    fps, sens, thr = compute_froc(gt_list, prob_list, len(uids), excl_list)
    out = dict(fps=fps, sens=sens, thr=thr, tps=tps, fps_count=fps_count,
               irrelevant=irrelevant, double=double,
               total=int(sum(gt_list)))
    if num_boot:
        set1 = np.concatenate(([gt_list], [prob_list], [excl_list]), axis=0)
        per_scan = {}
        for i, uid in enumerate(div_list):
            cand = set1[:, i:i + 1]
            per_scan[uid] = (cand if uid not in per_scan else
                             np.concatenate((per_scan[uid], cand), axis=1))
        ims = np.asarray(uids)
        np.random.seed(seed)
        fps_lists, sens_lists = [], []
        for _ in range(num_boot):
            rand = np.random.randint(len(ims), size=len(ims))
            cands = None
            for im in ims[rand]:
                if im not in per_scan:
                    continue
                cands = (np.copy(per_scan[im]) if cands is None else
                         np.concatenate((cands, per_scan[im]), axis=1))
            f, s, _ = compute_froc(cands[0], cands[1], len(ims), cands[2])
            fps_lists.append(f)
            sens_lists.append(s)
        all_fps = np.linspace(0.125, 8, num=10000)
        interp = np.zeros((num_boot, len(all_fps)), dtype='float32')
        for i in range(num_boot):
            interp[i, :] = np.interp(all_fps, fps_lists[i], sens_lists[i])
        mean = np.zeros(len(all_fps), dtype='float32')
        lb = np.zeros(len(all_fps), dtype='float32')
        ub = np.zeros(len(all_fps), dtype='float32')
        pz = (1.0 - 0.95) / 2.0
        for i in range(len(all_fps)):
            vec = interp[:, i]
            vec.sort()
            mean[i] = np.average(vec)
            lb[i] = vec[math.floor(pz * len(vec))]
            ub[i] = vec[math.floor((1.0 - pz) * len(vec))]
        out.update(boot_mean=mean, boot_lb=lb, boot_ub=ub)
    return out


def findings_rows(findings: L.LUNA16Findings) -> List[tuple]:
    """Rows ``(uid, x, y, z, diameter)`` of findings."""
    return [(u, *xyz, d) for u, xyz, d in zip(
        findings.seriesuids, findings.xyz.tolist(),
        findings.diameter_mm.tolist())]


def _on_sphere_x(x: float, r: float):
    """An x2 with (x - x2)**2 == r**2 exactly in float64, or None."""
    x2 = x + r
    for _ in range(64):
        d = math.pow(x - x2, 2.)
        if d == r * r:
            return x2
        x2 = np.nextafter(x2, np.inf if d < r * r else -np.inf)
    return None


def random_luna16_case(ann: L.LUNA16Findings, exc: L.LUNA16Findings,
                       uids: Sequence[str], seed: int = 0,
                       big_every: int = 7, max_marks: int = 120,
                       num_marks: Optional[int] = None) -> Tuple:
    """Annotations (+ 3 overlapping twins) and random marks.

    Args:
        ann (LUNA16Findings): included nodules (e.g. the real CSV).
        exc (LUNA16Findings): excluded findings.
        uids (Sequence[str]): the scans.
        seed (int): seed. Defaults to 0.
        big_every (int): every ``big_every``-th scan gets 101 to 139
            marks (the cap applies); 1 gives all scans > 100 marks.
        max_marks (int): other scans get 1 to ``max_marks`` marks.
        num_marks (int, optional): if given, every scan gets exactly this
            many marks (benchmark setting; no scan is left without marks).

    Returns:
        tuple: ``(ann_rows, exc_rows, uids, cand_rows, corners)``; rows are
        tuples ``(uid, x, y, z, diameter or probability)``; ``corners``
        lists the marks built on purpose.
    """
    rng = np.random.default_rng(seed)
    ann_rows, exc_rows = findings_rows(ann), findings_rows(exc)
    # three nodules get an overlapping twin 1 mm away: a mark between them
    # is inside both
    twins = []
    for k in (0, 100, 500):
        u, x, y, z, diam = ann_rows[k]
        ann_rows.append((u, x + 1.0, y, z, diam))
        twins.append((u, x + 0.5, y, z))
    by_scan_ann, by_scan_exc = {}, {}
    for r in ann_rows:
        by_scan_ann.setdefault(r[0], []).append(r)
    for r in exc_rows:
        by_scan_exc.setdefault(r[0], []).append(r)
    cands, corners = [], dict(on_radius=[], twins=twins, excluded=[])
    for i, uid in enumerate(uids):
        if num_marks is not None:
            num = num_marks
        elif i % 13 == 0 and uid not in {t[0] for t in twins}:
            continue  # scans without any candidate
        else:
            num = (int(rng.integers(1, max_marks + 1)) if i % big_every
                   else int(rng.integers(101, 140)))
        rows = []
        for nod in by_scan_ann.get(uid, []):
            r = nod[4] / 2
            for _ in range(int(rng.integers(0, 4))):
                v = rng.normal(size=3)
                v *= rng.uniform(0, 1.3) * r / np.linalg.norm(v)
                rows.append([uid, nod[1] + v[0], nod[2] + v[1],
                             nod[3] + v[2]])
            x2 = _on_sphere_x(nod[1], r)
            if x2 is not None and rng.uniform() < 0.5:
                rows.append([uid, x2, nod[2], nod[3]])
                corners['on_radius'].append((uid, x2, nod[2], nod[3]))
        for exf in by_scan_exc.get(uid, [])[:10]:
            r = (10.0 if exf[4] < 0 else exf[4]) / 2
            v = rng.normal(size=3)
            v *= rng.uniform(0, 0.9) * r / np.linalg.norm(v)
            rows.append([uid, exf[1] + v[0], exf[2] + v[1], exf[3] + v[2]])
            corners['excluded'].append(tuple(rows[-1]))
        for t in twins:
            if t[0] == uid:
                rows.append(list(t))
        centre = np.array([0., -150., -150.])
        while len(rows) < num:
            p = centre + rng.uniform(-150, 150, size=3)
            rows.append([uid, *p.tolist()])
        if num_marks is not None:
            rows = rows[:num_marks]
        probs = np.round(rng.uniform(size=len(rows)), 2)  # many ties
        if len(rows) > 101 and i % 3 == 0:
            # a tie exactly at the cut: 100th and 101st largest are equal
            order = np.argsort(-probs)
            probs[order[100]] = probs[order[99]]
        for row, p in zip(rows, probs):
            cands.append((row[0], float(row[1]), float(row[2]),
                          float(row[3]), float(p)))
    return ann_rows, exc_rows, uids, cands, corners


def rows_to_findings(rows: Sequence[tuple]) -> L.LUNA16Findings:
    """Inverse of :func:`findings_rows`."""
    return L.LUNA16Findings(
        np.asarray([r[0] for r in rows], dtype=object),
        np.asarray([r[1:4] for r in rows], dtype=np.float64).reshape(-1, 3),
        np.asarray([r[4] for r in rows], dtype=np.float64))


def rows_to_candidates(rows: Sequence[tuple]) -> L.LUNA16Candidates:
    """Candidate rows ``(uid, x, y, z, probability)`` as arrays."""
    return L.LUNA16Candidates(
        np.asarray([r[0] for r in rows], dtype=object),
        np.asarray([r[1:4] for r in rows], dtype=np.float64).reshape(-1, 3),
        np.asarray([r[4] for r in rows], dtype=np.float64))


def synthetic_luna16_annotations(num_scans: int = 888,
                                 num_nodule_scans: int = 601,
                                 num_nodules: int = 1186,
                                 excluded_per_scan: int = 40,
                                 seed: int = 0) -> Tuple:
    """LUNA16-sized random annotations when the real CSVs are absent.

    Returns:
        tuple: ``(annotations, excluded, seriesuids)`` with nodules of 3 to
        30 mm and excluded findings of which two thirds have diameter -1.
    """
    rng = np.random.default_rng(seed)
    uids = [f'1.2.826.0.1.{seed}.{i}' for i in range(num_scans)]
    pos = rng.choice(num_scans, num_nodule_scans, replace=False)
    scans = np.concatenate(
        [pos, rng.choice(pos, num_nodules - num_nodule_scans)])
    centre = np.array([0., -150., -150.])
    ann = L.LUNA16Findings(
        np.asarray([uids[i] for i in scans], dtype=object),
        centre + rng.uniform(-120, 120, size=(num_nodules, 3)),
        rng.uniform(3, 30, size=num_nodules))
    num_exc = num_scans * excluded_per_scan
    diam = rng.uniform(1, 10, size=num_exc)
    diam[rng.uniform(size=num_exc) < 2 / 3] = -1.0
    exc = L.LUNA16Findings(
        np.asarray([uids[i] for i in rng.integers(0, num_scans, num_exc)],
                   dtype=object),
        centre + rng.uniform(-150, 150, size=(num_exc, 3)), diam)
    return ann, exc, uids
