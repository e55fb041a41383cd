# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :mod:`mmlesion.anchors.anchor_config`.

Pinned: the checks of an anchor set (lengths, empty or non-positive values
with their messages, a zero), the generator config written (types, ints
for integral sizes, the octave keys set to None) and read back (the type
names accepted, square tuple strides, ``base_sizes`` defaulting to the
strides, explicit scales winning over octave scales, the octave formula,
the messages), the presets and their overrides, and the fit statistics at
the threshold (``<`` not ``<=``), with no boxes, and their summary line
(docs/mutation_testing.md).
"""
import math

import numpy as np
import pytest

from mmlesion.anchors.anchor_config import (PAPER_RATIOS, PAPER_SCALES,
                                            PYRAMIDS, RETINANET_RATIOS,
                                            RETINANET_SCALES, RETINANET_SIZES,
                                            AnchorConfig, AnchorFitStats,
                                            _num, evaluate_anchors)


def test_presets():
    assert RETINANET_SIZES == (32, 64, 128, 256, 512)
    assert PYRAMIDS['P3-P7']['strides'] == (8, 16, 32, 64, 128)
    assert PYRAMIDS['P2-P6']['strides'] == (4, 8, 16, 32, 64)
    assert PYRAMIDS['P2-P6']['sizes'] == RETINANET_SIZES
    assert RETINANET_RATIOS == (0.5, 1.0, 2.0)
    assert RETINANET_SCALES == pytest.approx((1.0, 2**(1 / 3), 2**(2 / 3)))
    assert PAPER_RATIOS == pytest.approx((1 / 3.27, 1 / 1.78, 1, 1.78, 3.27))
    assert PAPER_SCALES == (0.425, 0.540, 0.680)


def test_checks():
    AnchorConfig((8, ), (1e-9, ), (1e-9, ), (1e-9, ))
    with pytest.raises(ValueError) as err:
        AnchorConfig((8, 16), (32., ), (1., ), (1., ))
    assert str(err.value) == '2 strides but 1 sizes'
    for name in ('sizes', 'ratios', 'scales'):
        for bad in ((), (1.0, 0.0), (-1.0, )):
            kwargs = dict(sizes=(32., ), ratios=(1., ), scales=(1., ))
            kwargs[name] = bad
            strides = (8, ) * max(len(kwargs['sizes']), 1)
            if name == 'sizes' and not bad:
                strides = ()
            with pytest.raises(ValueError) as err:
                AnchorConfig(strides=strides, **kwargs)
            assert str(err.value) == (
                f'{name} must be non-empty and positive, got {bad}')


def test_to_generator_cfg():
    cfg = AnchorConfig((8, 16), (32.0, 40.5), (0.5, 2), (1, 1.5))
    gen = cfg.to_generator_cfg()
    assert gen == dict(type='AnchorGenerator', strides=[8, 16],
                       base_sizes=[32, 40.5], ratios=[0.5, 2.0],
                       scales=[1.0, 1.5], octave_base_scale=None,
                       scales_per_octave=None)
    assert type(gen['base_sizes'][0]) is int
    assert type(gen['base_sizes'][1]) is float
    assert type(gen['strides'][0]) is int
    assert type(gen['ratios'][1]) is float and type(gen['scales'][0]) is float
    assert AnchorConfig.from_generator_cfg(gen) == AnchorConfig(
        (8, 16), (32.0, 40.5), (0.5, 2.0), (1.0, 1.5))
    assert _num(3.0) == 3 and type(_num(3.0)) is int
    assert _num(np.float32(2.5)) == 2.5 and type(_num(2.5)) is float


def test_from_generator_cfg_variants():
    base = dict(strides=[8, (16, 16)], ratios=[1], scales=[2])
    for gen_type in ('AnchorGenerator', 'mmdet.AnchorGenerator', None):
        cfg = dict(base) if gen_type is None else dict(base, type=gen_type)
        got = AnchorConfig.from_generator_cfg(cfg)
        # base_sizes default to the strides; square tuples are read
        assert got == AnchorConfig((8, 16), (8.0, 16.0), (1.0, ), (2.0, ))
        assert type(got.strides[1]) is int and type(got.sizes[0]) is float
    with pytest.raises(ValueError) as err:
        AnchorConfig.from_generator_cfg(dict(base, type='SSDAnchorGenerator'))
    assert str(err.value) == ("Only AnchorGenerator configs are supported, "
                              "got type='SSDAnchorGenerator'")
    with pytest.raises(ValueError) as err:
        AnchorConfig.from_generator_cfg(dict(base, strides=[(8, 16)]))
    assert str(err.value) == 'Non-square stride (8, 16) not supported'
    # explicit base_sizes; an empty list falls back to the strides
    got = AnchorConfig.from_generator_cfg(dict(base, base_sizes=[5, 6]))
    assert got.sizes == (5.0, 6.0)
    got = AnchorConfig.from_generator_cfg(dict(base, base_sizes=[]))
    assert got.sizes == (8.0, 16.0)
    # explicit scales win over octave scales
    got = AnchorConfig.from_generator_cfg(
        dict(base, octave_base_scale=4, scales_per_octave=3))
    assert got.sizes == (8.0, 16.0) and got.scales == (2.0, )


def test_octave_scales():
    cfg = dict(strides=[8, 16], ratios=[1.0], octave_base_scale=4,
               scales_per_octave=2)
    got = AnchorConfig.from_generator_cfg(cfg)
    assert got.sizes == (32.0, 64.0)
    assert got.scales == (1.0, math.sqrt(2))
    for missing in ('octave_base_scale', 'scales_per_octave'):
        bad = {k: v for k, v in cfg.items() if k != missing}
        with pytest.raises(ValueError) as err:
            AnchorConfig.from_generator_cfg(bad)
        assert str(err.value) == (
            f'AnchorGenerator config {bad} has neither scales nor '
            'octave_base_scale/scales_per_octave')
    # scales=None is "no scales"
    got = AnchorConfig.from_generator_cfg(dict(cfg, scales=None))
    assert got.scales == (1.0, math.sqrt(2))


def test_retinanet_default():
    default = AnchorConfig.retinanet_default()
    assert default == AnchorConfig((8, 16, 32, 64, 128),
                                   (32.0, 64.0, 128.0, 256.0, 512.0),
                                   RETINANET_RATIOS, RETINANET_SCALES)
    assert type(default.sizes[0]) is float
    p2 = AnchorConfig.retinanet_default('P2-P6')
    assert p2.strides == (4, 8, 16, 32, 64)
    custom = AnchorConfig.retinanet_default(strides=[4, 8], sizes=[16, 32])
    assert custom.strides == (4, 8) and custom.sizes == (16.0, 32.0)
    np.testing.assert_allclose(custom.shapes()[0],
                               [16 * math.sqrt(2), 16 / math.sqrt(2)])


def test_fit_statistics_at_the_threshold():
    anchors = AnchorConfig((8, ), (32., ), (1.0, ), (1.0, ))
    # IoUs exactly 0.5 (32 x 16), 1 and 0.25
    boxes = [[32., 16.], [32., 32.], [16., 16.]]
    stats = evaluate_anchors(boxes, anchors)
    assert stats.num_boxes == 3 and type(stats.num_boxes) is int
    assert stats.num_below == 1  # 0.5 is not below 0.5
    assert stats.iou_thr == 0.5 and type(stats.iou_thr) is float
    assert stats.mean_iou == pytest.approx(1.75 / 3)
    assert stats.objectives['iou'] == pytest.approx(1 - 1.75 / 3)
    assert stats.objectives['ce'] == pytest.approx(
        (math.log(2) + math.log(4)) / 3)
    assert set(stats.objectives) == {'iou', 'ce', 'focal'}
    assert evaluate_anchors(boxes, anchors, iou_thr=0.6).num_below == 2
    assert evaluate_anchors(boxes, anchors, iou_thr=1).num_below == 2
    # shapes instead of a config; a flat list of sizes
    same = evaluate_anchors(np.ravel(boxes), anchors.shapes())
    assert same == stats
    assert stats.summary() == (
        'mean best-anchor IoU 0.5833, boxes with best IoU < 0.5: 1 / 3 '
        '(33.33 %)')


def test_fit_statistics_without_boxes():
    stats = evaluate_anchors(np.zeros((0, 2)),
                             AnchorConfig((8, ), (32., ), (1., ), (1., )))
    assert stats.num_boxes == 0 and stats.num_below == 0
    assert math.isnan(stats.mean_iou)
    assert stats.frac_below == 0.0
    assert AnchorFitStats(0, 0.0, 0, 0.5, {}).frac_below == 0.0
    assert AnchorFitStats(4, 0.0, 1, 0.7, {}).frac_below == 0.25
    assert AnchorFitStats(4, 0.25, 1, 0.7, {}).summary() == (
        'mean best-anchor IoU 0.2500, boxes with best IoU < 0.7: 1 / 4 '
        '(25.00 %)')
