# Copyright (c) mmlesion contributors. All rights reserved.
"""A LENS model on the 3D protocol of the DeepLesion manual test set
(Yan et al., TMI 2020, Sec. VI-A, Table I; docs/protocols.md §2), the logic of
``tools/analysis_tools/eval_lens_3d.py``.

1. Every stored slice of the series that hold an evaluated sub-volume is
   predicted once and the 2D boxes are stacked into 3D findings
   (:func:`predict_series_3d`, IoU > 0.5 on consecutive slices).
2. Sub-volume ``{volume}_{first}-{last}`` of the manual annotation gets the
   2D boxes of its series on slices ``first..last``, stacked again
   (:func:`findings_in_subvolume`): what the detector finds when the
   sub-volume is the scanned volume (its 2.5D inputs still read the
   neighbouring slices).
3. Optionally (row (e)) the FPR network re-scores every finding with Eq. 2.
4. :class:`~mmlesion.evaluation.FROC3DMetric` scores the findings against
   the manual boxes.

Box convention (the paper does not say; the released boxes are inclusive
voxel indices): a finding is scored as ``[x1, y1, z_first, x2, y2,
z_last]``, ``x, y`` as predicted (as the 2D protocol compares DeepLesion's
``Bounding_boxes``), ``z_first``, ``z_last`` its first and last slices.
"""
import json
import logging
import os
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from mmdet.registry import DATASETS, METRICS
from mmlesion.evaluation.functional.box_stacking import (StackSettings,
                                                         stack_slice_boxes)
from mmlesion.evaluation.functional.froc_3d import (
    LENS_FP_RATES, ManualSubVolume, load_deeplesion_manual_3d)
from mmlesion.protocols.luna16_eval import check_outputs
from mmlesion.structures.finding_3d import Finding3D, findings_by_score
from mmlesion.utils.writing.atomic import atomic_write

if TYPE_CHECKING:
    from mmlesion.apis.detector_loader import LoadedDetector

#: Files :func:`evaluate_lens_3d` writes into its output folder.
OUTPUTS = ('metrics.json', 'findings_3d.json', 'froc3d_curve.png',
           'froc3d_detections.json')


def findings_in_subvolume(findings: Sequence[Finding3D], first: int,
                          last: int, iou_thr: float = 0.5) -> List[Finding3D]:
    """Re-stack a series' findings on the slices ``first..last`` only.

    Args:
        findings (Sequence[Finding3D]): findings of the whole series from
            :func:`stack_slice_boxes` with ``score_thr=0`` (so their
            ``boxes_2d`` hold every 2D box of the series).
        first (int): first slice of the sub-volume.
        last (int): last slice (inclusive).
        iou_thr (float): the stacking threshold used for the series.

    Returns:
        list[Finding3D]: as :func:`stack_slice_boxes`.
    """
    zs, boxes, scores = [], [], []
    for f in findings:
        for z, box, score in f.boxes_2d:
            if first <= z <= last:
                zs.append(int(z))
                boxes.append(np.asarray(box, np.float64).reshape(1, 4))
                scores.append(np.asarray([score], np.float64))
    return stack_slice_boxes(zs, boxes, scores, StackSettings(iou_thr))


def findings_to_release_boxes(findings: Sequence[Finding3D]) -> np.ndarray:
    """Findings -> ``(N, 7)`` ``[x1, y1, z_first, x2, y2, z_last, score]``,
    the convention of the manual test set (see the module doc)."""
    rows = []
    for f in findings:
        x1, y1, _, x2, y2, _ = f.bbox_3d
        z1, z2 = f.slice_range
        rows.append([x1, y1, z1, x2, y2, z2, f.score])
    return np.asarray(rows, np.float64).reshape(-1, 7)


