# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 metric for 3D detectors (docs/protocols.md §3)."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from mmdet.registry import METRICS
from ...structures.ct_geometry import voxel_to_world
from ..functional.luna16 import (LUNA16_FP_RATES, LUNA16Candidates,
                                 LUNA16Findings, LUNA16Options,
                                 ScoreCutSettings,
                                 apply_score_cut, below_diameter,
                                 evaluate_luna16, lesion_subsets, rate_key,
                                 read_findings_csv, read_seriesuids_csv,
                                 score_cut_effect, select_findings,
                                 sensitivity_at, write_candidates_csv)
from ..functional.luna16.io import findings_of, instance_finding
from mmlesion.utils.writing.atomic import atomic_write_json
from .froc_metric import (check_rates, mean_key, registered_plot,
                          runner_log_dir, to_numpy)


def boxes_to_world_candidates(bboxes: np.ndarray, spacing_zyx: Sequence[float],
                              origin_xyz: Sequence[float],
                              direction: Sequence[float]
                              ) -> Tuple[np.ndarray, np.ndarray]:
    """3D voxel boxes -> world centres and diameters.

    Args:
        bboxes (np.ndarray): ``(N, 6)`` ``[x1, y1, z1, x2, y2, z2]`` in
            continuous voxel coordinates of the volume (voxel centres at
            integers, ``x2 = x1 + extent``).
        spacing_zyx (Sequence[float]): voxel size (mm).
        origin_xyz (Sequence[float]): world position of voxel (0, 0, 0).
        direction (Sequence[float]): 3x3 (or 9) SimpleITK direction.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(N, 3)`` world box centres (x, y,
        z, mm) and ``(N,)`` diameters, the mean of the three extents (mm).
    """
    b = np.asarray(bboxes, dtype=np.float64).reshape(-1, 6)
    centre_xyz = (b[:, :3] + b[:, 3:]) / 2.0
    world = voxel_to_world(centre_xyz[:, ::-1], spacing_zyx, origin_xyz,
                           direction)
    extent_xyz = b[:, 3:] - b[:, :3]
    diam = (extent_xyz * np.asarray(spacing_zyx, np.float64)[::-1]).mean(
        axis=1)
    return world, diam


