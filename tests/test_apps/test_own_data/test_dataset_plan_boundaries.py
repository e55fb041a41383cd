# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the dataset planner
(:mod:`mmlesion.apps.own_data.dataset_plan`).

Every value and reason of a 2.5D and a 3D plan of made-up fingerprints (the
reasons are what the user reads in the written config), the HU window's
widening and clamping, the schedule's clipping, the family rule at its
thresholds, and the checks and their messages (docs/mutation_testing.md).
"""
import dataclasses

import numpy as np
import pytest

from mmlesion.apps.own_data.dataset_plan import (PlanSettings, _family, _round,
                                                 _window, plan_dataset,
                                                 read_export_facts)
from mmlesion.apps.own_data.fingerprint import Distribution
from tests.helpers.dl_info_rows import lesion_row, write_dl_info_csv
from tests.test_apps.test_own_data.test_dataset_plan import _fingerprint

_SOURCE_2D = ("mmdet's Faster R-CNN R50-FPN 1x, 2 images of up to 1333 x 800 "
              "per GPU: 4.0 GB (mmdet's configs/faster_rcnn/metafile.yml, "
              'V100)')
_SOURCE_3D = ('3D-AG (RPN + FPRN) training step on a 128^3 crop, batch 1: '
              '2012 MB (docs/benchmarks.md, benchmark_aggregated3d.py, one '
              'H100)')
_WINDOW = ((-130., 270.),
           'HU inside lesions 0.5-99.5th pct 20.5 .. 119.5 (200 voxels), '
           'widened by half the range each side, >= 400 HU')


def _choices(plan):
    return [(c.name, c.value, c.reason) for c in plan.choices]


def test_2d_plan():
    plan = plan_dataset(PlanSettings(_fingerprint(scans=20, thick=5.), 6.,
                                     context_mm=6.))
    assert plan.family == '2.5d'
    assert plan.base == ('elixirnet/'
                         'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py')
    assert [
        ('detector', '2.5d',
         'median slice thickness 5 mm (3D-AG: <= 2.5), 20 training scans '
         '(>= 100), 95th pct lesion diameter 14.1 mm (<= 48): not all hold'),
        ('pixel_spacing', 0.32,
         'resampled finer than the median in-plane spacing 0.7 mm so that '
         'the 5th pct lesion (5.2 mm, longer side of the training boxes) '
         'spans 16.1 px (>= 16: 4 cells of the finest stride 4, so that '
         "anchors overlap them at the RPN's IoU 0.7 off the grid points; "
         '<= 32; not finer than 0.3 mm); lesions 15.7-44.8 px, median 33.6 '
         'px'),
        ('slice_interval_mm', 5.0,
         '2 mm (DeepLesion, the 2.5D configs) or the median slice thickness '
         '5 mm where thicker'),
        ('num_slices', 3,
         'the median lesion spans 2.2 slices of 5 mm (9 when > 3 and the 2D '
         'export holds +-20 mm around its key slices: it holds +-6 mm)'),
        ('hu_window', ) + _WINDOW,
    ][:4] == _choices(plan)[:4]
    assert _choices(plan)[5] == (
        'backbone_depth', 50, "the base's ResNet-50 (ImageNet weights)")
    assert [(c.name, c.value, c.expr) for c in plan.choices[-7:]] == [
        ('max_iters', 2000, None), ('iters_per_epoch', 10, None),
        ('max_epochs', 200, '-(-max_iters // iters_per_epoch)'),
        ('warmup_iters', 100,
         'min(500, max(1, round(max_iters * 0.05)))'),
        ('lr_steps', [1333, 1833],
         '[max_iters * 2 // 3, max_iters * 11 // 12]'),
        ('checkpoint_interval', 20, 'max(1, max_epochs // 10)'),
        ('lr', 0.005, None)]
    # from ImageNet weights unless told otherwise
    assert _choices(plan)[6][:2] == ('pretrained', True)
    scratch = plan_dataset(PlanSettings(_fingerprint(scans=20, thick=5.),
                                        6., context_mm=6., pretrained=False))
    assert _choices(scratch)[6] == (
        'pretrained', False, 'random weights (--no-pretrained): every stage '
        'trained and BN in training mode (frozen random layers or BN '
        'statistics of no data would never learn)')


def test_3d_plan():
    plan = plan_dataset(PlanSettings(_fingerprint(), 8.))
    assert plan.family == '3d'
    assert plan.base == ('aggregated3d/'
                         'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py')
    assert [
        ('detector', '3d',
         'median slice thickness 1 mm (3D-AG: <= 2.5), 100 training scans '
         '(>= 100), 95th pct lesion diameter 14.7 mm (<= 48): all hold'),
        ('spacing_zyx', (1.0, 1.0, 1.0),
         'isotropic (cube anchors) at the median in-plane spacing 0.7 mm, '
         'at least 1 mm; training lesions 5.0-15.0 voxels (largest extent)'),
        ('hu_window', ) + _WINDOW,
        ('crop', (144, 144, 160),
         'the median scan [200, 358, 358] voxels, multiples of 16 up to 160, '
         'shrunk until 2 crops fit the memory budget, not below 32 (twice '
         'the 95th pct lesion diameter)'),
        ('batch_size', 2,
         '6.4 GiB usable of --gpu-mem-gb 8 / 3.11 GiB per crop (an '
         f'estimate: {_SOURCE_3D}, scaled by voxels), at most 8'),
        ('overlap', 24,
         'sliding windows overlap the 95th pct lesion diameter plus 8 voxels '
         '(a window sees those whole)'),
        ('anchor_sizes', ((5.49, 6.76), (8.54, 10.15), (12.0, 14.09)),
         'differential evolution on 100 training lesions (cubes of their '
         'largest extent, 5.0-15.0 voxels): mean best centred IoU 0.880'),
    ][:7] == _choices(plan)[:7]
    assert plan.value('max_iters') == 5000  # 100 epochs of 50 (batch 2)
    assert [type(c.value) for c in plan.choices[3:6]] == [tuple, int, int]


def _with(fp, split='all', **kw):
    fp.splits[split] = dataclasses.replace(fp.splits[split], **kw)
    return fp


def test_window():
    # wide enough: widened by half the range each side, whole HU
    fp = _with(_fingerprint(), hu_inside=Distribution.of([-100.3, 300.3]))
    inside = fp.splits['all'].hu_inside
    lo, hi = inside.at(0.5), inside.at(99.5)
    choice = _window(fp)
    assert choice.name == 'hu_window'
    assert choice.value == (round(lo - (hi - lo) / 2),
                            round(hi + (hi - lo) / 2)) == (-297., 497.)
    assert choice.reason == (f'HU inside lesions 0.5-99.5th pct {lo:g} .. '
                             f'{hi:g} (2 voxels), widened by half the range '
                             'each side, >= 400 HU')
    # clamped to -1024 .. 3071
    fp = _with(_fingerprint(), hu_inside=Distribution.of([-1000., 3000.]))
    assert _window(fp).value == (-1024., 3071.)
    # narrow: 400 HU around the centre
    fp = _with(_fingerprint(), hu_inside=Distribution.of([10., 10.]))
    assert _window(fp).value == (-190., 210.)
    # widened to 400.8 HU: kept (-100.2 .. 300.6), not re-centred
    fp = _with(_fingerprint(),
               hu_inside=Distribution.of([0.] * 50 + [200.4] * 50))
    assert _window(fp).value == (-100., 301.)


def test_round():
    assert _round(7.04, 0.05) == 7.05 and _round(0.334, 0.01) == 0.33
    assert _round(1 / 3, 1e-6) == 0.3333


def test_family_thresholds_and_checks():
    # at each threshold: 3D
    fp = _with(_fingerprint(thick=2.5), 'train',
               lesion_diameter_mm=Distribution.of([48., 48.]))
    choice = _family(fp, None)
    assert choice.name == 'detector' and choice.value == '3d'
    assert choice.reason.endswith('diameter 48.0 mm (<= 48): all hold')
    assert _family(_with(fp, 'train', num_scans=99), None).value == '2.5d'
    fp = _with(_fingerprint(thick=2.5), 'train',
               lesion_diameter_mm=Distribution.of([48.1, 48.1]))
    assert _family(fp, None).value == '2.5d'
    assert _family(_fingerprint(thick=2.6), None).value == '2.5d'
    # forced
    choice = _family(_fingerprint(thick=5.), '3d')
    assert choice.name == 'detector' and choice.value == '3d'
    assert choice.reason == (
        'forced by --family; median slice thickness 5 mm (3D-AG: <= 2.5), '
        '100 training scans (>= 100), 95th pct lesion diameter 14.7 mm '
        '(<= 48)')
    # no training lesion
    for fp in (_with(_fingerprint(), 'train', num_lesions=0),
               _fingerprint()):
        if 'all' in fp.splits and fp.splits['train'].num_lesions:
            del fp.splits['train']
        with pytest.raises(ValueError) as err:
            _family(fp, None)
        assert str(err.value) == ('data/x.json: no lesion in the train '
                                  'split; nothing to plan a detector from')


def test_plan_checks():
    with pytest.raises(ValueError) as err:
        plan_dataset(PlanSettings(_fingerprint(), 0.))
    assert str(err.value) == '--gpu-mem-gb must be > 0, got 0.0'
    fp = _fingerprint()
    del fp.splits['test']
    with pytest.raises(ValueError) as err:
        plan_dataset(PlanSettings(fp, 8.))
    assert str(err.value) == (
        'data/x.json: no scan in the test split, so no held-out patients to '
        'evaluate on; convert with --test-fraction (e.g. 0.2)')
    # forced family
    plan = plan_dataset(PlanSettings(_fingerprint(), 8., family='2.5d'))
    assert plan.family == '2.5d' and plan.choices[0].value == '2.5d'


def test_read_export_facts(tmp_path):
    # two lesions on one training key slice at 0.5 mm/px,
    # slabs held around the key slices of 5, 35 and 0 mm (median 5 mm)
    rows = [lesion_row(1, 10, (50, 50), 20, 10, split=1),
            lesion_row(1, 10, (150, 150), 40, 10, split=1),
            lesion_row(2, 10, (50, 50), 20, 10, split=3)]
    for row, rng in zip(rows, ('5, 12', '2, 30', '9, 20')):
        row['Spacing_mm_px_'] = '0.5, 0.5, 5'
        row['Slice_range'] = rng
    # a repeated row (dropped) and a box of first and last pixels 301..302
    # x 301..303, 2 x 3 px in mmdet's convention as trained on (kept: only
    # boxes one pixel wide or high, ignored in training, are left out); the
    # others one pixel wider and higher than their first-to-last distance
    tiny = lesion_row(1, 10, (300, 300), 4, 2, split=1)
    tiny.update({'Spacing_mm_px_': '0.5, 0.5, 5', 'Slice_range': '5, 12',
                 'Bounding_boxes': '301, 301, 302, 303'})
    path = str(tmp_path / 'a.csv')
    facts = read_export_facts(write_dl_info_csv(path,
                                                rows + [dict(rows[0]), tiny]))
    assert facts.boxes_2d.tolist() == [[15.5, 10.5], [25.5, 10.5],
                                       [1., 1.5]]
    assert facts.train_images == 1
    assert type(facts.context_mm) is float and facts.context_mm == 5.
    assert facts.has_val is False
    # a val row; slabs thinner than the interpolation slice: no context
    rows[2]['Train_Val_Test'] = '2'
    for row in rows:
        row['Slice_range'] = '10, 10'
    facts = read_export_facts(write_dl_info_csv(path, rows))
    assert facts.context_mm == 0. and facts.has_val is True
    # no training row
    for row in rows:
        row['Train_Val_Test'] = '3'
    with pytest.raises(ValueError) as err:
        read_export_facts(write_dl_info_csv(path, rows))
    assert str(err.value) == f'{path}: no training row (Train_Val_Test 1)'


def _reasons(plan, *names):
    return [(c.value, c.reason) for c in plan.choices if c.name in names]


def _batch_reason(usable, gpu, per_image, side, slices='', images=400):
    return (f'{usable} GiB usable of {gpu} GiB (minus 20%) / '
            f'{per_image} GiB per {side}^2 px image (an estimate: '
            f'{_SOURCE_2D}, scaled by pixels{slices}), at most 16 and '
            f'{images} // 4 (>= 4 iterations an epoch)')


def test_2d_memory():
    # one image does not fit: coarser pixels, one image of fewer pixels
    plan = plan_dataset(PlanSettings(_fingerprint(scans=20, thick=5.), .37))
    assert _reasons(plan, 'pixel_spacing', 'batch_size') == [
        (0.9, 'resampled finer than the median in-plane spacing 0.7 mm so '
         'that the 5th pct lesion (5.2 mm, longer side of the training '
         'boxes) spans 16.1 px (>= 16: 4 cells of the finest stride 4, so '
         "that anchors overlap them at the RPN's IoU 0.7 off the grid "
         'points; <= 32; not finer than 0.3 mm); lesions 15.7-44.8 px, '
         'median 33.6 px; '
         'coarsened to 0.9 mm to fit one image in the memory budget: the '
         '5th pct lesion then spans 5.7 px'),
        (1, _batch_reason('0.3', '0.37', '0.30', 398, images=20))]
    # at most 16 images
    plan = plan_dataset(PlanSettings(_fingerprint(scans=20, thick=5.), 100.,
                                     train_images=400))
    assert _reasons(plan, 'batch_size') == [
        (16, _batch_reason('80.0', '100', '2.35', 1120))]
    # the pixels of the median scan's y and x extents
    fp = _with(_fingerprint(scans=20, thick=5.),
               shape_zyx=[Distribution.of([v]) for v in (200, 256, 512)])
    assert _reasons(plan_dataset(PlanSettings(fp, 6., train_images=400)),
                    'batch_size') == [
        (4, _batch_reason('4.8', '6', '1.18', 792))]
    # at most a quarter of the images (4 iterations an epoch)
    assert plan_dataset(PlanSettings(fp, 24., train_images=23)).value(
        'batch_size') == 5


def test_2d_nine_slices():
    # 10 mm lesions over 2 mm slices; the default context is +-4 slices
    plan = plan_dataset(PlanSettings(_fingerprint(scans=20), 24.,
                                     train_images=400))
    assert plan.base == ('elixirnet/'
                         'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-9slice.py')
    assert _reasons(plan, 'num_slices', 'batch_size') == [
        (9, 'the median lesion spans 5.4 slices of 2 mm (9 when > 3 and the '
         '2D export holds +-8 mm around its key slices: it holds +-8 mm)'),
        (2, _batch_reason('19.2', '24', '7.06', 1120, ', x3 for 9 slices'))]


@pytest.mark.parametrize('z, context, slices', [
    (6., None, 3),  # exactly 3 slices: not more than 3
    (7., None, 9),  # 3.5 slices
    (7., 8. - 1e-6, 9),  # within the tolerance
    (7., 7.5, 3),  # not within it
])
def test_2d_slices_rule(z, context, slices, monkeypatch):
    import mmlesion.apps.own_data.dataset_plan as dataset_plan
    fp = _fingerprint(scans=20)
    # the lesions' z extent, not their y or x extent (about 10 mm)
    fp.splits['train'].lesion_extent_zyx_mm[0] = Distribution.of([z])
    # (the anchors are not the point here)
    monkeypatch.setattr(dataset_plan, 'plan_anchors', _no_search([]))
    plan = plan_dataset(PlanSettings(fp, 24., context_mm=context))
    assert plan.value('num_slices') == slices


def _no_search(calls):
    """A stand-in for the anchor planning, for the rules around it."""
    from mmlesion.apps.own_data.plan_anchors import AnchorPlan

    def plan(wh, seed=0):
        calls.append((wh, seed))
        return AnchorPlan(None, {}, None, [])
    return plan


def test_2d_anchor_search_inputs(monkeypatch):
    import mmlesion.apps.own_data.dataset_plan as dataset_plan
    calls = []
    monkeypatch.setattr(dataset_plan, 'plan_anchors', _no_search(calls))
    # the lesions' x and y extents (x first), in pixels; thickness 2.5 mm
    fp = _fingerprint(scans=20, thick=2.5)
    ext = np.asarray(fp.splits['train'].lesion_extents_zyx_mm)
    ext[:, 1] *= 2
    fp.splits['train'].lesion_extents_zyx_mm = ext.tolist()
    plan = plan_dataset(PlanSettings(fp, 24., seed=3))
    assert plan.value('slice_interval_mm') == 2.5
    wh, seed = calls[-1]
    np.testing.assert_allclose(wh, ext[:, [2, 1]] / plan.value(
        'pixel_spacing'))
    assert wh.dtype == np.float64 and seed == 3


def test_3d_spacing_and_floor():
    # 1.5 mm: the scan, the lesions, the floor and the overlap in voxels
    plan = plan_dataset(PlanSettings(_fingerprint(inplane=1.5, diam=25.),
                                     8.))
    assert _choices(plan)[1:7] == [
        ('spacing_zyx', (1.5, 1.5, 1.5),
         'isotropic (cube anchors) at the median in-plane spacing 1.5 mm, '
         'at least 1 mm; training lesions 8.4-25.0 voxels (largest extent)'),
        ('hu_window', ) + _WINDOW,
        ('crop', (128, 160, 160),
         'the median scan [133, 512, 512] voxels, multiples of 16 up to 160, '
         'shrunk until 2 crops fit the memory budget, not below 64 (twice '
         'the 95th pct lesion diameter)'),
        ('batch_size', 2,
         '6.4 GiB usable of --gpu-mem-gb 8 / 3.07 GiB per crop (an '
         f'estimate: {_SOURCE_3D}, scaled by voxels), at most 8'),
        ('overlap', 40,
         'sliding windows overlap the 95th pct lesion diameter plus 8 voxels '
         '(a window sees those whole)'),
        ('anchor_sizes', ((9.17, 11.27), (16.23, 19.38), (13.98, 23.3)),
         'differential evolution on 100 training lesions (cubes of their '
         'largest extent, 8.4-25.0 voxels): mean best centred IoU 0.879'),
    ]


def test_3d_small_scan():
    # a small scan: multiples of 16 below it, at least 32; the overlap
    # leaves 16 voxels of the smallest crop side
    fp = _with(_fingerprint(),
               shape_zyx=[Distribution.of([v]) for v in (100, 100, 40)])
    plan = plan_dataset(PlanSettings(fp, 8.))
    assert plan.value('crop') == (96, 64, 32)
    assert plan.value('overlap') == 16


def test_3d_budget_bounds():
    # a tiny budget: shrunk down to the floor, one crop
    plan = plan_dataset(PlanSettings(_fingerprint(), .03))
    assert plan.value('crop') == (32, 32, 32)
    assert plan.value('batch_size') == 1
    # a large one: at most 160 voxels and 8 crops
    plan = plan_dataset(PlanSettings(_fingerprint(), 200.))
    assert plan.value('crop') == (160, 160, 160)
    assert plan.value('batch_size') == 8


def test_3d_seed():
    plan = plan_dataset(PlanSettings(_fingerprint(), 8., seed=1))
    assert plan.value('anchor_sizes') == ((5.48, 10.72), (6.78, 8.69),
                                          (12.45, 14.24))


def test_3d_two_crops_at_exactly_the_budget(monkeypatch):
    import mmlesion.apps.own_data.dataset_plan as dataset_plan
    monkeypatch.setattr(dataset_plan, 'optimise_cube_sizes',
                        lambda *args, **kwargs: (((4., ), ), 0.5))
    # 0.8 x 4.912109375 GiB = 2 x 2012 MB, two 128^3 crops: they fit
    plan = plan_dataset(PlanSettings(_fingerprint(), 4.912109375))
    assert plan.value('crop') == (128, 128, 128)


def test_spacing_from_each_lesions_own_key_slice_box_not_rims(tmp_path):
    """The rim of a neighbouring lesion crossing a key slice is a training
    box there (it is part of a lesion) but not a lesion size: the spacing is
    planned from each training lesion's box on its own key slice (its
    largest cross-section, as the 2D export lists it in series_map.json);
    the anchors still see every training box."""
    from mmlesion.apps.own_data import DeepLesionExporter
    from mmlesion.datasets.volumes import CTVolume

    def disc(z0, cx, radii):  # a lesion's cross-sections, voxel radii
        boxes = {z0 + k: [cx - r, 20. - r, cx + r, 20. + r]
                 for k, r in enumerate(radii)}
        return dict(bbox=[cx - max(radii), 20. - max(radii), z0 - .5,
                          cx + max(radii), 20. + max(radii),
                          z0 + len(radii) - .5], diameter_mm=-1,
                    slice_boxes=boxes)

    exp = DeepLesionExporter(str(tmp_path), num_slices=3, interval_mm=3.,
                             negatives_per_key=0)
    volume = CTVolume(np.zeros((20, 48, 48), np.float32), (3., 1., 1.),
                      (0., 0., 0.))
    # A: key slice 7 (radius 5), its rim (radius 2) on B's key slice 9;
    # B: key slice 9 (radius 4), its rim (radius 1) on A's key slice 7
    exp.add_volume(volume, 'a', [disc(5, 15., (2, 4, 5, 4, 2)),
                                 disc(7, 27., (1, 3, 4, 3, 1))], split=1)
    facts = read_export_facts(exp.write())
    assert sorted(facts.boxes_2d.max(1).tolist()) == [2., 4., 8., 10.]
    assert sorted(facts.lesions_2d.max(1).tolist()) == [8., 10.]
    fp = _fingerprint(scans=20, thick=5.)
    plan = plan_dataset(PlanSettings(fp, 6., boxes_2d=facts.boxes_2d,
                                     lesions_2d=facts.lesions_2d))
    (spacing, why), = _reasons(plan, 'pixel_spacing')
    assert spacing == .5 and why.startswith(
        'resampled finer than the median in-plane spacing 0.7 mm so that '
        "the 5th pct lesion (8.1 mm, longer side of each of the 2 training "
        "lesions' own key-slice box, its largest cross-section) spans 16.2 "
        'px') and why.endswith(
        'lesions 16.0-20.0 px, median 18.0 px; the training boxes (4: a '
        'lesion on its own key slice, and every other lesion crossing a '
        'key slice with its cross-section there, so that the detector is '
        'not taught that part of a lesion is background; a box of one '
        'pixel left out, as the training ignores it) 4.0-20.0 px, median '
        '12.0 px'), why
    # planned from every training box, the rims would set the spacing
    rims = plan_dataset(PlanSettings(fp, 6., boxes_2d=facts.boxes_2d))
    assert rims.value('pixel_spacing') == .3