def score_subvolumes(findings: Dict[str, List[Finding3D]],
                     subvolumes: Sequence[ManualSubVolume],
                     out_dir: Optional[str] = None) -> Dict[str, float]:
    """The LENS 3D FROC of per-sub-volume findings
    (:class:`~mmlesion.evaluation.FROC3DMetric`, inclusive boxes).

    Args:
        findings (dict): sub-volume name -> findings (``bbox_3d``,
            ``slice_range``, ``score``); a missing name has none.
        subvolumes (Sequence[ManualSubVolume]): the truth; each one is one
            sub-volume of the FP denominator.
        out_dir (str, optional): where the metric writes
            ``froc3d_curve.png`` and ``froc3d_detections.json``.

    Returns:
        dict: ``sens@{r}`` for 1/8..8 FPs per sub-volume and ``average``.
    """
    metric = METRICS.build(
        dict(type='FROC3DMetric', box_convention='inclusive',
             out_dir=out_dir, dump_detections=out_dir is not None))
    samples = []
    for sub in subvolumes:
        dets = findings_to_release_boxes(findings.get(sub.name, []))
        samples.append(
            dict(img_id=sub.name, img_path=sub.volume,
                 pred_instances=dict(bboxes=dets[:, :6], scores=dets[:, 6]),
                 instances=[dict(bbox=b.tolist(), bbox_label=0,
                                 ignore_flag=0) for b in sub.boxes]))
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    out = OrderedDict(
        (f'sens@{float(r):g}', float(res[f'froc3d/sens@{float(r):g}']))
        for r in LENS_FP_RATES)
    out['average'] = float(res['froc3d/mean@0.125-8'])
    return out


def _series_name(series_dir: str) -> str:
    return osp.basename(osp.normpath(series_dir))


@dataclass
class Lens3DEvalSettings:
    """What :func:`evaluate_lens_3d` evaluates, and how.

    Args:
        fpr_config (str, optional): an FPR config: row (e), Eq. 2.
        fpr_checkpoint (str, optional): the FPR weights.
        fpr_cfg_options (dict, optional): overrides of the FPR config,
            those it was trained with.
        experts (list[int], optional): LENS experts to fuse
            (:func:`~mmlesion.methods.lens.experts.set_lens_experts`).
        max_offset (int, optional): predict only slices this close to a key
            slice of the series (default: every stored slice).
        splits (Sequence[str]): splits of the manual file evaluated.
        iou_thr (float): 2D -> 3D stacking IoU (paper: 0.5).
        device (str): torch device.
        overwrite (bool): replace earlier outputs.
        cfg_options (dict, optional): config overrides.
        show_progress (bool): progress bars.
        series (Sequence[str], optional): evaluate only the sub-volumes of
            these series (folder names such as ``000016_01_01``).
        skip_missing_series (bool): skip, with a warning, the sub-volumes
            whose series the test dataset lacks (default: refuse);
            ``metrics.json`` then records ``subset``.
    """
    fpr_config: Optional[str] = None
    fpr_checkpoint: Optional[str] = None
    fpr_cfg_options: Optional[dict] = None
    experts: Optional[List[int]] = None
    max_offset: Optional[int] = None
    splits: Sequence[str] = ('test', )
    iou_thr: float = 0.5
    device: str = 'cpu'
    overwrite: bool = False
    cfg_options: Optional[dict] = None
    show_progress: bool = True
    series: Optional[Sequence[str]] = None
    skip_missing_series: bool = False


#: The protocol line of ``metrics.json``.
PROTOCOL = ('LENS 3D (docs/protocols.md §2): 3D IoBB >= 0.3, '
            'sensitivity at 1/8..8 FPs per sub-volume')


