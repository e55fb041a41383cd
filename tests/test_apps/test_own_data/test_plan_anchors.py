# Copyright (c) mmlesion contributors. All rights reserved.
"""The planned spacing, pyramid levels and anchors against the lesions in
pixels (:mod:`mmlesion.apps.own_data.plan_anchors`) on a coarse-voxel dataset
(3 mm voxels, lesions of 11-32 mm)."""
import numpy as np
from mmengine.config import Config

from mmlesion.anchors.anchor_config import AnchorConfig
from mmlesion.anchors.anchor_coverage import anchor_coverage
from mmlesion.apps.own_data.anchor_grid import grid_positives
from mmlesion.apps.own_data.dataset_plan import PlanSettings, plan_dataset
from mmlesion.anchors.model_pyramid import check_anchor_pyramid
from mmlesion.apps.own_data.plan_anchors import MIN_SMALL_PX, plan_spacing
from mmlesion.apps.own_data.plan_config import (PlanConfigSettings,
                                                format_plan_config)
from mmlesion.testing import repo_root
from tests.test_apps.test_own_data.test_plan_schedule import coarse_fingerprint


def _anchors(gen):
    return AnchorConfig(gen['strides'], gen['base_sizes'], gen['ratios'],
                        gen['scales'])


def test_coarse_voxels_resampled_finer_and_anchors_cover_every_box(
        tmp_path):
    fp = coarse_fingerprint()
    wh_mm = np.asarray(fp.splits['train'].lesion_extents_zyx_mm)[:, [2, 1]]
    plan = plan_dataset(PlanSettings(fp, 24., train_images=22))
    spacing = plan.value('pixel_spacing')
    # finer than the 3 mm voxels: the 5th pct lesion spans >= 16 px
    assert spacing < 3.
    assert np.percentile(wh_mm.max(1), 5) / spacing >= MIN_SMALL_PX - .05
    # every training box has an anchor at IoU >= 0.5; on the stride grid
    # most boxes get several anchors at the RPN's positive IoU 0.7, where
    # anchors of 1-2 strides (the rule before) left most with none
    wh = wh_mm / spacing
    gen = plan.value('anchor_generator')
    cover = anchor_coverage(wh, {'plan': _anchors(gen)})['plan']
    assert cover['frac_iou_ge_thr'] == 1.
    grid = grid_positives(wh, _anchors(gen))
    assert grid.frac_with_positive > .8 and grid.median_positives >= 3
    small = AnchorConfig(gen['strides'], gen['base_sizes'], gen['ratios'],
                         [s / 3 for s in gen['scales']])
    assert grid_positives(wh / 3, small).median_positives == 0
    # only the levels the lesions need; no anchor far outside the lesions
    assert plan.value('num_levels') < 5
    sizes = np.sqrt(_anchors(gen).shapes().prod(1))
    side = np.sqrt(wh.prod(1))
    assert sizes.min() >= side.min() / 1.5 - 1e-3
    assert sizes.max() <= side.max() * 1.5 + 1e-3
    # the base's five levels at the data's spacing missed some boxes
    base = AnchorConfig((4, 8, 16, 32, 64), (4, 8, 16, 32, 64),
                        (.5, 1., 2.), (2., 3., 4., 6., 12.))
    assert anchor_coverage(wh_mm / 3., {'b': base})['b'][
        'frac_iou_ge_thr'] < 1.
    # the written config's model has exactly these levels
    path = tmp_path / 'plan.py'
    path.write_text(format_plan_config(plan, PlanConfigSettings(
        str(repo_root() / 'configs' / plan.base), 'export/', ['made'],
        False)))
    cfg = Config.fromfile(str(path))
    assert check_anchor_pyramid(cfg, _anchors(
        cfg.model.rpn_head.anchor_generator)) == gen['strides']
    assert cfg.model.roi_head.bbox_roi_extractor.featmap_strides == \
        gen['strides'][:4]
    text = '\n'.join(c.reason for c in plan.choices)
    assert f'spans {np.percentile(wh_mm.max(1), 5) / spacing:.1f} px' in text


def test_spacing_rule():
    longer = np.full(20, 10.)
    assert plan_spacing(longer, .5)[0] == .5  # 20 px: as the data
    assert plan_spacing(longer, .7)[0] == .62  # 14 px: finer, to 16 px
    assert plan_spacing(longer, 2.)[0] == .62  # 5 px: finer
    assert plan_spacing(longer, .1)[0] == .32  # 32 px at most: coarser
    assert plan_spacing(np.full(20, 1.), 1.)[0] == .3  # at least 0.3 mm
    # rounded to 0.01 mm the way that keeps the bound: 15 mm at 0.9375
    # mm would print 0.94 mm and 15.96 px "(>= 16)"
    rng = np.random.default_rng(0)
    for small in rng.uniform(5., 40., 200):
        finer = plan_spacing(np.full(20, small), 3.)[0]
        assert small / finer >= MIN_SMALL_PX
        coarser = plan_spacing(np.full(20, small), .01)[0]
        assert small / coarser <= 32.
