# Copyright (c) mmlesion contributors. All rights reserved.
"""The planner's rules on made-up fingerprints, and the config it writes."""
import numpy as np
import pytest
from mmengine.config import Config

from mmlesion.anchors.cube_anchor_coverage import optimise_cube_sizes
from mmlesion.apps.own_data.dataset_plan import (BASES, PlanSettings,
                                                 estimate_memory_gib,
                                                 plan_dataset,
                                                 read_export_facts)
from mmlesion.apps.own_data.plan_config import (PlanConfigSettings,
                                                format_plan_config)
from mmlesion.apps.own_data.fingerprint import (DatasetFingerprint,
                                                Distribution,
                                                SplitFingerprint)
from mmlesion.testing import repo_root
from tests.helpers.dl_info_rows import lesion_row, write_dl_info_csv


def _split(scans, thick, inplane, diam, shape=(200, 512, 512)):
    rng = np.random.default_rng(0)
    ext = np.stack([rng.uniform(.5, 1.5, scans) * diam] * 3, 1)
    return SplitFingerprint(
        scans, scans,
        [Distribution.of([v]) for v in (thick, inplane, inplane)],
        [Distribution.of([v]) for v in shape], {'LPS': scans},
        Distribution.of([1]), Distribution.of(ext.max(1)),
        [Distribution.of(ext[:, k]) for k in range(3)],
        Distribution.of(np.linspace(20, 120, 200)),
        Distribution.of([-1000, 0]), [], [], ext.tolist(), [])


