# Copyright (c) mmlesion contributors. All rights reserved.
"""Plan a detector for a dataset from its fingerprint, each choice with its
reason (:func:`plan_dataset`; :mod:`.plan_config` writes the config).

The rules are stated in the constants below and in every choice's reason
(``docs/your_own_data.md`` lists them): the detector family from the slice
thickness, the training scans and the lesion sizes; the spacing, HU window
and slices from the fingerprint; crop and batch within the memory budget,
**estimated** from :data:`MEASURED_MEMORY`; anchors by differential
evolution within the lesion sizes in pixels, on the pyramid levels they
need (:mod:`.plan_anchors`); a schedule of iterations with a warm-up and
steps as shares of them, within a time budget where given
(:mod:`.plan_schedule`), the learning rate scaled linearly with the batch.
"""
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, List, Optional

import numpy as np

from mmlesion.anchors.cube_anchor_coverage import optimise_cube_sizes
from mmlesion.apps.own_data.fingerprint import DatasetFingerprint

from .plan_anchors import plan_anchors, plan_spacing
from .plan_choice import Choice
from .plan_schedule import (MIN_ITERS_PER_EPOCH, ScheduleSettings,
                            TimeBudget, plan_schedule)

MAX_3D_SLICE_MM = 2.5
MIN_3D_SCANS = 100
MAX_3D_LESION_MM = 48.
#: Share of the GPU memory budget kept free (allocator, CUDA context).
MEMORY_MARGIN = .2
#: Patches (CPU budgets): a side of this many times the largest training
#: box, at least PATCH_MIN px, a multiple of 32; trained on where whole
#: slices hold more than PATCH_GAIN patches' pixels.
PATCH_PER_BOX, PATCH_MIN, PATCH_GAIN = 3, 96, 2
#: The heads' channels and sampled RoIs with patches (those of the patch
#: step time, ``TimeBudget.patches``), and mmdet's otherwise.
PATCH_HEADS, MMDET_HEADS = (64, 128), (256, 512)
#: Base configs (relative to the repository's ``configs/``).
BASES = {
    3: 'elixirnet/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
    9: 'elixirnet/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-9slice.py',
    '3d': 'aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py',
}
#: Base anchors of 3D-AG: its LUNA16 cubes (voxels).
BASE_CUBES = dict(strides=(4, 8, 16), sizes=((4, 6), (8, 12), (16, 24)))

@dataclass(frozen=True)
class MemoryRow:
    """A measured training memory figure (module doc)."""
    family: str
    batch: int
    size: float
    gib: float
    source: str


MEASURED_MEMORY = (
    MemoryRow('2.5d', 2, 1333 * 800, 4.0,
              "mmdet's Faster R-CNN R50-FPN 1x, 2 images of up to 1333 x 800 "
              "per GPU: 4.0 GB (mmdet's configs/faster_rcnn/metafile.yml, "
              'V100)'),
    MemoryRow('3d', 1, 128**3, 2012 / 1024,
              '3D-AG (RPN + FPRN) training step on a 128^3 crop, batch 1: '
              '2012 MB (docs/benchmarks.md, benchmark_aggregated3d.py, one '
              'H100)'),
)


def estimate_memory_gib(family: str, batch: int, size: float,
                        factor: float = 1.) -> float:
    """Training memory (GiB) of ``batch`` samples of ``size`` pixels (2.5D)
    or voxels (3D), scaled linearly from :data:`MEASURED_MEMORY` (an
    estimate); ``factor`` for a heavier input (9 slices: 3 groups)."""
    row = next(r for r in MEASURED_MEMORY if r.family == family)
    return row.gib * factor * batch * size / (row.batch * row.size)



@dataclass
class PlanSettings:
    """What :func:`plan_dataset` plans from.

    Args:
        fingerprint (DatasetFingerprint): the dataset's fingerprint.
        gpu_mem_gb (float): GPU memory for training (GiB).
        boxes_2d (np.ndarray, optional): ``(N, 2)`` widths / heights in mm
            of the training key-slice boxes of the 2D export (the 2.5D
            anchors; default: the fingerprint's lesion extents).
        lesions_2d (np.ndarray, optional): ``(M, 2)`` the same of each
            training lesion's box on its own key slice (its largest
            cross-section: the 2.5D spacing; default: ``boxes_2d``).
        train_images (int, optional): training key slices of the 2D export
            (the 2.5D schedule; default: the training lesions).
        context_mm (float, optional): slab half-extent the 2D export holds
            around its key slices (default: enough for 9 slices).
        family (str, optional): ``'2.5d'`` or ``'3d'`` instead of the rule.
        seed (int): seed of the anchor search.
        time_budget (TimeBudget, optional): fit the training into it (2.5D;
            its backbone depth and step time).
        pretrained (bool): 2.5D: start the backbone from ImageNet weights
            (else from random weights: every stage trained, BN in
            training mode).
    """
    fingerprint: DatasetFingerprint
    gpu_mem_gb: float
    boxes_2d: Optional[np.ndarray] = None
    lesions_2d: Optional[np.ndarray] = None
    train_images: Optional[int] = None
    context_mm: Optional[float] = None
    family: Optional[str] = None
    seed: int = 0
    time_budget: Optional[TimeBudget] = None
    pretrained: bool = True