@METRICS.register_module()
class LUNA16Metric(BaseMetric):
    """LUNA16 FROC / CPM / bootstrap band / TNP of a 3D detector.

    The official LUNA16 evaluation (docs/protocols.md §3;
    :mod:`mmlesion.evaluation.functional.luna16`). Each prediction box
    ``(N, 6)`` ``[x1, y1, z1, x2, y2, z2]`` (continuous voxels) becomes a
    world mark at its centre, via the sample's ``spacing_zyx``,
    ``origin_xyz`` and ``direction`` metainfo; its scan is ``series_uid``
    (``img_id`` when absent). Samples of one scan are pooled.

    Ground truth: the official CSVs, or the dataset's ``instances`` meta
    (``center_world``, ``diameter_mm``, ``ignore_flag=1`` = excluded; pack
    it with ``PackDetInputs(meta_keys=(..., 'instances'))``), the first
    sample of each scan providing its instances. Lesion subsets (the
    paper's DeepLesion Tables V and VI) filter the ground truth only and
    need the dataset's instances.

    Metric keys (prefix ``luna16``): ``cpm``, ``sens@{r}``,
    ``mean@{lo}-{hi}``, ``cpm_lower`` / ``cpm_upper`` (bootstrap), ``tnp``
    (NaN when never reached); with ``breakdowns``, ``..._type_{name}`` and
    ``..._size_{bin}`` as :class:`FROCMetric`'s. Files (into the folder of
    ``outfile_prefix``, or the runner's log dir with prefix ``luna16``):
    ``{prefix}_candidates.csv`` (official format plus ``diameter_mm``),
    ``{prefix}_metrics.json`` and ``{prefix}_froc.png``.

    Args:
        annotations (str, optional): ``annotations.csv``; None = use the
            dataset's instances.
        excluded (str, optional): ``annotations_excluded.csv``.
        seriesuids (str, optional): ``seriesuids.csv``.
        max_marks (int): marks kept per scan. Defaults to 100.
        num_bootstrap (int): bootstrap resamples (0: none). Defaults to
            1000.
        seed (int): bootstrap seed. Defaults to 0.
        confidence (float): band confidence. Defaults to 0.95.
        tnp_sensitivity (float): sensitivity of the TNP threshold. Defaults
            to 0.95.
        fp_rates (Sequence[float]): FPs per scan reported as ``sens@{r}``
            (the CPM is always at LUNA16's seven rates). Defaults to 1/8 ..
            8.
        mean_rates (Sequence[float], optional): rates averaged into
            ``mean@{lo}-{hi}`` (e.g. 0.5 .. 16, the "Avg." of the paper's
            Table V). Defaults to None (no mean key).
        breakdowns (bool): evaluate every lesion type and size bin, each
            without a bootstrap. Defaults to False.
        max_diameter_mm (float, optional): lesions with a ``diameter_mm`` of
            at least this are removed from the ground truth first (their
            marks become false positives; Table V's "*" rows use 48).
            Defaults to None (all lesions).
        rpn_score_cut (float, optional): a test-time cut on the
            predictions' ``rpn_scores`` (3D-AG's 0.269, Sec. IV-F): every
            metric is of the detections above it; ``..._uncut`` keys and
            the JSON's ``score_cut`` compare them with all
            (:mod:`..functional.luna16.score_cut`). None (default): no cut.
        outfile_prefix (str, optional): path prefix of the output files.
        froc_plot (str, optional): the ``FUNCTIONS`` entry ``(result,
            path, name=...)`` drawing ``{prefix}_froc.png``. Defaults to
            ``'plot_luna16_froc'``; None: no picture.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): key prefix; defaults to ``'luna16'``.
    """
    default_prefix: Optional[str] = 'luna16'

    def __init__(self,
                 annotations: Optional[str] = None,
                 excluded: Optional[str] = None,
                 seriesuids: Optional[str] = None,
                 max_marks: int = 100,
                 num_bootstrap: int = 1000,
                 seed: int = 0,
                 confidence: float = 0.95,
                 tnp_sensitivity: float = 0.95,
                 fp_rates: Sequence[float] = LUNA16_FP_RATES,
                 mean_rates: Optional[Sequence[float]] = None,
                 breakdowns: bool = False,
                 max_diameter_mm: Optional[float] = None,
                 rpn_score_cut: Optional[float] = None,
                 outfile_prefix: Optional[str] = None,
                 froc_plot: Optional[str] = 'plot_luna16_froc',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if annotations is None and (excluded or seriesuids):
            raise ValueError('LUNA16Metric: excluded / seriesuids need '
                             'annotations (or give none of them to use the '
                             "dataset's instances)")
        for path in (annotations, excluded, seriesuids):
            if path is not None and not osp.isfile(path):
                raise FileNotFoundError(f'LUNA16Metric: no such file: {path}')
        check_rates('LUNA16Metric', fp_rates=fp_rates,
                    mean_rates=[0.] if mean_rates is None else mean_rates)
        if breakdowns and annotations is not None:
            raise ValueError(
                'LUNA16Metric: breakdowns=True needs the lesion types of the '
                "dataset's instances; the annotations CSV has none (set "
                'annotations=None)')
        if max_diameter_mm is not None and not float(max_diameter_mm) > 0:
            raise ValueError('LUNA16Metric: max_diameter_mm must be > 0, got '
                             f'{max_diameter_mm}')
        self.annotations = annotations
        self.excluded = excluded
        self.seriesuids = seriesuids
        self.max_marks = max_marks
        self.num_bootstrap = num_bootstrap
        self.seed = seed
        self.confidence = confidence
        self.tnp_sensitivity = tnp_sensitivity
        self.fp_rates = tuple(float(r) for r in fp_rates)
        self.mean_rates = (None if mean_rates is None else
                           tuple(float(r) for r in mean_rates))
        self.breakdowns = bool(breakdowns)
        self.max_diameter_mm = (None if max_diameter_mm is None else
                                float(max_diameter_mm))
        self.rpn_score_cut = (None if rpn_score_cut is None else
                              float(rpn_score_cut))
        self.outfile_prefix = outfile_prefix
        self.froc_plot = froc_plot

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Turn each sample's boxes into world marks (and read its GT:
        centre, diameter, ignore flag and lesion type, -1 when unknown)."""
        for ds in data_samples:
            uid = ds.get('series_uid') or ds.get('img_id')
            where = f"sample img_id={ds.get('img_id')} ({ds.get('img_path')})"
            if uid is None:
                raise ValueError(f'LUNA16Metric: {where} has neither '
                                 'series_uid nor img_id')
            missing = [
                k for k in ('spacing_zyx', 'origin_xyz', 'direction')
                if k not in ds
            ]
            if missing:
                raise ValueError(
                    f'LUNA16Metric: {where} lacks the metainfo {missing} '
                    'needed to put its boxes in world coordinates (add them '
                    'to the meta_keys of PackDetInputs)')
            pred = ds['pred_instances']
            bboxes = to_numpy(pred['bboxes']).astype(np.float64)
            if bboxes.size and (bboxes.ndim != 2 or bboxes.shape[1] != 6):
                raise ValueError(
                    f"LUNA16Metric: {where}: pred_instances['bboxes'] must "
                    f'be (N, 6) [x1, y1, z1, x2, y2, z2], got {bboxes.shape}')
            scores = to_numpy(pred['scores']).astype(np.float64).reshape(-1)
            world, diam = boxes_to_world_candidates(
                bboxes, ds['spacing_zyx'], ds['origin_xyz'], ds['direction'])
            if len(scores) != len(world):
                raise ValueError(f'LUNA16Metric: {where} has {len(world)} '
                                 f'boxes but {len(scores)} scores')
            gts = types = None
            if self.annotations is None:
                gts, types = [], []
                for k, inst in enumerate(ds.get('instances', [])):
                    gts.append(instance_finding(
                        inst, f'LUNA16Metric: {where}, instance {k}'))
                    types.append(int(inst.get('lesion_type', -1)))
            rpn = (to_numpy(pred['rpn_scores']).astype(np.float64).reshape(
                -1) if 'rpn_scores' in pred else scores)
            if self.rpn_score_cut is not None and len(rpn) != len(scores):
                raise ValueError(f'LUNA16Metric: {where} has {len(scores)} '
                                 f'scores but {len(rpn)} rpn_scores')
            self.results.append(
                dict(uid=str(uid), xyz=world, diam=diam, scores=scores,
                     rpn=rpn, gts=gts, gt_types=types))

    def _ground_truth(self, results: List[dict]) -> tuple:
        """Included findings, excluded findings, scans and the lesion types
        of the included findings (from the instances; None from CSVs)."""
        uids = list(OrderedDict.fromkeys(r['uid'] for r in results))
        if self.annotations is not None:
            ann = read_findings_csv(self.annotations)
            exc = (read_findings_csv(self.excluded, allow_duplicates=True)
                   if self.excluded else None)
            if self.seriesuids:
                listed = read_seriesuids_csv(self.seriesuids)
                unknown = sorted(set(uids) - set(listed))
                if unknown:
                    raise ValueError(
                        f'LUNA16Metric: {len(unknown)} evaluated scan(s) are '
                        f'not in {self.seriesuids}, e.g. {unknown[0]}')
                uids = listed
            return ann, exc, uids, None
        rows = {True: [], False: []}
        seen, types = set(), []
        for r in results:
            if r['uid'] in seen:
                continue
            seen.add(r['uid'])
            kinds = r.get('gt_types') or [-1] * len(r['gts'])
            for (centre, diam, ignored), kind in zip(r['gts'], kinds):
                rows[ignored].append((r['uid'], centre, diam))
                if not ignored:
                    types.append(kind)
        return (findings_of(rows[False]), findings_of(rows[True]), uids,
                np.asarray(types, dtype=np.int64))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Evaluate all marks; write the CSV, JSON and PNG."""
        if not results:
            raise ValueError('LUNA16Metric: no sample to evaluate')
        ann, exc, uids, types = self._ground_truth(results)
        if self.max_diameter_mm is not None:
            keep = below_diameter(ann, self.max_diameter_mm)
            ann = select_findings(ann, keep)
            types = None if types is None else types[keep]
        cand = LUNA16Candidates(
            np.asarray([r['uid'] for r in results for _ in r['scores']],
                       dtype=object),
            np.concatenate([r['xyz'] for r in results]).reshape(-1, 3),
            np.concatenate([r['scores'] for r in results]))
        diam = np.concatenate([r['diam'] for r in results])
        effect = None
        if self.rpn_score_cut is not None:
            rpn = np.concatenate([r['rpn'] for r in results])
            effect = score_cut_effect(cand, rpn, ann, exc, uids,
                                      ScoreCutSettings(self.rpn_score_cut,
                                                       self.max_marks,
                                                       self.tnp_sensitivity))
            diam = diam[rpn > self.rpn_score_cut]
            cand = apply_score_cut(cand, rpn, self.rpn_score_cut)
        res = evaluate_luna16(cand, ann, exc, uids, LUNA16Options(
            self.max_marks, self.num_bootstrap, self.seed, self.confidence,
            self.tnp_sensitivity))
        summary = res.to_dict()
        summary['ground_truth'] = (
            dict(annotations=self.annotations, excluded=self.excluded,
                 seriesuids=self.seriesuids) if self.annotations else
            "dataset instances (center_world, diameter_mm; ignore_flag = "
            "excluded)")
        metrics: Dict[str, float] = OrderedDict(cpm=res.cpm)
        metrics.update(self._rate_metrics(res.fps, res.sens))
        if res.bootstrap is not None:
            lo, hi = res.bootstrap.cpm_interval()
            metrics['cpm_lower'], metrics['cpm_upper'] = lo, hi
        tnp = res.tnp['tnp']
        metrics['tnp'] = float('nan') if tnp is None else float(tnp)
        if effect is not None:
            uncut = effect.without_cut.result
            metrics.update(effect.metrics())
            metrics.update(self._rate_metrics(uncut.fps, uncut.sens,
                                              '_uncut'))
            summary['score_cut'] = effect.to_dict()
        summary['subsets'] = dict(
            rule='ground truth filtered, every mark kept (a mark on a lesion '
            'outside the subset is a false positive)',
            max_diameter_mm=self.max_diameter_mm,
            num_lesions=int(len(ann.diameter_mm)))
        if self.breakdowns:
            summary['subsets']['breakdowns'] = self._breakdowns(
                cand, ann, exc, uids, types, metrics)
        counts = res.counts()
        print_log(
            f"LUNA16Metric: {summary['protocol']}; options {res.options}\n"
            f"scans {counts['num_scans']}, nodules {counts['num_nodules']} "
            f"(detected {counts['num_detected']}), marks "
            f"{counts['num_candidates']} (kept {counts['num_kept']}, FP "
            f"{counts['num_fp']}, on excluded findings "
            f"{counts['num_irrelevant']})\n" + ', '.join(
                f'{k}={v:.4f}' for k, v in metrics.items()
                if '_type_' not in k and '_size_' not in k) +
            ('\n(the lesion-type and size breakdowns are in the returned '
             'metrics and the metrics JSON)' if self.breakdowns else ''),
            logger='current')
        prefix = self._resolve_prefix()
        if prefix is not None:
            mkdir_or_exist(osp.dirname(osp.abspath(prefix)))
            write_candidates_csv(f'{prefix}_candidates.csv', cand.seriesuids,
                                 cand.xyz, cand.probability,
                                 diameter_mm=diam)
            atomic_write_json(f'{prefix}_metrics.json', summary, indent=2)
            written = [f'{prefix}_candidates.csv', f'{prefix}_metrics.json']
            if self.froc_plot is not None:
                plot = registered_plot('LUNA16Metric', self.froc_plot)
                plot(res, f'{prefix}_froc.png', name=osp.basename(prefix))
                written.append(f'{prefix}_froc.png')
            print_log(
                f"LUNA16Metric: wrote {', '.join(written[:-1])} and "
                f'{written[-1]}',
                logger='current')
        return metrics

    def _rate_metrics(self, fps: np.ndarray, sens: np.ndarray,
                      suffix: str = '') -> Dict[str, float]:
        """``sens@{r}`` at ``fp_rates`` (and the ``mean@`` key) of a
        curve, each key ending with ``suffix``."""
        out: Dict[str, float] = OrderedDict()
        for rate, value in zip(self.fp_rates,
                               sensitivity_at(fps, sens, self.fp_rates)):
            out[f'sens@{rate_key(rate)}{suffix}'] = float(value)
        if self.mean_rates is not None:
            out[mean_key(self.mean_rates) + suffix] = float(
                np.mean(sensitivity_at(fps, sens, self.mean_rates)))
        return out

    def _breakdowns(self, cand: LUNA16Candidates, ann: LUNA16Findings,
                    exc: LUNA16Findings, uids: List[str],
                    types: Optional[np.ndarray], metrics: dict) -> dict:
        """Every lesion-type and size subset (ground truth filtered,
        marks kept), into ``metrics``; returns the JSON part."""
        out = {}
        subsets = lesion_subsets(types, ann.diameter_mm)
        if not any(s.key.startswith('type_') for s in subsets):
            print_log('LUNA16Metric: no lesion has a known "lesion_type"; '
                      'lesion-type breakdown skipped', logger='current')
        for subset in subsets:
            res = evaluate_luna16(
                cand, select_findings(ann, subset.keep), exc, uids,
                LUNA16Options(max_marks=self.max_marks, num_bootstrap=0,
                              tnp_sensitivity=self.tnp_sensitivity))
            values = self._rate_metrics(res.fps, res.sens,
                                        f'_{subset.key}')
            metrics.update(values)
            out[subset.key] = dict(
                label=subset.label, num_lesions=int(subset.keep.sum()),
                num_detected=int(res.match.detected.sum()),
                metrics={k: (None if np.isnan(v) else v)
                         for k, v in values.items()})
        return out

    def _resolve_prefix(self) -> Optional[str]:
        if self.outfile_prefix is not None:
            return self.outfile_prefix
        log_dir = runner_log_dir()
        return None if log_dir is None else osp.join(log_dir, 'luna16')
