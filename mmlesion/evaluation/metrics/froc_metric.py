# Copyright (c) mmlesion contributors. All rights reserved.
"""FROC metric of the DeepLesion 2D "official" protocol.

See docs/protocols.md §1.
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.registry import FUNCTIONS
from mmengine.utils import mkdir_or_exist
from terminaltables import AsciiTable

from mmdet.registry import METRICS
from ..functional.average_precision import ap_at_iou
from ..functional.froc import (DEFAULT_FP_RATES, DEFAULT_MEAN_RATES,
                               DUPLICATE, FALSE_POSITIVE, TRUE_POSITIVE,
                               FROCCurve, filter_gts, match_detections,
                               sens_at_fp)
from ..functional.operating_points import OperatingPoints
from ..functional.breakdown_groups import froc_breakdown_groups
from ..functional.luna16.froc import rate_key
from ..functional.overlaps import BOX_COLUMNS, OVERLAP_MODES
from mmlesion.utils.writing.atomic import atomic_write_json

PROTOCOL_NAME = ('DeepLesion 2D official (3DCE/MULAN lineage, '
                 'docs/protocols.md §1)')
_OUTCOME_NAMES = {
    TRUE_POSITIVE: 'tp',
    FALSE_POSITIVE: 'fp',
    DUPLICATE: 'duplicate'
}
_COCO_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


def to_numpy(value) -> np.ndarray:
    """Tensor / array / list -> numpy array (on the CPU)."""
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_rates(owner: str, **rates: Sequence[float]) -> None:
    """Raise ``ValueError`` unless each list of FP rates is non-empty, finite
    and >= 0."""
    for name, values in rates.items():
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if arr.size == 0 or not np.isfinite(arr).all() or (arr < 0).any():
            raise ValueError(f'{owner}: {name} must be a non-empty '
                             f'list of finite rates >= 0, got {values}')


def mean_key(rates: Sequence[float]) -> str:
    """Name of the mean-sensitivity key, e.g. ``'mean@0.5-4'``."""
    lo, hi = min(rates), max(rates)
    if lo == hi:
        return f'mean@{rate_key(lo)}'
    return f'mean@{rate_key(lo)}-{rate_key(hi)}'


def runner_log_dir() -> Optional[str]:
    """The folder of the current ``MMLogger``'s log file (None without)."""
    log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
    return osp.dirname(osp.abspath(log_file)) if log_file else None


def registered_plot(owner: str, name: str) -> Callable:
    """The function ``name`` of mmengine's ``FUNCTIONS`` registry."""
    plot = FUNCTIONS.get(name)
    if plot is None:
        raise KeyError(f'{owner}: froc_plot {name!r} is not in mmengine\'s '
                       'FUNCTIONS registry (import mmlesion.visualization'
                       ', or set froc_plot=None)')
    return plot