@dataclass
class DatasetPlan:
    """The planned values (:class:`Choice` each, in config order) and
    notes for the user (e.g. a budget below what the plan needs)."""
    family: str
    base: str
    choices: List[Choice] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def value(self, name: str) -> Any:
        """The value of the choice ``name``."""
        return next(c.value for c in self.choices if c.name == name)


@dataclass
class ExportFacts:
    """What the planner reads of the converter's 2D export
    (:func:`read_export_facts`)."""
    boxes_2d: np.ndarray
    train_images: int
    context_mm: float
    has_val: bool
    lesions_2d: Optional[np.ndarray] = None


def read_export_facts(dl_info: str) -> ExportFacts:
    """The training boxes (mm, in mmdet's convention as the detector
    trains on them: a box of first and last pixel ``x1 .. x2`` is ``x2 - x1
    + 1`` pixels wide, :func:`~mmlesion.datasets.deeplesion.dl_info.
    mmdet_box`), training key slices, the slab half-extent held around key
    slices (the median over rows of the slices written on the nearer side,
    less the one kept for interpolation) and whether there is a val split,
    from the 2D export's ``DL_info.csv``; boxes one pixel wide or high are
    left out, as the training ignores them. The training lesions' own
    key-slice boxes (``lesions_2d``) come from ``series_map.json`` beside
    it (None for an export that does not list them)."""
    from mmlesion.datasets.deeplesion.dl_info import mmdet_box, parse_dl_info
    rows = parse_dl_info(dl_info, duplicate_rows='drop')
    train = [r for r in rows if r.split == 1]
    if not train:
        raise ValueError(f'{dl_info}: no training row (Train_Val_Test 1)')
    boxes = np.asarray([mmdet_box(r.bbox) for r in train])
    px = boxes[:, 2:] - boxes[:, :2]
    # a box of one pixel's width or height (a lesion's tip) is ignored in
    # training (DeepLesionDataset): no shape for anchors either
    wh = (px * np.asarray([r.spacing[:2] for r in train]))[(px > 1).all(1)]
    context = np.median([
        (min(r.key_slice_index - r.slice_range[0],
             r.slice_range[1] - r.key_slice_index) - 1) * r.spacing[2]
        for r in rows])
    return ExportFacts(wh, len({r.file_name for r in train}),
                       float(max(context, 0.)), any(r.split == 2
                                                    for r in rows),
                       _own_lesion_boxes(dl_info, train))


def _own_lesion_boxes(dl_info: str, train: list) -> Optional[np.ndarray]:
    """``(M, 2)`` mm of the training lesions' boxes on their own key
    slices, as :func:`read_export_facts` (None without the listing)."""
    import json
    path = osp.join(osp.dirname(dl_info), 'series_map.json')
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        series = json.load(f)
    names = {r.file_name.rsplit('_', 1)[0] for r in train}
    wh = []
    for entry in series:
        if entry.get('series') not in names:
            continue
        if 'lesions' not in entry:
            return None  # written before exports listed them
        sx, sy = entry['spacing_zyx'][2], entry['spacing_zyx'][1]
        for les in entry['lesions']:
            x1, y1, x2, y2 = les['bbox']
            wh.append(((x2 - x1 + 1) * sx, (y2 - y1 + 1) * sy, x2 > x1
                       and y2 > y1))
    wh = np.asarray(wh, np.float64).reshape(-1, 3)
    return wh[wh[:, 2] > 0, :2] if len(wh) else None


def _round(v: float, step: float) -> float:
    return round(round(v / step) * step, 4)