@dataclass
class Lens3DEvaluation:
    """What :func:`evaluate_lens_3d` measured; ``metrics.json`` holds
    :meth:`to_dict`.

    Args:
        sensitivity (dict): ``sens@{r}`` -> sensitivity at ``r`` FPs per
            sub-volume, r = 1/8..8.
        average (float): their mean, the headline.
        sub_volumes (int): sub-volumes evaluated.
        series (int): their series.
        lesions (int): their lesions.
        findings (int): 3D findings scored.
        fpr (bool): whether the FPR re-scored them (row (e), Eq. 2).
        experts (list[int], optional): the LENS experts fused.
        max_offset (int, optional): predicted slices' distance to a key
            slice (None: every stored slice).
        stacking_iou_thr (float): 2D -> 3D stacking IoU.
        splits (list[str]): splits of the manual file.
        subset (dict, optional): for a subset of the sub-volumes: of how
            many sub-volumes and series, the series predicted and skipped.
        files (dict): absolute paths of the config, checkpoint, manual
            file and FPR files.
    """
    sensitivity: Dict[str, float]
    average: float
    sub_volumes: int
    series: int
    lesions: int
    findings: int
    fpr: bool
    experts: Optional[List[int]]
    max_offset: Optional[int]
    stacking_iou_thr: float
    splits: List[str]
    subset: Optional[Dict[str, Any]] = None
    files: Dict[str, Optional[str]] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """``metrics.json``: ``protocol``, the sensitivities, ``average``,
        then the other fields in their order."""
        out: Dict[str, Any] = dict(protocol=PROTOCOL, **self.sensitivity)
        out.update((f.name, getattr(self, f.name)) for f in fields(self)
                   if f.name != 'sensitivity')
        return out


def evaluate_lens_3d(config: str,
                     checkpoint: Optional[str],
                     ann_3d: str,
                     out_dir: str,
                     settings: Optional[Lens3DEvalSettings] = None
                     ) -> Lens3DEvaluation:
    """Predict, (re-score,) score and write the LENS 3D evaluation.

    Args:
        config (str): a LENS (or any 2.5D DeepLesion) detector config; its
            ``test_dataloader.dataset`` gives the series.
        checkpoint (str, optional): its weights (None: random weights, for
            tests of the plumbing).
        ann_3d (str): ``DeepLesion_manual_1K_test_release.pkl`` or a file
            in its format.
        out_dir (str): output folder (:data:`OUTPUTS`).
        settings (Lens3DEvalSettings, optional): the FPR, experts, slices,
            splits, series and device. Defaults to
            ``Lens3DEvalSettings()``.

    Returns:
        Lens3DEvaluation: the sensitivities and counts
        (:meth:`~Lens3DEvaluation.to_dict`: what ``metrics.json`` holds).

    Raises:
        FileExistsError: outputs exist and ``overwrite`` is False.
        ValueError: a sub-volume whose series is not in the test dataset,
            a test dataset that is not in DeepLesion's layout, a bad
            ``--experts`` (each naming the file).
    """
    from mmlesion.apis.series_inference import predict_series_3d
    s = settings or Lens3DEvalSettings()
    check_outputs(out_dir, OUTPUTS, s.overwrite)
    if (s.fpr_config is None) != (s.fpr_checkpoint is None):
        raise ValueError('--fpr-config and --fpr-checkpoint go together')
    subvolumes, total = _manual_subvolumes(ann_3d, s)
    cfg, dataset, model, fpr = _load_lens(config, checkpoint, s)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if infos and 'series_dir' not in infos[0]:
        raise ValueError(
            f'{config}: test_dataloader.dataset ({type(dataset).__name__}) '
            'is not in DeepLesion\'s layout (no series_dir): the 3D '
            'evaluation predicts whole DeepLesion series')
    subvolumes, skipped = _subvolumes_in_dataset(subvolumes, infos, cfg,
                                                 config, ann_3d, s)
    wanted = {sub.volume for sub in subvolumes}
    dataset = dataset.get_subset(
        [i for i, info in enumerate(infos)
         if _series_name(info['series_dir']) in wanted])
    print_log(f'eval_lens_3d: {len(subvolumes)} sub-volumes of '
              f'{len(wanted)} series, '
              f'{int(sum(len(sub.boxes) for sub in subvolumes))} lesions; '
              'predicting every stored slice'
              + ('' if s.max_offset is None else
                 f' within {s.max_offset} of a key slice'), logger='current')
    series = predict_series_3d(model, dataset, iou_thr=s.iou_thr,
                               max_offset=s.max_offset,
                               show_progress=s.show_progress)
    per_sub = {
        sub.name: findings_in_subvolume(series.get(sub.volume, []),
                                        sub.first_slice, sub.last_slice,
                                        s.iou_thr)
        for sub in subvolumes
    }
    if fpr is not None:
        _rescore_subvolumes(per_sub, subvolumes, infos, fpr, s)
    os.makedirs(out_dir, exist_ok=True)
    sens = score_subvolumes(per_sub, subvolumes, out_dir)
    result = _evaluation(
        sens, subvolumes, per_sub, total, s,
        dict(fpr=fpr is not None, series=sorted(series), skipped=skipped))
    result.files = dict(
        config=osp.abspath(config),
        checkpoint=checkpoint and osp.abspath(checkpoint),
        ann_3d=osp.abspath(ann_3d),
        fpr_config=s.fpr_config and osp.abspath(s.fpr_config),
        fpr_checkpoint=s.fpr_checkpoint and osp.abspath(s.fpr_checkpoint))
    _write_outputs(out_dir, result.to_dict(), per_sub)
    return result


