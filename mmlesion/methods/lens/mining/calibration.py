# Copyright (c) mmlesion contributors. All rights reserved.
"""Calibration of delta, the embedding distance threshold of LENS's
intra-patient lesion matching (Yan et al., TMI 2020, Sec. V-B).

The paper's delta = 0.15 belongs to LesaNet's embedding, which is not
public; LENS's own RoI features (:meth:`mmlesion.models.LENS.embed`) have
another scale. delta is therefore chosen on pairs of lesions of one patient
in *different series* whose identity is known: the demo generator's
``lesion_id`` (``demo_meta.json``) or, on DeepLesion, a location proxy
(:func:`deeplesion_proxy_same`).
"""
import math
import os
from typing import NamedTuple, Optional, Sequence, Tuple, TypedDict

import numpy as np

from mmlesion.utils.tool_defaults import tool_defaults

#: The pair precision a calibrated delta keeps (the paper's 90 %; what
#: ``tools/lens_mine_annotations.py --min-match-precision`` shows).
MIN_MATCH_PRECISION = tool_defaults(__file__)['calibrate_delta'][
    'min_precision']


def pair_distances(embeddings: np.ndarray, series: Sequence[str],
                   patients: Sequence[str],
                   same_lesion: 'callable',
                   distance: Optional['callable'] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """Distances of all pairs of lesions of one patient in different
    series, split by identity.

    Args:
        embeddings (np.ndarray): (N, D) lesion embeddings.
        series (Sequence[str]): the series of each lesion.
        patients (Sequence[str]): the patient of each lesion.
        same_lesion (callable): ``same_lesion(i, j) -> bool``.
        distance (callable, optional): ``distance(i, j) -> float`` (e.g. a
            :class:`~.strategies.Matcher`'s); default the L2
            distance of the embeddings.

    Returns:
        tuple: (distances of same-lesion pairs, of different-lesion pairs).
    """
    emb = np.asarray(embeddings, np.float32)
    if distance is None:
        def distance(i: int, j: int) -> float:
            return float(np.linalg.norm(emb[i] - emb[j]))
    n = len(emb)
    if not len(series) == len(patients) == n:
        raise ValueError(f'pair_distances: {n} embeddings, {len(series)} '
                         f'series, {len(patients)} patients')
    same, diff = [], []
    for i in range(n):
        for j in range(i + 1, n):
            if patients[i] != patients[j] or series[i] == series[j]:
                continue
            (same if same_lesion(i, j) else diff).append(distance(i, j))
    return np.asarray(same, np.float64), np.asarray(diff, np.float64)


class DeltaChoice(TypedDict):
    """A delta of :func:`choose_delta` and its pair statistics (the JSON
    record the mining tools write)."""
    delta: float
    precision: float
    recall: float
    false_match_rate: float
    reached_precision: bool
    n_same: int
    n_diff: int
    min_precision: float


class DeltaCalibration(DeltaChoice):
    """:class:`DeltaChoice` on the training split
    (:func:`calibrate_delta_on_training_split`): plus what it was
    calibrated on and its counts."""
    source: str
    lesions: int
    patients: int
    series: int


def choose_delta(same: np.ndarray,
                 diff: np.ndarray,
                 min_precision: float = MIN_MATCH_PRECISION
                 ) -> DeltaChoice:
    """The largest delta whose pairs below it are at least
    ``min_precision`` same-lesion pairs (the paper found 90 % of its
    matches true); else the one maximising Youden's J, with
    ``reached_precision=False``.

    Args:
        same (np.ndarray): distances of same-lesion pairs.
        diff (np.ndarray): distances of different-lesion pairs.
        min_precision (float): wanted pair precision.

    Returns:
        DeltaChoice: ``recall`` of same-lesion pairs, ``false_match_rate``
        of different-lesion pairs.
    """
    same = np.sort(np.asarray(same, np.float64))
    diff = np.sort(np.asarray(diff, np.float64))
    if not len(same):
        raise ValueError('choose_delta: no same-lesion pair to calibrate on')

    def stats(delta: float) -> dict:
        tp = int(np.searchsorted(same, delta, side='left'))
        fp = int(np.searchsorted(diff, delta, side='left'))
        return dict(
            delta=round(float(delta), 4),
            precision=round(tp / (tp + fp), 4) if tp + fp else float('nan'),
            recall=round(tp / len(same), 4),
            false_match_rate=round(fp / len(diff), 4) if len(diff) else 0.)

    # candidate deltas: just above each observed distance
    cands = np.unique(np.concatenate([same, diff])) + 1e-6
    best = None
    for d in cands:
        s = stats(d)
        if s['precision'] >= min_precision and (
                best is None or s['recall'] >= best['recall']):
            best = s
    reached = best is not None
    if not reached:
        best = max((stats(d) for d in cands),
                   key=lambda s: s['recall'] - s['false_match_rate'])
    return DeltaChoice(**best, reached_precision=reached, n_same=len(same),
                       n_diff=len(diff), min_precision=min_precision)


def deeplesion_proxy_same(rows: Sequence[dict], loc_thr: float = 0.05,
                          size_ratio: float = 2.0) -> 'callable':
    """Same-lesion proxy for DeepLesion rows of one patient in different
    studies (DeepLesion has no lesion identities across studies): same
    ``Coarse_lesion_type`` where both rows have one (not -1),
    ``Normalized_lesion_location`` within ``loc_thr`` (L2, body-relative x,
    y, z) and long diameters within a factor ``size_ratio``. A proxy: lesions
    that moved or grew fail it, two nearby lesions of one type pass it.

    Args:
        rows (Sequence[dict]): ``lesion_type`` (int), ``location``
            (3 floats), ``diameter_px`` (float) per lesion.
        loc_thr (float): location distance threshold.
        size_ratio (float): allowed ratio of the long diameters.

    Returns:
        callable: ``same(i, j) -> bool``.
    """

    def same(i: int, j: int) -> bool:
        a, b = rows[i], rows[j]
        typed = a['lesion_type'] > 0 and b['lesion_type'] > 0
        if typed and a['lesion_type'] != b['lesion_type']:
            return False
        if math.dist(a['location'], b['location']) >= loc_thr:
            return False
        da, db = a['diameter_px'], b['diameter_px']
        return max(da, db) <= size_ratio * max(min(da, db), 1e-6)

    return same


def key_slice_dataset(cfg, root: str, ann_file: str, split: Optional[str],
                      skip_missing: bool = False):
    """The key slices of a DeepLesion-layout ``root`` read with the
    config's test pipeline (``DeepLesionDataset``, test mode).

    Args:
        cfg (Config): a LENS config (its ``test_dataloader`` pipeline, or
            ``test_pipeline`` when it has no test loader, as the demo's
            training configs).
        root (str): data root.
        ann_file (str): the CSV under ``root``.
        split (str, optional): ``'train'``, ``'val'``, ``'test'`` or None
            (every row).
        skip_missing (bool): skip key slices whose PNG is absent.

    Returns:
        DeepLesionDataset: the dataset.
    """
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope
    loader = cfg.get('test_dataloader')
    pipeline = (loader.dataset.pipeline if loader else cfg.test_pipeline)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(
            dict(type='DeepLesionDataset', data_root=root, ann_file=ann_file,
                 data_prefix=dict(img='Images_png/'), split=split,
                 test_mode=True, pipeline=pipeline,
                 skip_missing_key_slices=skip_missing))


def embed_dataset_boxes(model, dataset, idx: int,
                        boxes: np.ndarray) -> np.ndarray:
    """LENS embeddings (:func:`~.proposals.embed_boxes`) of
    ``boxes`` (``(N, 4)`` xyxy, pixels) on sample ``idx`` of ``dataset``."""
    from mmlesion.methods.lens.mining.proposals import embed_boxes
    packed = dataset[idx]
    data = model.data_preprocessor(
        dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]),
        False)
    return embed_boxes(model, data, boxes)