def _fingerprint(scans=100, thick=1., inplane=.7, diam=10.):
    splits = dict(train=_split(scans, thick, inplane, diam),
                  test=_split(max(1, scans // 4), thick, inplane, diam))
    splits['all'] = splits['train']
    return DatasetFingerprint('data/x.json', 'ab' * 32, 'x', ['lesion'],
                              splits, 100, 0)


@pytest.mark.parametrize('kwargs, family, why', [
    (dict(), '3d', 'all hold'),
    (dict(thick=5.), '2.5d', 'median slice thickness 5 mm'),
    (dict(scans=20), '2.5d', '20 training scans (>= 100)'),
    (dict(diam=60.), '2.5d', 'not all hold'),
])
def test_family_rule(kwargs, family, why):
    plan = plan_dataset(PlanSettings(_fingerprint(**kwargs), 24.))
    assert plan.family == family and why in plan.choices[0].reason
    if family == '2.5d':  # 9 slices: lesions over 3 slices, context given
        assert plan.base == BASES[plan.value('num_slices')]
    else:
        assert plan.base == BASES['3d']


def test_2d_choices():
    plan = plan_dataset(PlanSettings(_fingerprint(scans=20, thick=5.), 6.,
                                     context_mm=6.))
    # the 5th pct lesion (longer side) spans >= 16 px: finer than 0.7 mm
    small = np.percentile(np.asarray(
        _fingerprint(scans=20).splits['train'].lesion_extents_zyx_mm)[:, 1:]
        .max(1),
        5)
    assert plan.value('pixel_spacing') == round(small / 16, 2) < .7
    # the median lesion spans about 2 slices of 5 mm: 3 slices
    assert plan.value('num_slices') == 3
    assert plan.value('slice_interval_mm') == 5.  # thicker than 2 mm
    # window: 20..120 HU inside widened by 50 HU each side, >= 400 HU wide
    assert plan.value('hu_window') == (-130., 270.)
    # a 1120^2 px image: 2 fit the memory (at most 20 // 4 images, 4
    # iterations an epoch)
    per_image = estimate_memory_gib('2.5d', 1, (512 * .7 / plan.value(
        'pixel_spacing'))**2)
    assert plan.value('batch_size') == min(5, int(6 * .8 // per_image)) == 2
    gen = plan.value('anchor_generator')
    assert gen['strides'] == [4, 8, 16][:plan.value('num_levels')]
    assert len(gen['scales']) == 5
    assert plan.value('lr') == pytest.approx(.02 * plan.value(
        'batch_size') / 8)
    # 10 mm lesions over 5 slices of 2 mm: 9 slices where the export holds
    # +-8 mm, else 3
    thin = _fingerprint(scans=20)
    assert plan_dataset(PlanSettings(thin, 24.)).value('num_slices') == 9
    assert plan_dataset(PlanSettings(thin, 24., context_mm=6.)).value(
        'num_slices') == 3
    # a small budget coarsens the pixels until one image fits
    tight = plan_dataset(PlanSettings(_fingerprint(scans=20, thick=5.), .1))
    assert tight.value('batch_size') == 1
    assert tight.value('pixel_spacing') > .7
    assert 'coarsened to' in tight.choices[1].reason


def test_3d_choices_and_config(tmp_path):
    plan = plan_dataset(PlanSettings(_fingerprint(), 8.))
    assert plan.value('spacing_zyx') == (1., 1., 1.)  # at least 1 mm
    crop = plan.value('crop')
    assert all(c % 16 == 0 and 32 <= c <= 160 for c in crop)
    assert estimate_memory_gib('3d', 2, np.prod(crop)) <= 8 * .8
    text = format_plan_config(plan, PlanConfigSettings(
        str(repo_root() / 'configs' / plan.base), 'data/', ['made'], False,
        'x.json', dict(train=[0, 2], test=[1])))
    assert '# crop: the median scan' in text
    path = tmp_path / 'plan.py'
    path.write_text(text)
    cfg = Config.fromfile(str(path))
    assert cfg.train_dataloader.dataset.indices == [0, 2]
    assert cfg.test_dataloader.dataset.indices == [1]
    assert cfg.val_dataloader is None and cfg.load_from is None
    assert cfg.model.test_cfg.window_size == crop
    sizes = cfg.model.rpn_head.anchor_generator.sizes
    assert [len(s) for s in sizes] == [2, 2, 2]
    assert cfg.train_pipeline[-2]['window'] == plan.value('hu_window')


def test_no_test_split():
    fp = _fingerprint()
    del fp.splits['test']
    with pytest.raises(ValueError, match='no scan in the test split.*'
                       '--test-fraction'):
        plan_dataset(PlanSettings(fp, 8.))
    with pytest.raises(ValueError, match='--gpu-mem-gb must be > 0'):
        plan_dataset(PlanSettings(_fingerprint(), 0.))


def test_cube_sizes_fit_the_lesions():
    diam = np.r_[np.full(20, 5.), np.full(20, 30.)]
    sizes, iou = optimise_cube_sizes(diam, (4, 8, 16),
                                     ((4, 6), (8, 12), (16, 24)))
    flat = np.concatenate(sizes)
    assert [len(s) for s in sizes] == [2, 2, 2]
    assert np.abs(flat - 5).min() < .5 and np.abs(flat - 30).min() < 1.5
    assert iou > .9


def test_2d_config_with_a_val_split(tmp_path):
    plan = plan_dataset(PlanSettings(_fingerprint(scans=20, thick=5.), 6.,
                                     context_mm=6.))
    path = tmp_path / 'plan.py'
    path.write_text(format_plan_config(plan, PlanConfigSettings(
        str(repo_root() / 'configs' / plan.base), 'export/', ['made'])))
    cfg = Config.fromfile(str(path))
    window = plan.value('hu_window')
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        assert loader.dataset.data_root == 'export/'
        steps = {t['type']: t for t in loader.dataset.pipeline}
        assert steps['WindowHU']['window'] == window
        assert steps['ResampleToSpacing']['spacing'] == plan.value(
            'pixel_spacing')
        assert steps['LoadDeepLesionSlices']['interval_mm'] == 5.
        assert 'Resize' not in steps  # the 512 px resize is replaced
    assert cfg.train_dataloader.batch_size == plan.value('batch_size')
    assert cfg.model.rpn_head.anchor_generator == plan.value(
        'anchor_generator')
    assert cfg.train_cfg.max_epochs == plan.value('max_epochs')
    assert cfg.max_iters == plan.value('max_iters')
    assert cfg.optim_wrapper.optimizer.lr == plan.value('lr')


def test_export_boxes_without_width_are_left_out(tmp_path):
    """A lesion's one-pixel tip on another lesion's key slice (x1 == x2)
    is ignored in training (DeepLesionDataset) and left out of the anchor
    search; the other box is measured as mmdet's convention trains on it
    (x2 - x1 + 1 pixels)."""
    rows = [lesion_row(1, 10, (50, 50), 20, 10, split=1),
            lesion_row(1, 10, (80, 80), 0, 0, split=1)]
    rows[1]['Bounding_boxes'] = '81, 81, 81, 83'
    facts = read_export_facts(write_dl_info_csv(str(tmp_path / 'd.csv'),
                                                rows))
    # 20 x 10 px RECIST + 5 px each side, + 1 (last pixel) at 0.8 mm
    assert facts.boxes_2d.tolist() == [[24.8, 16.8]]
    assert facts.train_images == 1