def _manual_subvolumes(ann_3d: str, s: Lens3DEvalSettings) -> tuple:
    """The evaluated sub-volumes of the manual file (those of
    ``s.series`` if given) and the counts of all of them."""
    subvolumes = load_deeplesion_manual_3d(ann_3d, splits=tuple(s.splits))
    if not subvolumes:
        raise ValueError(f'{ann_3d}: no sub-volume in split(s) {s.splits}')
    total = dict(sub_volumes=len(subvolumes),
                 series=len({sub.volume for sub in subvolumes}))
    if s.series is not None:
        unknown = sorted(set(s.series) - {sub.volume for sub in subvolumes})
        if unknown:
            raise ValueError(
                f'{ann_3d}: series {unknown[:5]} have no sub-volume in '
                f'split(s) {list(s.splits)}')
        subvolumes = [sub for sub in subvolumes
                      if sub.volume in set(s.series)]
    return subvolumes, total


def _load_lens(config: str, checkpoint: Optional[str],
               s: Lens3DEvalSettings) -> tuple:
    """The config (options merged, experts set), its test dataset, the
    model and the FPR network (or None)."""
    from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                               init_lesion_detector)
    from mmlesion.methods.lens.fpr_rescore import load_fpr_model
    from mmlesion.methods.lens.experts import set_lens_experts
    cfg = Config.fromfile(config)
    if s.cfg_options:
        cfg.merge_from_dict(s.cfg_options)
    if not cfg.get('test_dataloader') or not cfg.test_dataloader.get(
            'dataset'):
        raise ValueError(
            f'{config}: has no test_dataloader.dataset (a config saved by a '
            'run without a test split sets test_dataloader = None): pass '
            'the training config of the model, or give the test dataset '
            'with --cfg-options test_dataloader.dataset.type=... ')
    set_lens_experts(cfg, s.experts, config)
    fpr = load_fpr_model(s.fpr_config, s.fpr_checkpoint, s.device,
                         s.fpr_cfg_options) if s.fpr_config else None
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = init_lesion_detector(
        cfg, checkpoint, DetectorLoadSettings(device=s.device)).model
    return cfg, dataset, model, fpr


def _subvolumes_in_dataset(subvolumes: list, infos: List[dict], cfg,
                           config: str, ann_3d: str,
                           s: Lens3DEvalSettings) -> tuple:
    """The sub-volumes whose series the test dataset has, and the series
    skipped (else refused)."""
    wanted = {sub.volume for sub in subvolumes}
    have = {_series_name(i['series_dir']) for i in infos}
    missing = sorted(wanted - have)
    skipped: List[str] = []
    if missing and s.skip_missing_series and len(missing) < len(wanted):
        skipped = missing
        subvolumes = [sub for sub in subvolumes if sub.volume in have]
        wanted = {sub.volume for sub in subvolumes}
        print_log(
            f'eval_lens_3d: skipping {len(skipped)} of '
            f'{len(skipped) + len(wanted)} evaluated series that the test '
            f'dataset of {config} does not have (e.g. {skipped[:3]}): '
            'the result is for a subset and not comparable with the paper',
            logger='current', level=logging.WARNING)
    elif missing:
        raise ValueError(
            f'{ann_3d}: {len(missing)} of {len(wanted)} evaluated series '
            f'are not in the test dataset of {config} '
            f"({cfg.test_dataloader.dataset.get('data_root')}, split "
            f"{cfg.test_dataloader.dataset.get('split')}), e.g. "
            f'{missing[:5]}: their lesions would count as missed'
            + ('' if s.skip_missing_series else
               ' (--skip-missing-series evaluates the others)'))
    return subvolumes, skipped


