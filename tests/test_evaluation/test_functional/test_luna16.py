# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 evaluation against a plain transcription of the official script.

``reference_luna16`` below is a direct loop transcription (Python 3) of the
algorithm of ``noduleCADEvaluationLUNA16.py`` (cap, matching loop,
``computeFROC``, ``computeFROC_bootstrap``, ``compute_mean_ci``); the
vectorised functions must give the same numbers on random candidates around
the real ``annotations.csv`` with every odd corner built in.
"""
import csv
import math
import warnings

import numpy as np
import pytest
import sklearn.metrics as skl_metrics

from mmlesion.evaluation.functional import luna16 as L
from mmlesion.testing import shared_data_root

RATES = [0.125, 0.25, 0.5, 1, 2, 4, 8]


# --------------------------------------------------------------- reference
def reference_luna16(ann_rows, exc_rows, uids, cand_rows, num_boot=0,
                     seed=0, max_marks=100):
    """Loop transcription of the official evaluation (no file output)."""
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


# --------------------------------------------------------------- data
def _luna_dir():
    root = shared_data_root()
    if root is None or not (root / 'luna16' / 'annotations.csv').is_file():
        pytest.skip('real LUNA16 CSVs (../shared/data/luna16) not available')
    return root / 'luna16'


def _rows(findings):
    return [(u, *xyz, d) for u, xyz, d in zip(
        findings.seriesuids, findings.xyz.tolist(),
        findings.diameter_mm.tolist())]


def _on_sphere_x(x, r):
    """An x2 with (x - x2)**2 == r**2 exactly in float64, or None."""
    x2 = x + r
    for _ in range(64):
        d = math.pow(x - x2, 2.)
        if d == r * r:
            return x2
        x2 = np.nextafter(x2, np.inf if d < r * r else -np.inf)
    return None


def make_case(seed=0):
    """Real annotations (+ 3 overlapping copies) and random marks."""
    d = _luna_dir()
    ann = L.read_findings_csv(str(d / 'annotations.csv'))
    exc = L.read_findings_csv(str(d / 'annotations_excluded.csv'))
    uids = L.read_seriesuids_csv(str(d / 'seriesuids.csv'))
    rng = np.random.default_rng(seed)
    ann_rows, exc_rows = _rows(ann), _rows(exc)
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
        if i % 13 == 0 and uid not in {t[0] for t in twins}:
            continue  # scans without any candidate
        num = int(rng.integers(1, 121)) if i % 7 else int(
            rng.integers(101, 140))
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
        probs = np.round(rng.uniform(size=len(rows)), 2)  # many ties
        if len(rows) > 101 and i % 3 == 0:
            # a tie exactly at the cut: 100th and 101st largest are equal
            order = np.argsort(-probs)
            probs[order[100]] = probs[order[99]]
        for row, p in zip(rows, probs):
            cands.append((row[0], float(row[1]), float(row[2]),
                          float(row[3]), float(p)))
    return ann_rows, exc_rows, uids, cands, corners


def _findings(rows):
    return L.LUNA16Findings(
        np.asarray([r[0] for r in rows], dtype=object),
        np.asarray([r[1:4] for r in rows], dtype=np.float64).reshape(-1, 3),
        np.asarray([r[4] for r in rows], dtype=np.float64))


def _cands(rows):
    return L.LUNA16Candidates(
        np.asarray([r[0] for r in rows], dtype=object),
        np.asarray([r[1:4] for r in rows], dtype=np.float64).reshape(-1, 3),
        np.asarray([r[4] for r in rows], dtype=np.float64))


@pytest.fixture(scope='module')
def case():
    return make_case()


# --------------------------------------------------------------- tests
def test_real_file_counts():
    d = _luna_dir()
    ann = L.read_findings_csv(str(d / 'annotations.csv'))
    exc = L.read_findings_csv(str(d / 'annotations_excluded.csv'))
    uids = L.read_seriesuids_csv(str(d / 'seriesuids.csv'))
    assert len(ann.seriesuids) == 1186
    assert len(set(ann.seriesuids)) == 601
    assert len(uids) == 888
    assert len(exc.seriesuids) == 35192
    assert (exc.diameter_mm < 0).sum() > 0  # -1 = unknown diameter
    assert set(ann.seriesuids) <= set(uids)


def test_identical_to_reference(case):
    ann_rows, exc_rows, uids, cands, corners = case
    ref = reference_luna16(ann_rows, exc_rows, uids, cands, num_boot=12,
                           seed=3)
    res = L.evaluate_luna16(_cands(cands), _findings(ann_rows),
                            _findings(exc_rows), uids, num_bootstrap=12,
                            seed=3)
    # the curve is the same roc_curve output with the same scaling
    assert np.array_equal(res.fps, ref['fps'])
    assert np.array_equal(res.sens, ref['sens'])
    assert np.array_equal(res.thresholds, ref['thr'])
    ref_at = np.interp(RATES, ref['fps'], ref['sens'])
    assert np.array_equal(res.sens_at, ref_at)
    assert res.cpm == float(np.mean(ref_at))
    counts = res.counts()
    assert counts['num_detected'] == ref['tps']
    assert counts['num_fp'] == ref['fps_count']
    assert counts['num_nodules'] == ref['total'] == 1186 + 3
    assert counts['num_irrelevant'] == ref['irrelevant']
    assert counts['num_double_detections'] == ref['double']
    # the corners were really built
    assert counts['num_irrelevant'] > 0 and counts['num_double_detections']
    assert counts['num_kept'] < counts['num_candidates']  # cap applied
    assert len(corners['on_radius']) > 10
    # bootstrap band: same resamples (same RandomState stream); equal up to
    # the rounding of dropped collinear points (then float32)
    b = res.bootstrap
    np.testing.assert_allclose(b.mean, ref['boot_mean'], rtol=0, atol=2e-7)
    np.testing.assert_allclose(b.lower, ref['boot_lb'], rtol=0, atol=2e-7)
    np.testing.assert_allclose(b.upper, ref['boot_ub'], rtol=0, atol=2e-7)
    assert (b.upper >= b.lower).all()
    assert float(np.mean(b.upper == ref['boot_ub'])) > 0.999


def test_corners_by_construction(case):
    ann_rows, exc_rows, uids, cands, corners = case
    match = L.match_luna16(_cands(cands), _findings(ann_rows),
                           _findings(exc_rows), uids)
    key = {(c[0], c[1], c[2], c[3]): i for i, c in enumerate(cands)}
    # a mark between two overlapping nodules is a TP for both
    for t in corners['twins']:
        i = key[(t[0], t[1], t[2], t[3])]
        if match.kept[i]:
            assert match.outcome[i] == L.MARK_TP
    twin_nodules = [len(ann_rows) - 3 + j for j in range(3)]
    assert match.detected[twin_nodules].all()
    # a mark exactly on the sphere is not a hit (strict test)
    on_r = [key[c] for c in corners['on_radius']]
    assert all(match.outcome[i] != L.MARK_TP for i in on_r
               if not _inside_any(cands[i], ann_rows))
    # marks inside excluded findings only are dropped, not FPs
    exc_marks = [key[c] for c in corners['excluded']]
    dropped = [i for i in exc_marks if match.kept[i]
               and not _inside_any(cands[i], ann_rows)]
    assert dropped and all(match.outcome[i] == L.MARK_IRRELEVANT
                           for i in dropped)
    # scans without candidates still count: 888 scans in the denominator
    assert match.num_scans == 888


def _inside_any(cand, ann_rows):
    for a in ann_rows:
        if a[0] != cand[0]:
            continue
        d = ((a[1] - cand[1])**2 + (a[2] - cand[2])**2) + (a[3] - cand[3])**2
        if d < (a[4] / 2)**2:
            return True
    return False


def test_cap_strictly_greater_than_101st():
    scans = np.zeros(103, dtype=np.int64)
    probs = np.linspace(1, 0.0, 103)
    keep = L.cap_marks(scans, probs)
    assert keep.sum() == 100 and keep[:100].all()
    probs[99] = probs[100]  # 100th and 101st tie: both dropped
    keep = L.cap_marks(scans, probs)
    assert keep.sum() == 99 and not keep[99] and not keep[100]
    assert L.cap_marks(scans[:100], probs[:100]).all()  # <= 100: all kept


def test_diameter_minus_one_is_10mm():
    uids = ['a']
    nod = L.LUNA16Findings(np.array(['a'], object), np.zeros((1, 3)),
                           np.array([-1.0]))
    cands = L.LUNA16Candidates(
        np.array(['a', 'a'], object), np.array([[4.9, 0, 0], [5.0, 0, 0]]),
        np.array([0.9, 0.8]))
    m = L.match_luna16(cands, nod, None, uids)
    assert m.outcome.tolist() == [L.MARK_TP, L.MARK_FP]


def test_missed_nodule_counts_but_not_in_roc():
    uids = ['a', 'b']
    nod = L.LUNA16Findings(np.array(['a', 'b'], object),
                           np.array([[0., 0, 0], [0, 0, 0]]),
                           np.array([10.0, 10.0]))
    cands = L.LUNA16Candidates(
        np.array(['a', 'a', 'b'], object),
        np.array([[0., 0, 0], [50, 0, 0], [60, 0, 0]]),
        np.array([0.9, 0.5, 0.4]))
    res = L.evaluate_luna16(cands, nod, None, uids, num_bootstrap=0)
    assert res.counts()['num_detected'] == 1
    assert res.sens.max() == 0.5  # 1 of 2 nodules
    # FPs per scan: 2 FPs over 2 scans = 1 at the end
    assert res.fps.max() == 1.0
    assert res.sens_at[0] == 0.5  # the TP comes first


def test_tnp():
    uids = ['a', 'neg1', 'neg2']
    nod = L.LUNA16Findings(np.array(['a'], object), np.zeros((1, 3)),
                           np.array([10.0]))
    cands = L.LUNA16Candidates(
        np.array(['a', 'neg1', 'neg2'], object),
        np.array([[0., 0, 0], [50, 0, 0], [60, 0, 0]]),
        np.array([0.5, 0.6, 0.4]))
    tnp = L.true_negative_patients(
        L.match_luna16(cands, nod, None, uids))
    # threshold 0.5 reaches sensitivity 1: neg1 (0.6) is flagged, neg2 not
    assert tnp['threshold'] == 0.5 and tnp['num_negative_scans'] == 2
    assert tnp['tnp'] == 0.5


def test_bad_csv_rows(tmp_path):
    p = tmp_path / 'c.csv'
    p.write_text('seriesuid,coordX,coordY,coordZ,probability\n'
                 'a,1,2,3,0.5\na,1,x,3,0.5\n')
    with pytest.raises(ValueError, match=r"c.csv line 3: field 'coordY'"):
        L.read_candidates_csv(str(p))
    p.write_text('seriesuid,coordX,coordY,coordZ\na,1,2,3\n')
    with pytest.raises(ValueError, match='probability'):
        L.read_candidates_csv(str(p))
    p.write_text('seriesuid,coordX,coordY,coordZ,probability\na,1,2,3,nan\n')
    with pytest.raises(ValueError, match='not finite'):
        L.read_candidates_csv(str(p))
    cands = L.LUNA16Candidates(np.array(['zzz'], object), np.zeros((1, 3)),
                               np.ones(1))
    with pytest.raises(ValueError, match='zzz is not in the seriesuids'):
        L.match_luna16(cands, _findings([]), None, ['a'])


def test_candidates_csv_round_trip(tmp_path):
    xyz = np.random.default_rng(0).normal(size=(5, 3)) * 100
    prob = np.random.default_rng(1).uniform(size=5)
    L.write_candidates_csv(str(tmp_path / 'c.csv'), ['u'] * 5, xyz, prob)
    back = L.read_candidates_csv(str(tmp_path / 'c.csv'))
    assert np.array_equal(back.xyz, xyz) and np.array_equal(
        back.probability, prob)
    with open(tmp_path / 'c.csv') as f:
        assert next(csv.reader(f)) == [
            'seriesuid', 'coordX', 'coordY', 'coordZ', 'probability']
