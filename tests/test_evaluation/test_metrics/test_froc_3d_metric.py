# Copyright (c) mmlesion contributors. All rights reserved.
"""FROC3DMetric: the LENS 3D protocol as an mmengine metric."""
import json

import numpy as np
import pytest
import torch
from mmengine.registry import FUNCTIONS

import mmlesion.evaluation.metrics.froc_metric as froc_metric_mod
from mmdet.registry import METRICS
from mmlesion.evaluation.functional.froc_3d import load_deeplesion_manual_3d
from mmlesion.evaluation.metrics.froc_3d_metric import (BOX_CONVENTIONS,
                                                        FROC3DMetric)
from mmlesion.testing import shared_data_root
from projects.lens.series_froc_3d import froc_3d_curve, lens_sensitivities


def _sample(img_id, pred_boxes, scores, gt_boxes, ignore=None):
    ignore = ignore or [0] * len(gt_boxes)
    return dict(
        img_id=img_id,
        img_path=f'{img_id}.nii.gz',
        pred_instances=dict(
            bboxes=torch.tensor(pred_boxes, dtype=torch.float32).reshape(
                -1, 6),
            scores=torch.tensor(scores, dtype=torch.float32)),
        instances=[
            dict(bbox=b, bbox_label=0, ignore_flag=i)
            for b, i in zip(gt_boxes, ignore)
        ])


def test_registered_and_counts_subvolumes(tmp_path):
    metric = METRICS.build(dict(type='FROC3DMetric', out_dir=str(tmp_path)))
    gt = [0., 0., 0., 10., 10., 10.]  # continuous: 10 voxels per axis
    samples = [
        # exact box: IoBB 1 (continuous -> inclusive on both sides)
        _sample('a', [gt, [50., 50, 50, 60, 60, 60]], [0.9, 0.4], [gt]),
        # only an ignored lesion: the box on it is an FP
        _sample('b', [gt], [0.8], [gt], ignore=[1]),
        _sample('c', [], [], []),  # lesion-free sub-volume, no boxes
        _sample('d', [[0., 0, 7, 10, 10, 17]], [0.7], [gt]),  # IoBB 0.3
    ]
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    # order: 0.9 TP, 0.8 FP (1/4), 0.7 TP, 0.4 FP (2/4)
    assert res['froc3d/sens@0.125'] == 0.5
    assert res['froc3d/sens@0.25'] == 1.0
    assert res['froc3d/mean@0.125-8'] == pytest.approx(13 / 14)
    assert (tmp_path / 'froc3d_curve.png').stat().st_size > 0
    dump = json.loads((tmp_path / 'froc3d_detections.json').read_text())
    assert dump['num_images'] == 4 and dump['num_lesions'] == 2
    assert dump['images'][0]['outcomes'] == ['tp', 'fp']


def test_inclusive_convention_and_bad_boxes():
    metric = METRICS.build(
        dict(type='FROC3DMetric', box_convention='inclusive'))
    gt = [0., 0., 0., 9., 9., 9.]
    # IoBB with +1 sizes: 3 of 10 slices -> 0.3
    metric.process({}, [_sample('a', [[0., 0, 7, 9, 9, 16]], [0.5], [gt])])
    assert metric.evaluate(1)['froc3d/sens@8'] == 1.0
    with pytest.raises(ValueError, match=r'\(N, 6\)'):
        metric.process({}, [dict(
            img_id='x', pred_instances=dict(
                bboxes=torch.zeros(1, 4), scores=torch.ones(1)),
            instances=[])])
    with pytest.raises(ValueError, match='box_convention'):
        METRICS.build(dict(type='FROC3DMetric', box_convention='mm'))