def _family(fp: DatasetFingerprint, forced: Optional[str]) -> Choice:
    train = fp.splits.get('train')
    if train is None or not train.num_lesions:
        raise ValueError(f'{fp.ann_file}: no lesion in the train split; '
                         'nothing to plan a detector from')
    thick = fp.splits['all'].spacing_zyx_mm[0].at(50)
    p95 = train.lesion_diameter_mm.at(95)
    facts = (f'median slice thickness {thick:g} mm (3D-AG: <= '
             f'{MAX_3D_SLICE_MM:g}), {train.num_scans} training scans (>= '
             f'{MIN_3D_SCANS}), 95th pct lesion diameter {p95:.1f} mm (<= '
             f'{MAX_3D_LESION_MM:g})')
    if forced:
        return Choice('detector', forced, f'forced by --family; {facts}')
    ok = (thick <= MAX_3D_SLICE_MM and train.num_scans >= MIN_3D_SCANS
          and p95 <= MAX_3D_LESION_MM)
    return Choice('detector', '3d' if ok else '2.5d',
                  f'{facts}: {"all hold" if ok else "not all hold"}')


def _window(fp: DatasetFingerprint) -> Choice:
    inside = fp.splits['all'].hu_inside
    lo, hi = inside.at(0.5), inside.at(99.5)
    margin = (hi - lo) / 2
    lo, hi = lo - margin, hi + margin
    if hi - lo < 400:
        centre = (lo + hi) / 2
        lo, hi = centre - 200, centre + 200
    lo, hi = max(-1024., _round(lo, 1)), min(3071., _round(hi, 1))
    return Choice('hu_window', (lo, hi), (
        f'HU inside lesions 0.5-99.5th pct {inside.at(0.5):g} .. '
        f'{inside.at(99.5):g} ({inside.n} voxels), widened by half the '
        'range each side, >= 400 HU'))


