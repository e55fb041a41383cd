# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 candidates evaluated from the official CSV files into a folder:
what ``tools/analysis_tools/eval_luna16.py`` writes, and
``tools/luna16_cv.py`` for the pooled folds (the semantics:
:mod:`mmlesion.evaluation.functional.luna16`)."""
import csv
import json
import logging
import os
import os.path as osp
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
from mmengine.logging import print_log

from mmlesion.evaluation.functional.luna16 import (LUNA16Options,
                                                   evaluate_luna16,
                                                   read_findings_csv,
                                                   read_seriesuids_csv)
from mmlesion.utils.tool_defaults import tool_defaults
from mmlesion.utils.writing.atomic import atomic_write
from mmlesion.visualization.luna16_froc import plot_luna16_froc

#: The files written into the output folder.
OUTPUTS = ('metrics.json', 'froc.png', 'froc_curve.csv',
           'froc_bootstrap.csv', 'nodules.csv')


def check_outputs(out_dir: str, names: Sequence[str],
                  overwrite: bool) -> None:
    """Refuse to replace earlier results without ``overwrite``.

    Args:
        out_dir (str): the output folder.
        names (Sequence[str]): the files an evaluation writes into it.
        overwrite (bool): replace them.

    Raises:
        FileExistsError: ``out_dir`` is a file, or naming the outputs that
            exist.
    """
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'{out_dir} exists and is not a folder')
    existing = [osp.join(out_dir, n) for n in names
                if osp.exists(osp.join(out_dir, n))]
    if existing and not overwrite:
        raise FileExistsError(
            f'{len(existing)} output(s) already exist: '
            f'{", ".join(existing)}; pass --overwrite to replace them')


#: The defaults the LUNA16 tools' ``--help`` shows (``tool_defaults.json``).
_SHOWN = tool_defaults(__file__)['Luna16FilesEval']


@dataclass
class Luna16FilesEval:
    """What to evaluate and how (the options of ``eval_luna16.py``).

    Args:
        annotations (str): ``annotations.csv`` (included nodules).
        seriesuids (str): ``seriesuids.csv`` (the evaluated scans).
        candidates (str): ``seriesuid,coordX,coordY,coordZ,probability``.
        out_dir (str): the folder of :data:`OUTPUTS`.
        excluded (str, optional): ``annotations_excluded.csv``.
        overwrite (bool): replace existing outputs.
        num_bootstrap (int): bootstrap resamples (0: no band).
        seed (int): bootstrap seed.
        confidence (float): confidence of the bootstrap band.
        max_marks (int): marks kept per scan (official: 100).
        tnp_sensitivity (float): sensitivity of the reported TNP threshold.
        ignore_unknown_seriesuids (bool): skip candidates of scans missing
            from ``seriesuids`` (default: an error naming them).
        name (str, optional): system name on the plot (default: the
            candidates file name).
    """
    annotations: str
    seriesuids: str
    candidates: str
    out_dir: str
    excluded: Optional[str] = None
    overwrite: bool = False
    num_bootstrap: int = _SHOWN['num_bootstrap']
    seed: int = _SHOWN['seed']
    confidence: float = _SHOWN['confidence']
    max_marks: int = _SHOWN['max_marks']
    tnp_sensitivity: float = _SHOWN['tnp_sensitivity']
    ignore_unknown_seriesuids: bool = False
    name: Optional[str] = None


def evaluate_luna16_files(settings: Luna16FilesEval) -> List[str]:
    """Evaluate, write :data:`OUTPUTS` and log a summary.

    Returns:
        list[str]: the files written.

    Raises:
        FileExistsError: outputs exist and ``overwrite`` is False.
        FileNotFoundError: an input file is missing.
        ValueError: a bad CSV row (file, line and field named) or a
            candidate of an unknown scan.
    """
    s, out_dir = settings, settings.out_dir
    check_outputs(out_dir, OUTPUTS, s.overwrite)
    for path in (s.annotations, s.seriesuids, s.candidates, s.excluded):
        if path is not None and not osp.isfile(path):
            raise FileNotFoundError(f'no such file: {path}')
    t0 = time.perf_counter()
    result = evaluate_luna16(
        s.candidates, s.annotations, s.excluded, s.seriesuids, LUNA16Options(
            s.max_marks, s.num_bootstrap, s.seed, s.confidence,
            s.tnp_sensitivity,
            unknown='ignore' if s.ignore_unknown_seriesuids else 'error',
            progress=s.num_bootstrap > 0))
    os.makedirs(out_dir, exist_ok=True)
    stale = osp.join(out_dir, 'froc_bootstrap.csv')
    if result.bootstrap is None and osp.exists(stale):
        os.remove(stale)  # from an earlier run; only with overwrite
    written = _write_outputs(result, s)
    print_log('\n'.join(_summary(result, s, time.perf_counter() - t0)
                        + ['wrote ' + ', '.join(written)]),
              logger='current')
    match = result.match
    empty = match.num_scans - len(
        np.unique(match.cand_scan[match.cand_scan >= 0]))
    if empty:
        print_log(
            f'{empty} of {match.num_scans} scans have no candidate at all: '
            'every nodule there counts as missed (a detector that found '
            'nothing there, or scans the candidates file lacks)',
            logger='current', level=logging.WARNING)
    return written


def _summary(result, s: Luna16FilesEval, seconds: float) -> List[str]:
    """The lines logged after an evaluation."""
    counts = result.counts()
    rates = ', '.join(f'{k}: {v:.4f}' for k, v in
                      result.to_dict()['sensitivity_at'].items())
    lines = [
        f'LUNA16 evaluation of {s.candidates} ({seconds:.2f} s)',
        f'scans {counts["num_scans"]}, nodules {counts["num_nodules"]} '
        f'(detected {counts["num_detected"]}), marks '
        f'{counts["num_candidates"]}'
        f' (kept {counts["num_kept"]}, FP {counts["num_fp"]}, on excluded '
        f'findings {counts["num_irrelevant"]}, double detections '
        f'{counts["num_double_detections"]})',
        f'sensitivity at FPs/scan: {rates}',
        f'CPM: {result.cpm:.4f}',
    ]
    if result.bootstrap is not None:
        lo, hi = result.bootstrap.cpm_interval()
        lines.append(f'CPM {result.bootstrap.confidence:.0%} bootstrap '
                     f'interval ({result.bootstrap.num_resamples} '
                     f'resamples): [{lo:.4f}, {hi:.4f}]')
    tnp = result.tnp
    best = tnp.get('at_highest_sensitivity')
    if tnp['tnp'] is None and best is not None:
        lines.append(f'TNP: undefined (sensitivity '
                     f'{tnp["target_sensitivity"]} never reached); at the '
                     f'highest sensitivity reached, {best["sensitivity"]:.4f}'
                     f' (not the paper\'s operating point): '
                     f'{best["tnp"]:.4f} ({best["num_true_negatives"]}/'
                     f'{tnp["num_negative_scans"]} scans without nodules)')
    elif tnp['tnp'] is None:
        lines.append(f'TNP: undefined (sensitivity '
                     f'{tnp["target_sensitivity"]} never reached or no scan '
                     'without nodules)')
    else:
        lines.append(
            f'TNP: {tnp["tnp"]:.4f} ({tnp["num_true_negatives"]}/'
            f'{tnp["num_negative_scans"]} scans without nodules, threshold '
            f'{tnp["threshold"]:.6g} at sensitivity {tnp["sensitivity"]:.4f})')
    return lines


def _write_outputs(result, s: Luna16FilesEval) -> List[str]:
    """Write :data:`OUTPUTS` (``froc_bootstrap.csv`` with a band only)."""
    out_dir = s.out_dir
    name = s.name or osp.splitext(osp.basename(s.candidates))[0]
    payload = result.to_dict()
    payload['files'] = dict(
        annotations=osp.abspath(s.annotations),
        excluded=osp.abspath(s.excluded) if s.excluded else None,
        seriesuids=osp.abspath(s.seriesuids),
        candidates=osp.abspath(s.candidates))
    written = []
    path = osp.join(out_dir, 'metrics.json')
    with atomic_write(path) as f:
        json.dump(payload, f, indent=2)
    written.append(path)
    path = osp.join(out_dir, 'froc.png')
    plot_luna16_froc(result, path, name=name)
    written.append(path)
    path = osp.join(out_dir, 'froc_curve.csv')
    with atomic_write(path, newline='') as f:
        w = csv.writer(f)
        w.writerow(['fps_per_scan', 'sensitivity', 'threshold'])
        for row in zip(result.fps, result.sens, result.thresholds):
            w.writerow([f'{v:.9f}' for v in row])
    written.append(path)
    if result.bootstrap is not None:
        b = result.bootstrap
        path = osp.join(out_dir, 'froc_bootstrap.csv')
        with atomic_write(path, newline='') as f:
            w = csv.writer(f)
            w.writerow(['FPrate', 'Sensivity[Mean]', 'Sensivity[Lower bound]',
                        'Sensivity[Upper bound]'])
            for row in zip(b.fps, b.mean, b.lower, b.upper):
                w.writerow([f'{float(v):.9f}' for v in row])
        written.append(path)
    # per nodule: the rows of annotations.csv of the evaluated scans
    ann = read_findings_csv(s.annotations)
    uids = set(read_seriesuids_csv(s.seriesuids))
    listed = [i for i, u in enumerate(ann.seriesuids) if u in uids]
    m = result.match
    path = osp.join(out_dir, 'nodules.csv')
    with atomic_write(path, newline='') as f:
        w = csv.writer(f)
        w.writerow(['seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm',
                    'detected', 'probability', 'num_marks'])
        for k, i in enumerate(listed):
            det = bool(m.nodule_hits[k] > 0)
            w.writerow([ann.seriesuids[i], *ann.xyz[i].tolist(),
                        float(ann.diameter_mm[i]), int(det),
                        f'{m.nodule_prob[k]:.9f}' if det else 'NA',
                        int(m.nodule_hits[k])])
    written.append(path)
    return written