def test_manual_test_set_perfect_and_shifted():
    root = shared_data_root()
    path = None if root is None else (
        root / 'deeplesion' / 'annotations' /
        'DeepLesion_manual_1K_test_release.pkl')
    if path is None or not path.is_file():
        pytest.skip('DeepLesion_manual_1K_test_release.pkl not available')
    subs = load_deeplesion_manual_3d(str(path), splits=('test', ))
    metric = METRICS.build(
        dict(type='FROC3DMetric', box_convention='inclusive',
             dump_detections=False))
    samples, dets, gts = [], [], []
    for s in subs:
        g = s.local_boxes()
        # every lesion found, plus one FP per sub-volume shifted far away
        d = np.vstack([g, g[:1] + 1000.]) if len(g) else g
        sc = np.r_[np.ones(len(g)), np.full(min(len(g), 1), 0.1)]
        samples.append(_sample(s.name, d.tolist(), sc.tolist(), g.tolist()))
        dets.append(np.hstack([d, sc[:, None]]))
        gts.append(g)
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    assert res['froc3d/mean@0.125-8'] == 1.0
    ref = lens_sensitivities(froc_3d_curve(dets, gts))
    assert res['froc3d/mean@0.125-8'] == ref['average']


# ------------------------------------------------------------- boundaries
# Boundaries of :class:`FROC3DMetric` (:mod:`...metrics.froc_3d_metric`).
#
# Pinned: the LENS defaults (IoBB >= 0.3 inclusive, the seven rates 1/8 .. 8
# reported and averaged, continuous boxes, every sub-volume counted even
# when all its lesions are ignored, no breakdowns, no COCO mAP, the JSON
# dump on), each argument passed on to the FROC machinery, the box
# convention (continuous boxes lose one voxel on both sides; inclusive ones
# are used as given; anything else refused with its message), 3D boxes
# (``box_dim``), and the protocol name, FP unit and file stem in the log,
# the plot and the files (docs/mutation_testing.md).
PROTOCOL = 'LENS 3D (DeepLesion manual 3D test set, docs/protocols.md §2)'
RATE_KEYS = ['sens@0.125', 'sens@0.25', 'sens@0.5', 'sens@1', 'sens@2',
             'sens@4', 'sens@8']
GT = [0., 0., 0., 10., 10., 10.]  # continuous: 10 voxels per axis
AT_THR = [0., 0., 7., 10., 10., 17.]  # continuous: IoBB 0.3 with GT