def _batch(s: PlanSettings, budget: float, per_image: float,
           images: int) -> int:
    """The batch that fits the memory budget, at most 16 (2 on a CPU) and
    small enough for :data:`~.plan_schedule.MIN_ITERS_PER_EPOCH`
    iterations an epoch."""
    most = 2 if s.time_budget and s.time_budget.device == 'cpu' else 16
    return int(np.clip(budget // per_image, 1, min(
        most, max(1, images // MIN_ITERS_PER_EPOCH))))


def _backbone(s: PlanSettings) -> Choice:
    depth = s.time_budget.backbone_depth if s.time_budget else 50
    why = (f'the depth whose step time --budget-minutes is planned with '
           f'({s.time_budget.source})' if s.time_budget else
           "the base's ResNet-50 (ImageNet weights)")
    return Choice('backbone_depth', depth, why)


def _pretrained(s: PlanSettings) -> Choice:
    if s.pretrained:
        return Choice('pretrained', True, (
            'ImageNet weights (torchvision://resnet<depth>), the stem and '
            "first stage frozen and BN statistics kept, as the base's"))
    return Choice('pretrained', False, (
        'random weights (--no-pretrained): every stage trained and BN in '
        'training mode (frozen random layers or BN statistics of no data '
        'would never learn)'))


def _patches(s: PlanSettings, boxes_px: np.ndarray,
             size: float) -> List[Choice]:
    """``patch_size`` (None: whole slices), ``head_channels`` and
    ``rcnn_rois``: on a CPU budget, where whole slices hold more than
    PATCH_GAIN patches, lesion-centred and background patches (two thirds
    centred on a lesion, ``LesionPatchCrop``) with narrower heads, as
    nnDetection trains on patches; whole slices at test time."""
    side = int(32 * math.ceil(max(PATCH_MIN, PATCH_PER_BOX *
                                  boxes_px.max()) / 32))
    b = s.time_budget
    if b is None or b.patches is None or side**2 * PATCH_GAIN > size:
        why = ('no CPU budget' if b is None or b.patches is None else
               f'a {side}^2 px patch ({PATCH_PER_BOX}x the largest training '
               f'box {boxes_px.max():.0f} px, at least {PATCH_MIN}) is more '
               f'than 1/{PATCH_GAIN} of a whole {math.sqrt(size):.0f}^2 px '
               'slice')
        heads = MMDET_HEADS
        patch = Choice('patch_size', None, f'whole slices: {why}')
    else:
        heads = PATCH_HEADS
        patch = Choice('patch_size', side, (
            f'{side}^2 px patches ({PATCH_PER_BOX}x the largest training box '
            f'{boxes_px.max():.0f} px, at least {PATCH_MIN}, multiples of '
            f'32), two thirds centred on a lesion, the rest anywhere, '
            f'instead of whole {math.sqrt(size):.0f}^2 px slices: '
            f'{size / side**2:.1f}x fewer pixels a step for the CPU budget '
            '(whole slices at test time)'))
    why = ('narrower for patches on a CPU budget, as the step time planned '
           'with was measured' if patch.value else "mmdet's Faster R-CNN")
    return [patch,
            Choice('head_channels', heads[0], (
                f'FPN, RPN and RoI channels ({4 * heads[0]} in the RoI '
                f'head\'s FCs), {why}')),
            Choice('rcnn_rois', heads[1], f'RoIs sampled an image, {why}')]


def _plan_2d(s: PlanSettings, plan: DatasetPlan, budget: float) -> None:
    fp = s.fingerprint
    every, train = fp.splits['all'], fp.splits['train']
    data_mm = every.spacing_zyx_mm[2].at(50)
    thick = every.spacing_zyx_mm[0].at(50)
    interval = max(2., _round(thick, 0.1))
    z_slices = train.lesion_extent_zyx_mm[0].at(50) / interval
    context = s.context_mm if s.context_mm is not None else 4 * interval
    slices = 9 if z_slices > 3 and 4 * interval <= context + 1e-6 else 3
    plan.base = BASES[slices]
    wh = np.asarray(s.boxes_2d if s.boxes_2d is not None else np.asarray(
        train.lesion_extents_zyx_mm)[:, [2, 1]], np.float64)
    own = wh if s.lesions_2d is None else np.asarray(s.lesions_2d,
                                                     np.float64)
    spacing, why = plan_spacing(own.max(1), data_mm, (
        'longer side of the training boxes' if s.lesions_2d is None else
        f"longer side of each of the {len(own)} training lesions' own "
        'key-slice box, its largest cross-section'))
    if s.lesions_2d is not None:
        px = wh.max(1) / spacing
        why += (f'; the training boxes ({len(wh)}: a lesion on its own key '
                'slice, and every other lesion crossing a key slice with '
                'its cross-section there, so that the detector is not '
                'taught that part of a lesion is background; a box of one '
                f'pixel left out, as the training ignores it) {px.min():.1f}-'
                f'{px.max():.1f} px, median {np.median(px):.1f} px')
    field_mm = [every.shape_zyx[k].at(50) * every.spacing_zyx_mm[k].at(50)
                for k in (1, 2)]
    size = np.prod(field_mm) / spacing**2
    factor = slices / 3
    per_image = estimate_memory_gib('2.5d', 1, size, factor)
    if per_image > budget:
        spacing = _round(spacing * math.sqrt(per_image / budget), 0.01)
        size = np.prod(field_mm) / spacing**2
        per_image = estimate_memory_gib('2.5d', 1, size, factor)
        why += (f'; coarsened to {spacing:g} mm to fit one image in the '
                f'memory budget: the 5th pct lesion'
                f' then spans {np.percentile(own.max(1), 5) / spacing:.1f}'
                ' px')
    images = s.train_images or train.num_lesions
    batch = _batch(s, budget, per_image, images)
    anchors = plan_anchors(wh / spacing, s.seed)
    patches = _patches(s, wh.max(1) / spacing, size)
    time_budget, step_px = s.time_budget, size
    if patches[0].value:
        time_budget, step_px = s.time_budget.patches, patches[0].value**2
    plan.choices += [
        Choice('pixel_spacing', spacing, why),
        Choice('slice_interval_mm', interval, (
            f'2 mm (DeepLesion, the 2.5D configs) or the median slice '
            f'thickness {thick:g} mm where thicker')),
        Choice('num_slices', slices, (
            f'the median lesion spans {z_slices:.1f} slices of {interval:g}'
            f' mm (9 when > 3 and the 2D export holds +-{4 * interval:g} mm'
            f' around its key slices: it holds +-{context:g} mm)')),
        _window(fp),
        _backbone(s),
        _pretrained(s),
        Choice('batch_size', batch, (
            f'{budget:.1f} GiB usable of {s.gpu_mem_gb:g} GiB '
            f'(minus {MEMORY_MARGIN:.0%}) / {per_image:.2f} GiB per '
            f'{math.sqrt(size):.0f}^2 px image (an estimate: '
            f'{MEASURED_MEMORY[0].source}, scaled by pixels'
            + (', x3 for 9 slices' if slices == 9 else '') + '), at most '
            + ('2 on a CPU' if batch == 2 and s.time_budget and
               s.time_budget.device == 'cpu' else '16')
            + f' and {images} // {MIN_ITERS_PER_EPOCH} (>= '
            f'{MIN_ITERS_PER_EPOCH} iterations an epoch)')),
    ] + anchors.choices + patches
    plan.choices += plan_schedule(ScheduleSettings(
        '2.5d', images, batch, 'training key slices', time_budget, step_px,
        factor, plan.notes))


def _plan_3d(s: PlanSettings, plan: DatasetPlan, budget: float) -> None:
    fp = s.fingerprint
    every, train = fp.splits['all'], fp.splits['train']
    spacing = max(1., _round(every.spacing_zyx_mm[2].at(50), 0.05))
    shape = [every.shape_zyx[k].at(50) * every.spacing_zyx_mm[k].at(50) /
             spacing for k in range(3)]
    crop = [int(min(160, max(32, v // 16 * 16))) for v in shape]
    floor = int(max(32, math.ceil(2 * train.lesion_diameter_mm.at(95) /
                                  spacing / 16) * 16))
    while estimate_memory_gib('3d', 2, np.prod(crop)) > budget and \
            max(crop) - 16 >= floor:
        crop[int(np.argmax(crop))] -= 16
    voxels = float(np.prod(crop))
    batch = int(np.clip(budget // estimate_memory_gib('3d', 1, voxels), 1,
                        min(8, max(1, train.num_scans //
                                   MIN_ITERS_PER_EPOCH))))
    diam = np.asarray(train.lesion_extents_zyx_mm).max(1) / spacing
    sizes, cover = optimise_cube_sizes(diam, BASE_CUBES['strides'],
                                       BASE_CUBES['sizes'], seed=s.seed)
    overlap = int(min(min(crop) - 16, math.ceil(
        train.lesion_diameter_mm.at(95) / spacing / 8) * 8 + 8))
    plan.choices += [
        Choice('spacing_zyx', (spacing, ) * 3, (
            f'isotropic (cube anchors) at the median in-plane spacing '
            f'{every.spacing_zyx_mm[2].at(50):g} mm, at least 1 mm; '
            f'training lesions {diam.min():.1f}-{diam.max():.1f} voxels '
            '(largest extent)')),
        _window(fp),
        Choice('crop', tuple(crop), (
            f'the median scan {[round(v) for v in shape]} voxels, multiples '
            f'of 16 up to 160, shrunk until 2 crops fit the memory budget, '
            f'not below {floor} (twice the 95th pct lesion diameter)')),
        Choice('batch_size', batch, (
            f'{budget:.1f} GiB usable of --gpu-mem-gb {s.gpu_mem_gb:g} / '
            f'{estimate_memory_gib("3d", 1, voxels):.2f} GiB per crop (an '
            f'estimate: {MEASURED_MEMORY[1].source}, scaled by voxels), at '
            'most 8')),
        Choice('overlap', overlap, 'sliding windows overlap the 95th pct '
               'lesion diameter plus 8 voxels (a window sees those whole)'),
        Choice('anchor_sizes', sizes, (
            f'differential evolution on {len(diam)} training lesions '
            f'(cubes of their largest extent, {diam.min():.1f}-'
            f'{diam.max():.1f} voxels): mean best centred IoU '
            f'{cover:.3f}')),
    ]
    plan.choices += plan_schedule(ScheduleSettings(
        '3d', train.num_scans, batch, 'training scans'))


def plan_dataset(settings: PlanSettings) -> DatasetPlan:
    """Plan a detector (module doc).

    Args:
        settings (PlanSettings): fingerprint, memory budget, 2D export facts.

    Returns:
        DatasetPlan: the family, the base config and the choices.

    Raises:
        ValueError: no training lesion, no held-out (test) scan, or a
            non-positive memory budget.
    """
    fp = settings.fingerprint
    if settings.gpu_mem_gb <= 0:
        raise ValueError(f'--gpu-mem-gb must be > 0, got '
                         f'{settings.gpu_mem_gb}')
    if 'test' not in fp.splits:
        raise ValueError(f'{fp.ann_file}: no scan in the test split, so no '
                         'held-out patients to evaluate on; convert with '
                         '--test-fraction (e.g. 0.2)')
    family = _family(fp, settings.family)
    if settings.time_budget is not None and family.value == '3d':
        raise ValueError(
            'a time budget (--budget-minutes) is planned for the 2.5D '
            'detector only (no 3D-AG step time is shipped for it); plan '
            'with --family 2.5d, or without --budget-minutes')
    plan = DatasetPlan(family.value, BASES['3d'], [family])
    budget = settings.gpu_mem_gb * (1 - MEMORY_MARGIN)
    (_plan_3d if family.value == '3d' else _plan_2d)(settings, plan, budget)
    return plan