def _rescore_subvolumes(per_sub: Dict[str, List[Finding3D]],
                        subvolumes: list,
                        infos: List[dict], fpr: 'LoadedDetector',
                        s: Lens3DEvalSettings) -> None:
    """Row (e): every sub-volume's findings re-scored with Eq. 2 (in
    ``per_sub``, by decreasing score)."""
    from mmlesion.methods.lens.fpr_rescore import (FPRPatchSource,
                                                   rescore_findings_with_fpr)
    print_log('eval_lens_3d: re-scoring the findings with the FPR '
              'network (Eq. 2)', logger='current')
    by_series: Dict[str, List[Finding3D]] = {}
    for sub in subvolumes:
        by_series.setdefault(sub.volume, []).extend(per_sub[sub.name])
    fpr_cfg, fpr_model = fpr.cfg, fpr.model
    # the series folders, whatever the data_root / data_prefix
    images = osp.dirname(osp.normpath(infos[0]['series_dir']))
    spacings = {
        _series_name(i['series_dir']):
        (i['slice_interval'], i['spacing'], i['spacing'])
        for i in infos
    }
    rescored = rescore_findings_with_fpr(
        fpr_model, by_series, fpr_cfg,
        FPRPatchSource(images, dict(img=''), spacings=spacings),
        show_progress=s.show_progress)
    pos = {k: 0 for k in rescored}
    for sub in subvolumes:
        k, n = sub.volume, len(per_sub[sub.name])
        per_sub[sub.name] = findings_by_score(rescored[k][pos[k]:pos[k] + n])
        pos[k] += n


def _evaluation(sens: Dict[str, float], subvolumes: list,
                per_sub: Dict[str, List[Finding3D]], total: dict,
                s: Lens3DEvalSettings, run: dict) -> Lens3DEvaluation:
    """The result but its ``files``; ``run``: ``fpr``, the predicted
    ``series`` and those ``skipped``."""
    sens = dict(sens)
    average = sens.pop('average')
    return Lens3DEvaluation(
        sensitivity=sens,
        average=average,
        sub_volumes=len(subvolumes),
        series=len({sub.volume for sub in subvolumes}),
        lesions=int(sum(len(sub.boxes) for sub in subvolumes)),
        findings=int(sum(len(v) for v in per_sub.values())),
        fpr=run['fpr'],
        experts=None if s.experts is None else [int(e) for e in s.experts],
        max_offset=s.max_offset, stacking_iou_thr=s.iou_thr,
        splits=list(s.splits),
        subset=None if len(subvolumes) == total['sub_volumes'] else dict(
            of_sub_volumes=total['sub_volumes'], of_series=total['series'],
            series=run['series'], skipped_series=run['skipped']))


def _write_outputs(out_dir: str, record: dict,
                   per_sub: Dict[str, List[Finding3D]]) -> None:
    """``metrics.json`` and ``findings_3d.json`` (atomically)."""
    with atomic_write(osp.join(out_dir, 'metrics.json')) as f:
        json.dump(record, f, indent=1)
    keep = ('bbox_3d', 'slice_range', 'key_slice', 'score', 's_lens',
            's_fpr')
    with atomic_write(osp.join(out_dir, 'findings_3d.json')) as f:
        json.dump(
            {name: [dict({k: r[k] for k in keep if k in r},
                         bbox_scored=findings_to_release_boxes([v])[0, :6]
                         .tolist())
                    for v, r in ((v, v.to_dict()) for v in items)]
             for name, items in per_sub.items()}, f, indent=1)