def _run(metric, samples):
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_defaults():
    m = FROC3DMetric()
    assert m.iou_thr == 0.3 and m.overlap == 'iobb'
    assert m.fp_rates == (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    assert m.mean_rates == m.fp_rates and m.mean_key == 'mean@0.125-8'
    assert m.box_convention == 'continuous'
    assert m.skip_all_ignored_images is False
    assert m.out_dir is None and m.dump_detections is True
    assert m.breakdowns is False and m.with_coco_map is False
    assert m.collect_device == 'cpu' and m.prefix == 'froc3d'
    assert FROC3DMetric.default_prefix == 'froc3d'
    assert FROC3DMetric.box_dim == 3
    assert FROC3DMetric.protocol_name == PROTOCOL
    assert FROC3DMetric.fp_unit == 'sub-volume'
    assert FROC3DMetric.file_stem == 'froc3d'
    assert BOX_CONVENTIONS == ('continuous', 'inclusive')


def test_keys_and_the_threshold_exactly_at_03():
    res = _run(FROC3DMetric(dump_detections=False),
               [_sample('a', [AT_THR], [.9], [GT])])
    assert list(res) == [f'froc3d/{k}' for k in RATE_KEYS] + [
        'froc3d/mean@0.125-8'
    ]
    assert res['froc3d/mean@0.125-8'] == 1.0
    res = _run(FROC3DMetric(iou_thr=0.31, dump_detections=False),
               [_sample('a', [AT_THR], [.9], [GT])])
    assert res['froc3d/mean@0.125-8'] == 0.0
    # IoU 3/17 < 0.3
    res = _run(FROC3DMetric(overlap='iou', dump_detections=False),
               [_sample('a', [AT_THR], [.9], [GT])])
    assert res['froc3d/mean@0.125-8'] == 0.0


def test_rates_prefix_and_collect_device_passed_on():
    m = FROC3DMetric(fp_rates=(1, 2), mean_rates=(2, ), prefix='lens',
                     collect_device='gpu', dump_detections=False)
    assert m.collect_device == 'gpu'
    res = _run(m, [_sample('a', [GT], [.9], [GT])])
    assert list(res) == ['lens/sens@1', 'lens/sens@2', 'lens/mean@2']


def test_all_ignored_sub_volumes_count_unless_skipped():
    samples = [
        _sample('a', [GT, [50., 50, 50, 60, 60, 60]], [.9, .4], [GT]),
        _sample('b', [], [], [GT], ignore=[1]),
    ]
    # 1 FP over 2 sub-volumes = 0.5; over 1 = 1
    res = _run(FROC3DMetric(dump_detections=False), samples)
    assert res['froc3d/sens@0.25'] == 1.0
    res = _run(FROC3DMetric(skip_all_ignored_images=True,
                            dump_detections=False), samples)
    assert res['froc3d/sens@0.5'] == 1.0


def test_box_conventions():
    # continuous: a box covering exactly the lesion's voxels has IoBB 1;
    # an off-by-one box one voxel thick overlaps in the inclusive sense only
    # when converted on both sides
    thin = [0., 0., 9., 10., 10., 10.]  # the last slice of GT
    res = _run(FROC3DMetric(iou_thr=1.0, dump_detections=False),
               [_sample('a', [thin], [.9], [GT])])
    assert res['froc3d/sens@8'] == 1.0
    # inclusive: the same numbers are boxes 11 and 2 slices thick;
    # IoBB 2 / 2 = 1 still, but a box just outside GT now overlaps
    outside = [0., 0., 10., 10., 10., 12.]
    res = _run(FROC3DMetric(box_convention='inclusive',
                            dump_detections=False),
               [_sample('a', [outside], [.9], [GT])])
    assert res['froc3d/sens@8'] == 1.0  # 1 of 3 slices inside (>= 0.3)
    res = _run(FROC3DMetric(dump_detections=False),
               [_sample('a', [outside], [.9], [GT])])
    assert res['froc3d/sens@8'] == 0.0  # continuous: no shared voxel


@pytest.mark.parametrize('bad', ['mm', 'Continuous', None])
def test_unknown_box_convention_message(bad):
    with pytest.raises(ValueError,
                       match=r"^FROC3DMetric: box_convention must be one of "
                       r"\('continuous', 'inclusive'\), got "):
        FROC3DMetric(box_convention=bad)


def test_protocol_fp_unit_and_files(tmp_path, monkeypatch):
    calls, logs = [], []

    def fake_plot(curves, fp_rates, path, **kw):
        calls.append((path, kw))

    FUNCTIONS.register_module(name='_test_froc3d_plot', module=fake_plot,
                              force=True)
    monkeypatch.setattr(froc_metric_mod, 'print_log',
                        lambda msg, logger=None: logs.append(msg))
    m = FROC3DMetric(out_dir=str(tmp_path))
    m.froc_plot = '_test_froc3d_plot'
    _run(m, [_sample('a', [GT], [.9], [GT])])
    assert calls[0][0] == str(tmp_path / 'froc3d_curve.png')
    assert calls[0][1]['fp_unit'] == 'sub-volume'
    assert calls[0][1]['title'].startswith('FROC, LENS 3D, IOBB >= 0.3; '
                                           'mean@0.125-8 = 1.0000')
    dump = json.loads((tmp_path / 'froc3d_detections.json').read_text())
    assert dump['protocol'] == PROTOCOL
    assert dump['options']['iou_thr'] == 0.3
    assert dump['options']['overlap'] == 'iobb'
    assert dump['options']['skip_all_ignored_images'] is False
    assert logs[0].startswith(f'FROC protocol: {PROTOCOL}\n')
    assert logs[-1] == ('FROC3DMetric: wrote froc3d_curve.png and '
                        f'froc3d_detections.json to {tmp_path}')
    # no breakdown rows: one table row for all lesions
    assert 'breakdowns (' not in logs[0]
    # dump off: the JSON is not written
    (tmp_path / 'froc3d_detections.json').unlink()
    m = FROC3DMetric(out_dir=str(tmp_path), dump_detections=False)
    m.froc_plot = None
    _run(m, [_sample('a', [GT], [.9], [GT])])
    assert not (tmp_path / 'froc3d_detections.json').exists()


def test_2d_boxes_are_refused():
    m = FROC3DMetric()
    with pytest.raises(ValueError, match=r'\(N, 6\)'):
        m.process({}, [dict(
            img_id='x', pred_instances=dict(
                bboxes=torch.zeros(1, 4), scores=torch.ones(1)),
            instances=[])])