@METRICS.register_module()
class FROCMetric(BaseMetric):
    """Sensitivity at average FPs per image (FROC), DeepLesion protocol.

    The DeepLesion 2D "official" protocol (docs/protocols.md §1, with its
    box convention and subsets); its rules are in
    :mod:`mmlesion.evaluation.functional.froc`.

    Data: ground truth is the meta ``instances`` (raw dataset dicts in
    original image coordinates; pack them with
    ``PackDetInputs(meta_keys=(..., 'instances'))``), less those with
    ``ignore_flag=1``; predictions are ``pred_instances`` (``bboxes`` in the
    original image, ``scores``). Labels are ignored (class-agnostic FROC):
    multi-class models should use class-agnostic NMS for numbers comparable
    with the single-class literature. Every evaluated image counts in the FP
    denominator; with ``skip_all_ignored_images`` an image whose instances
    are *all* ignored is dropped with its detections (as the protocol does).

    Breakdowns filter only the ground truth: by coarse lesion type
    (``instance['lesion_type']`` 1..8) and by long diameter
    (``instance['diameters_mm'][0]``); a group is skipped when no instance
    carries its field, an empty subset gives NaN. ``type_classes=True``
    (labels = coarse type - 1) adds ElixirNet's Table 4 per-class FROC: for
    each type only the detections labelled with it, against the lesions of
    that type.

    Metric keys (default prefix ``froc``, ``r`` formatted with ``'{:g}'``):

    - ``froc/sens@{r}`` for each of ``fp_rates``; headline ``froc/sens@4``.
    - ``froc/mean@{lo}-{hi}``: mean over ``mean_rates`` (``froc/mean@0.5-4``).
    - ``froc/sens@{r}_type_{name}`` and ``froc/mean@{lo}-{hi}_type_{name}``
      with ``name`` in ``bone, abdomen, mediastinum, liver, lung, kidney,
      soft_tissue, pelvis``; with ``type_classes``, the same with
      ``typecls_{name}``; ``froc/sens@{r}_size_{bin}`` ... with ``bin`` in
      ``lt10mm, 10to30mm, gt30mm``.
    - with ``with_coco_map``: ``froc/bbox_mAP``, ``froc/bbox_mAP_50``,
      ``_75``, ``_s``, ``_m``, ``_l`` (mmdet's ``CocoMetric`` on the same
      images, one class, ignored instances as ``iscrowd``; docs/protocols.md
      §4; colliding ``img_id`` are fine).
    - with ``ap_iou_thr=t``: ``froc/mAP@{t}``, keras-retinanet's VOC
      all-point AP at IoU ``t`` (+ 1 pixel, class-agnostic, ignored
      instances neither TP nor FP;
      :func:`~mmlesion.evaluation.functional.average_precision.ap_at_iou`).

    After each evaluation :attr:`operating_points` holds the score threshold
    of each of ``fp_rates``, which ``AtomicCheckpointHook`` records in the
    best checkpoint.

    Files (main process, into ``out_dir``): ``froc_curve.png`` and, with
    ``dump_detections``, ``froc_detections.json`` (protocol, options,
    metrics and per image its ground truth and detections with their
    outcome ``tp`` / ``fp`` / ``duplicate``).

    Args:
        iou_thr (float): overlap threshold for a hit. Defaults to 0.5.
        overlap (str): ``'iou'`` (legacy +1 pixel IoU) or ``'iobb'``
            (intersection over the detected box). Defaults to ``'iou'``.
        fp_rates (Sequence[float]): FPs per image reported. Defaults to
            ``(0.5, 1, 2, 4, 8, 16)``.
        mean_rates (Sequence[float]): rates averaged into the mean key.
            Defaults to ``(0.5, 1, 2, 4)``.
        breakdowns (bool): add lesion-type and size breakdowns. Defaults to
            True.
        type_classes (bool): add the class-aware lesion-type breakdown.
            Defaults to False.
        skip_all_ignored_images (bool): drop images whose instances are all
            ignored. Defaults to True.
        out_dir (str, optional): where to write the PNG and JSON. Defaults to
            the current ``MMLogger``'s log folder; without one, nowhere.
        dump_detections (bool): write ``froc_detections.json``. Defaults to
            True.
        with_coco_map (bool): also compute COCO bbox mAP. Defaults to False.
        ap_iou_thr (float, optional): also compute keras-retinanet's mAP at
            this IoU. Defaults to None.
        log_breakdowns (bool): also log the breakdowns' table rows (they are
            in the returned metrics either way). Defaults to False.
        froc_plot (str, optional): the ``FUNCTIONS`` entry drawing
            ``{stem}_curve.png``. Defaults to ``'plot_froc_curves'``; None:
            no picture.
        collect_device (str): ``'cpu'`` or ``'gpu'`` for collecting results
            across ranks. Defaults to ``'cpu'``.
        prefix (str, optional): key prefix; defaults to ``'froc'``.
        split (str, optional): the data evaluated, first line of the
            curve's title (e.g. ``test split: data/x/DL_info.csv``).
    """
    default_prefix: Optional[str] = 'froc'
    #: 2 for ``x1, y1, x2, y2`` boxes; 3 in :class:`FROC3DMetric`.
    box_dim: int = 2
    #: protocol written into the log and the JSON dump.
    protocol_name: str = PROTOCOL_NAME
    #: what one unit of the FP denominator is.
    fp_unit: str = 'image'
    #: stem of the files written (``{stem}_curve.png``,
    #: ``{stem}_detections.json``).
    file_stem: str = 'froc'

    def __init__(self,
                 iou_thr: float = 0.5,
                 overlap: str = 'iou',
                 fp_rates: Sequence[float] = DEFAULT_FP_RATES,
                 mean_rates: Sequence[float] = DEFAULT_MEAN_RATES,
                 breakdowns: bool = True,
                 type_classes: bool = False,
                 skip_all_ignored_images: bool = True,
                 out_dir: Optional[str] = None,
                 dump_detections: bool = True,
                 with_coco_map: bool = False,
                 ap_iou_thr: Optional[float] = None,
                 log_breakdowns: bool = False,
                 froc_plot: Optional[str] = 'plot_froc_curves',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 split: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.split = split
        if overlap not in OVERLAP_MODES:
            raise ValueError(f'FROCMetric: overlap must be one of '
                             f'{OVERLAP_MODES}, got {overlap!r}')
        if not 0.0 <= float(iou_thr) <= 1.0:
            raise ValueError(f'FROCMetric: iou_thr must be in [0, 1], got '
                             f'{iou_thr}')
        check_rates('FROCMetric', fp_rates=fp_rates, mean_rates=mean_rates)
        self.iou_thr = float(iou_thr)
        self.overlap = overlap
        self.fp_rates = tuple(float(r) for r in fp_rates)
        self.mean_rates = tuple(float(r) for r in mean_rates)
        self.breakdowns = breakdowns
        self.type_classes = bool(type_classes)
        self.skip_all_ignored_images = skip_all_ignored_images
        self.out_dir = out_dir
        self.dump_detections = dump_detections
        self.with_coco_map = with_coco_map
        if ap_iou_thr is not None and not 0.0 < float(ap_iou_thr) <= 1.0:
            raise ValueError('FROCMetric: ap_iou_thr must be in (0, 1], got '
                             f'{ap_iou_thr}')
        self.ap_iou_thr = None if ap_iou_thr is None else float(ap_iou_thr)
        self.log_breakdowns = log_breakdowns
        self.froc_plot = froc_plot
        #: the thresholds of the last evaluation (None before one)
        self.operating_points: Optional[OperatingPoints] = None

    @property
    def mean_key(self) -> str:
        """Name of the mean-sensitivity key, e.g. ``'mean@0.5-4'``."""
        return mean_key(self.mean_rates)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Store ground truth and predictions of a batch (numpy, CPU).

        Args:
            data_batch (dict): the batch from the dataloader (unused).
            data_samples (Sequence[dict]): model outputs as dicts, each with
                ``pred_instances`` and the meta ``instances``.
        """
        for data_sample in data_samples:
            self.results.append(self._parse_sample(data_sample))

    def _parse_sample(self, data_sample: dict) -> dict:
        name = type(self).__name__
        where = (f"image img_id={data_sample.get('img_id')} "
                 f"({data_sample.get('img_path')})")
        if 'instances' not in data_sample:
            raise ValueError(
                f"{name}: {where} has no 'instances': add 'instances' to "
                'the meta_keys of PackDetInputs so that the raw ground truth '
                '(original image coordinates) reaches the metric')
        if 'pred_instances' not in data_sample:
            raise ValueError(f"{name}: {where} has no 'pred_instances'")
        pred = data_sample['pred_instances']
        nb = 2 * self.box_dim
        box_cols = BOX_COLUMNS[self.box_dim]
        bboxes = to_numpy(pred['bboxes']).astype(np.float64)
        if bboxes.size == 0:
            bboxes = bboxes.reshape(0, nb)
        elif bboxes.ndim != 2 or bboxes.shape[1] != nb:
            raise ValueError(f"{name}: {where}: pred_instances['bboxes'] "
                             f'must have shape (N, {nb}) ({box_cols}), got '
                             f'{bboxes.shape}')
        scores = to_numpy(pred['scores']).astype(np.float64).reshape(-1)
        if scores.shape[0] != bboxes.shape[0]:
            raise ValueError(f'{name}: {where} has {bboxes.shape[0]} '
                             f'predicted boxes but {scores.shape[0]} scores')
        labels = (
            to_numpy(pred['labels']).astype(np.int64).reshape(-1)
            if 'labels' in pred else np.zeros(len(scores), dtype=np.int64))

        gt_bboxes, ignore, types, diams = [], [], [], []
        for k, inst in enumerate(data_sample['instances']):
            row = f", row {inst['row']}" if 'row' in inst else ''
            try:
                box = np.asarray(inst['bbox'], dtype=np.float64).reshape(nb)
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(
                    f"{name}: {where}, instance {k}{row}: field 'bbox' "
                    f'must be [{box_cols}], got {inst.get("bbox")!r}'
                ) from err
            gt_bboxes.append(box)
            ignore.append(bool(inst.get('ignore_flag', 0)))
            try:
                lesion_type = inst.get('lesion_type')
                types.append(-1 if lesion_type is None else int(lesion_type))
                diam = inst.get('diameters_mm')
                diams.append(
                    float(diam[0]) if diam is not None and len(diam) else
                    np.nan)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"{name}: {where}, instance {k}{row}: fields "
                    "'lesion_type' (int) / 'diameters_mm' ([long, short]) "
                    f"malformed: {inst.get('lesion_type')!r}, "
                    f"{inst.get('diameters_mm')!r}") from err
        return dict(
            img_id=data_sample.get('img_id'),
            img_path=data_sample.get('img_path'),
            file_name=data_sample.get('file_name'),
            ori_shape=tuple(data_sample['ori_shape'])
            if 'ori_shape' in data_sample else None,
            gt_bboxes=np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, nb),
            gt_ignore=np.asarray(ignore, dtype=bool),
            gt_types=np.asarray(types, dtype=np.int64),
            gt_long_mm=np.asarray(diams, dtype=np.float64),
            has_types=any('lesion_type' in inst
                          for inst in data_sample['instances']),
            has_diams=any(
                inst.get('diameters_mm') is not None
                for inst in data_sample['instances']),
            det_bboxes=bboxes,
            det_scores=scores,
            det_labels=labels)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute FROC sensitivities (and breakdowns, COCO mAP).

        Args:
            results (list): what :meth:`process` stored, for all images.

        Returns:
            dict[str, float]: the metrics, keys without the prefix.
        """
        drop = [
            self.skip_all_ignored_images and len(r['gt_ignore']) > 0
            and bool(r['gt_ignore'].all()) for r in results
        ]
        kept = [r for r, d in zip(results, drop) if not d]
        skipped = [r['img_id'] for r, d in zip(results, drop) if d]
        if not kept:
            raise ValueError(
                f'{type(self).__name__}: no image to evaluate '
                f'({len(results)} received, '
                f'{len(skipped)} dropped because all their instances are '
                'ignored)')
        dets = [
            np.concatenate([
                self._boxes_for_matching(r['det_bboxes']),
                r['det_scores'][:, None]
            ], 1) for r in kept
        ]
        valid = [~r['gt_ignore'] for r in kept]
        gts = [
            self._boxes_for_matching(g)
            for g in filter_gts([r['gt_bboxes'] for r in kept], valid)
        ]
        try:
            match = match_detections(dets, gts, self.iou_thr, self.overlap,
                                     ndim=self.box_dim)
        except ValueError as err:
            found = re.search(r'(?:dets|gts)\[(\d+)\]', str(err))
            if found is None:
                raise
            r = kept[int(found.group(1))]
            kind = ('prediction'
                    if str(err).startswith('dets') else 'ground truth')
            raise ValueError(
                f"{type(self).__name__}: image img_id={r['img_id']} "
                f"({r['img_path']}), "
                f'{kind}: {err}') from err
        curve = match.curve()

        metrics: Dict[str, float] = OrderedDict()
        rows = [['subset', 'lesions'] +
                [f'sens@{rate_key(r)}' for r in self.fp_rates] +
                [self.mean_key]]
        curves = OrderedDict(all=('all lesions', curve))
        self._add_subset(metrics, rows, None, 'all', curve)
        self.operating_points = OperatingPoints(
            fp_unit=self.fp_unit, fp_rates=list(self.fp_rates),
            thresholds=match.thresholds_at_fp(self.fp_rates).tolist(),
            sensitivities=[metrics[f'sens@{rate_key(r)}']
                           for r in self.fp_rates],
            metric=self.prefix or '')

        for key, label, masks, det_masks in froc_breakdown_groups(
                kept, valid, self.breakdowns, self.type_classes,
                type(self).__name__):
            sub_dets = dets if det_masks is None else [
                d[m] for d, m in zip(dets, det_masks)]
            sub_curve = match_detections(
                sub_dets, filter_gts(gts, masks), self.iou_thr, self.overlap,
                ndim=self.box_dim).curve()
            if det_masks is None:
                curves[key] = (label, sub_curve)
            self._add_subset(metrics, rows, key, label, sub_curve)

        extra = {}
        if self.with_coco_map:
            metrics.update(self._coco_map(kept))
            extra['COCO mAP'] = metrics['bbox_mAP']
            extra['COCO AP50'] = metrics['bbox_mAP_50']
        if self.ap_iou_thr is not None:
            # keras-retinanet's mAP (VOC area AP), not COCO's AP50
            key = f'mAP@{rate_key(self.ap_iou_thr)}'
            metrics[key] = extra[key] = ap_at_iou(
                dets, gts, [self._boxes_for_matching(r['gt_bboxes'][~v])
                            for r, v in zip(kept, valid)],
                self.ap_iou_thr)
        rows[0] += list(extra)
        rows[1] += [f'{v:.4f}' for v in extra.values()]
        for row in rows[2:]:
            row += [''] * len(extra)
        if not self.log_breakdowns and len(rows) > 2:
            rows = rows[:2]
            note = (f'breakdowns ({len(curves) - 1} subsets by lesion type '
                    'and size): in the returned metrics (scalars) and '
                    'froc_detections.json, size curves in froc_curve.png '
                    '(log_breakdowns=True logs them here)')
        else:
            note = None
        self._log_table(rows, curve, len(skipped), len(dets), match, note)
        out_dir = self._resolve_out_dir()
        if out_dir is not None:
            mkdir_or_exist(out_dir)
            written = []
            if self.froc_plot is not None:
                self._plot(curves, metrics,
                           osp.join(out_dir, f'{self.file_stem}_curve.png'))
                written.append(f'{self.file_stem}_curve.png')
            if self.dump_detections:
                self._dump(kept, skipped, match, metrics,
                           osp.join(out_dir,
                                    f'{self.file_stem}_detections.json'))
                written.append(f'{self.file_stem}_detections.json')
            if written:
                print_log(
                    f'{type(self).__name__}: wrote {" and ".join(written)} '
                    f'to {out_dir}',
                    logger='current')
        return metrics

    def _boxes_for_matching(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes as the legacy ``+1`` overlaps expect them: as given, or,
        where the dataset's boxes end one past the last pixel
        (``dataset_meta['box_convention'] == 'exclusive'``, DeepLesion's
        loader), with ``x2, y2`` moved back onto the last pixel. A
        prediction narrower than one pixel keeps ``x2 >= x1`` (it counts as
        one pixel wide, the legacy overlaps' smallest box) rather than
        turning inside out."""
        if (self.dataset_meta or {}).get('box_convention') != 'exclusive':
            return boxes
        out = np.array(boxes, dtype=np.float64, copy=True)
        if out.size:
            out[:, 2:4] = np.maximum(out[:, 2:4] - 1.0, out[:, 0:2])
        return out

    def _add_subset(self, metrics: dict, rows: list, key: Optional[str],
                    label: str, curve: FROCCurve) -> None:
        sens = sens_at_fp(curve, self.fp_rates)
        mean = float(np.mean(sens_at_fp(curve, self.mean_rates)))
        suffix = '' if key is None else f'_{key}'
        for rate, value in zip(self.fp_rates, sens):
            metrics[f'sens@{rate_key(rate)}{suffix}'] = float(value)
        metrics[self.mean_key + suffix] = mean
        rows.append([label, str(curve.num_gts)] +
                    [f'{v:.4f}' for v in sens] + [f'{mean:.4f}'])

    def _log_table(self,
                   rows: list,
                   curve: FROCCurve,
                   num_skipped: int,
                   num_images: int,
                   match,
                   note: Optional[str] = None) -> None:
        outcomes = np.concatenate(match.outcomes()) if len(
            match.scores) else np.zeros(0)
        header = (
            f'FROC protocol: {self.protocol_name}\n'
            f'options: overlap={self.overlap} (legacy +1 px) >= '
            f'{self.iou_thr:g}; one global score sort (stable on ties); '
            'multi-hit; duplicates neither TP nor FP; interp1d on the raw '
            'curve, hold-last beyond the last FP rate; class-agnostic; '
            'breakdowns filter ground truth only\n'
            f'images: {num_images} (dropped, all instances ignored: '
            f'{num_skipped}); lesions: {curve.num_gts}; detections: '
            f'{len(outcomes)} (TP {int((outcomes == 1).sum())}, FP '
            f'{int((outcomes == -1).sum())}, duplicate '
            f'{int((outcomes == 0).sum())})')
        table = AsciiTable(rows).table + (f'\n{note}' if note else '')
        print_log(header + '\n' + table, logger='current')

    def _resolve_out_dir(self) -> Optional[str]:
        return self.out_dir if self.out_dir is not None else runner_log_dir()

    def _coco_map(self, kept: List[dict]) -> Dict[str, float]:
        """COCO bbox mAP on the same images, one class, via ``CocoMetric``."""
        from mmdet.evaluation.metrics import CocoMetric

        keys = [f'bbox_{item}' for item in _COCO_ITEMS]
        if sum(len(r['det_scores']) for r in kept) == 0:
            print_log('FROCMetric: no detections, COCO mAP set to 0',
                      logger='current')
            return OrderedDict((k, 0.0) for k in keys)
        coco = CocoMetric(metric='bbox')
        coco.dataset_meta = dict(classes=('lesion', ))
        coco_results = []
        # the image's position is its COCO id: dataset img_ids may collide
        # (a ConcatDataset of two CSVs), which pycocotools would merge
        for img_id, r in enumerate(kept):
            height, width = (r['ori_shape'][:2]
                             if r['ori_shape'] is not None else (0, 0))
            anns = [
                dict(bbox=box.tolist(), bbox_label=0, ignore_flag=int(ig))
                for box, ig in zip(r['gt_bboxes'], r['gt_ignore'])
            ]
            gt = dict(width=width, height=height, img_id=img_id, anns=anns)
            pred = dict(
                img_id=img_id,
                bboxes=r['det_bboxes'],
                scores=r['det_scores'],
                labels=np.zeros(len(r['det_scores']), dtype=np.int64))
            coco_results.append((gt, pred))
        coco_metrics = coco.compute_metrics(coco_results)
        return OrderedDict(
            (k, float(v)) for k, v in coco_metrics.items())

    def _plot(self, curves: Dict[str, tuple], metrics: dict,
              path: str) -> None:
        """Draw the overall and ``size_*`` curves (``curves``: key ->
        ``(label, FROCCurve)``) through ``froc_plot``."""
        plot = registered_plot(type(self).__name__, self.froc_plot)
        shown = {
            k: v
            for k, v in curves.items() if k == 'all' or k.startswith('size_')
        }
        plot(shown, self.fp_rates, path,
             operating_points=[
                 metrics[f'sens@{rate_key(r)}'] for r in self.fp_rates
             ],
             primary='all',
             title=(f'{self.split}\n' if self.split else '') +
             f'FROC, {self.protocol_name.split(" (")[0]}, '
             f'{self.overlap.upper()} >= {self.iou_thr:g}; '
             f'{self.mean_key} = {metrics[self.mean_key]:.4f}',
             fp_unit=self.fp_unit)

    def _dump(self, kept: List[dict], skipped: list, match, metrics: dict,
              path: str) -> None:
        """Write protocol, options, metrics and per-image detections."""
        outcomes = match.outcomes()
        images = []
        for r, codes in zip(kept, outcomes):
            images.append(
                dict(
                    img_id=r['img_id'],
                    img_path=r['img_path'],
                    file_name=r['file_name'],
                    gt_bboxes=r['gt_bboxes'].tolist(),
                    gt_ignored=r['gt_ignore'].tolist(),
                    bboxes=r['det_bboxes'].tolist(),
                    scores=r['det_scores'].tolist(),
                    labels=r['det_labels'].tolist(),
                    outcomes=[_OUTCOME_NAMES[int(c)] for c in codes]))
        payload = dict(
            protocol=self.protocol_name,
            options=dict(
                iou_thr=self.iou_thr,
                overlap=self.overlap,
                overlap_convention='legacy +1 pixel',
                fp_rates=list(self.fp_rates),
                mean_rates=list(self.mean_rates),
                class_agnostic=True,
                tie_order='stable descending score (input order on ties)',
                interpolation='interp1d (np.interp) on the raw curve, '
                'hold-last beyond the last FP rate',
                skip_all_ignored_images=self.skip_all_ignored_images),
            num_images=len(kept),
            num_lesions=int(match.num_gts),
            skipped_img_ids=skipped,
            metrics={
                k: (None if isinstance(v, float) and np.isnan(v) else v)
                for k, v in metrics.items()
            },
            images=images)
        atomic_write_json(path, payload)