class PairDistances(NamedTuple):
    """Embedding distances of same-lesion and of different-lesion pairs,
    and what they were measured on (counts of lesions, patients, ...)."""
    same: np.ndarray
    different: np.ndarray
    counts: dict


def demo_pairs(model, cfg, root: str, split: Optional[str] = None,
               annotated_only: bool = False
               ) -> PairDistances:
    """Same / different-lesion embedding distances (:func:`pair_distances`)
    on a demo set, identity by the generator's ``lesion_id``, each lesion
    boxed by its long semi-axis around its centre.

    Args:
        model (LENS): a LENS model in eval mode.
        cfg (Config): its config (test pipeline).
        root (str): the demo set.
        split (str, optional): the split whose key slices are used (None:
            all).
        annotated_only (bool): use only lesions with a CSV row (what a
            user of partially labelled data has).

    Returns:
        tuple: (same distances, different distances, dict(lesions,
        annotated, patients)).

    Raises:
        ValueError: if no key slice of ``demo_meta.json`` is found.
    """
    from mmlesion.methods.lens.mining.demo_eval import load_demo_lesions
    truth = load_demo_lesions(os.path.join(root, 'demo_meta.json'))
    ds = key_slice_dataset(cfg, root, 'DL_info.csv', split)
    embs, series, patients, ids = [], [], [], []
    n_annotated = 0
    done = set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        name = os.path.basename(os.path.normpath(info['series_dir']))
        t = truth.get(name)
        if (t is None or name in done
                or int(info['key_slice']) != t['key_index']):
            continue
        done.add(name)
        boxes = []
        for j, les in enumerate(t['lesions']):
            if annotated_only and not les['annotated']:
                continue
            r = les['semi_axes_mm'][0] / t['spacing']
            cx, cy = les['center_px']
            boxes.append([cx - r, cy - r, cx + r, cy + r])
            series.append(name)
            patients.append(name.split('_')[0])
            ids.append(les.get('lesion_id', f'{name}#{j}'))
            n_annotated += bool(les['annotated'])
        if boxes:
            embs.append(
                embed_dataset_boxes(model, ds, i, np.array(boxes,
                                                           np.float32)))
    if not embs:
        raise ValueError(f'{root}: no key slice of demo_meta.json found '
                         f'(split {split!r})')
    same, diff = pair_distances(np.concatenate(embs), series, patients,
                                lambda a, b: ids[a] == ids[b])
    return PairDistances(same, diff, dict(
        lesions=len(ids), annotated=n_annotated,
        patients=len(set(patients))))


def deeplesion_pair_distances(model, cfg, root: str, ann_files: Sequence[str],
                              split: Optional[str] = None,
                              skip_missing: bool = True
                              ) -> PairDistances:
    """Same (proxy, :func:`deeplesion_proxy_same`) / different-lesion
    embedding distances (:func:`pair_distances`) of the annotated lesions
    on DeepLesion-layout key slices.

    Args:
        model: a LENS model (``embed``), eval mode.
        cfg (Config): its config (test pipeline).
        root (str): data root.
        ann_files (Sequence[str]): CSVs under ``root``.
        split (str, optional): the split whose key slices are used.
        skip_missing (bool): skip key slices whose PNG is absent.

    Returns:
        tuple: (same distances, different distances, counts: ``lesions``,
        ``patients``, ``series``).

    Raises:
        ValueError: no key slice of the CSVs has its PNG.
    """
    from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
    embs, series, patients, rows = [], [], [], []
    for csv in ann_files:
        recs = {r.row: r for r in parse_dl_info(os.path.join(root, csv))}
        ds = key_slice_dataset(cfg, root, csv, split, skip_missing)
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            inst = info['instances']
            if not inst:
                continue
            boxes = np.array([x['bbox'] for x in inst], np.float32)
            embs.append(embed_dataset_boxes(model, ds, i, boxes))
            name = os.path.basename(os.path.normpath(info['series_dir']))
            for x in inst:
                rec = recs[x['row']]
                series.append(name)
                patients.append(str(info['patient_id']))
                rows.append(
                    dict(lesion_type=rec.lesion_type,
                         location=tuple(rec.normalized_location),
                         diameter_px=float(rec.diameters_px[0])))
    if not embs:
        raise ValueError(f'{root}: none of the key slices of {list(ann_files)}'
                         f' (split {split}) has its PNG under Images_png/')
    same, diff = pair_distances(np.concatenate(embs), series, patients,
                                deeplesion_proxy_same(rows))
    return PairDistances(same, diff, dict(
        lesions=len(rows), patients=len(set(patients)),
        series=len(set(series))))


#: Fewest same-lesion (proxy) pairs a delta may be calibrated on.
MIN_CALIBRATION_PAIRS = 20


def calibrate_delta_on_training_split(model, cfg, root: str, ann_file: str,
                                      min_precision: float = (
                                          MIN_MATCH_PRECISION),
                                      min_pairs: int = MIN_CALIBRATION_PAIRS
                                      ) -> DeltaCalibration:
    """delta for LENS's intra-patient matching (:func:`choose_delta`),
    calibrated on the training split that is mined, same lesions by the
    location / size proxy (:func:`deeplesion_proxy_same`).

    Returns:
        DeltaCalibration: :func:`choose_delta`'s result plus ``source``
        (what it was calibrated on) and the counts.

    Raises:
        ValueError: fewer than ``min_pairs`` same-lesion pairs (too few
            patients with several studies): the message names the file
            and asks for an explicit delta.
    """
    same, diff, counts = deeplesion_pair_distances(
        model, cfg, root, [ann_file], split='train')
    if len(same) < min_pairs:
        raise ValueError(
            f'{os.path.join(root, ann_file)}: {len(same)} same-lesion pairs '
            f'(same patient, other series) in the training split, fewer '
            f'than {min_pairs} to calibrate delta on; pass --dist-thr '
            'explicitly (the paper\'s 0.15 was set for LesaNet\'s '
            'embedding, not for this one)')
    return DeltaCalibration(
        **choose_delta(same, diff, min_precision), **counts,
        source=f'training split of {os.path.join(root, ann_file)} '
        '(same patient, other series; same lesion by location and size)')
