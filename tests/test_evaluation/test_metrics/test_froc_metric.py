# Copyright (c) mmlesion contributors. All rights reserved.
import json

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from mmdet.registry import METRICS
from mmlesion.evaluation.functional import (filter_gts, froc_curve,
                                            sens_at_fp)
from mmlesion.evaluation.metrics import FROCMetric

LIVER = [10., 10., 29., 29.]  # 20 x 20 px
LUNG = [100., 100., 104., 104.]  # 5 x 5 px
FAR = [300., 300., 339., 339.]


def inst(bbox, lesion_type=4, long_mm=15.0, ignore=0, row=2):
    return dict(
        bbox=list(bbox),
        bbox_label=0,
        ignore_flag=ignore,
        lesion_type=lesion_type,
        diameters_mm=[long_mm, long_mm / 2],
        diameters_px=[long_mm / 0.8, long_mm / 1.6],
        recist=[[0, 0]] * 4,
        noisy=False,
        row=row)


def sample(img_id, instances, boxes, scores, labels=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    scores = torch.tensor(scores, dtype=torch.float32)
    if labels is None:
        labels = torch.zeros(len(scores), dtype=torch.long)
    return dict(
        img_id=img_id,
        img_path=f'/data/Images_png/000001_01_01/{100 + img_id:03d}.png',
        ori_shape=(512, 512),
        instances=instances,
        pred_instances=dict(
            bboxes=boxes, scores=scores, labels=torch.as_tensor(labels)))


def fake_samples():
    return [
        # liver lesion found, lung lesion missed, one FP
        sample(0, [inst(LIVER, 4, 15.0), inst(LUNG, 5, 4.0)],
               [LIVER, FAR], [0.9, 0.6]),
        # lung lesion found late, a duplicate, an FP first
        sample(1, [inst(LUNG, 5, 35.0)], [FAR, LUNG, LUNG],
               [0.8, 0.7, 0.65]),
        # an image without lesions
        sample(2, [], [FAR], [0.75]),
        # only an ignored (noisy) lesion: dropped with its detections
        sample(3, [inst(LIVER, 4, 20.0, ignore=1)], [FAR], [0.95]),
    ]


def expected_inputs(samples):
    kept = [s for s in samples if s['img_id'] != 3]
    dets = [
        np.concatenate([
            s['pred_instances']['bboxes'].numpy(),
            s['pred_instances']['scores'].numpy()[:, None]
        ], 1).astype(np.float64) for s in kept
    ]
    gts = [np.array([i['bbox'] for i in s['instances']]).reshape(-1, 4)
           for s in kept]
    types = [np.array([i['lesion_type'] for i in s['instances']])
             for s in kept]
    return dets, gts, types


def run_metric(samples, **kwargs):
    metric = FROCMetric(**kwargs)
    metric.dataset_meta = dict(classes=('lesion', ))
    metric.process({}, samples[:2])
    metric.process({}, samples[2:])
    return metric.evaluate(len(samples))


def test_registered():
    assert METRICS.get('FROCMetric') is FROCMetric
    metric = METRICS.build(dict(type='FROCMetric', overlap='iobb'))
    assert metric.overlap == 'iobb'


def test_keys_values_and_files(tmp_path):
    samples = fake_samples()
    res = run_metric(samples, out_dir=str(tmp_path))
    headline = [f'froc/sens@{r}' for r in ('0.5', '1', '2', '4', '8', '16')]
    for key in headline + ['froc/mean@0.5-4']:
        assert key in res
    for name in ('bone', 'abdomen', 'mediastinum', 'liver', 'lung', 'kidney',
                 'soft_tissue', 'pelvis'):
        assert f'froc/sens@4_type_{name}' in res
        assert f'froc/mean@0.5-4_type_{name}' in res
    for name in ('lt10mm', '10to30mm', 'gt30mm'):
        assert f'froc/sens@0.5_size_{name}' in res

    # same numbers as the plain functions on the same (filtered) data
    dets, gts, types = expected_inputs(samples)
    curve = froc_curve(dets, gts)
    assert curve.num_images == 3 and curve.num_gts == 3
    want = sens_at_fp(curve, (0.5, 1, 2, 4, 8, 16))
    assert [res[k] for k in headline] == want.tolist()
    assert res['froc/mean@0.5-4'] == pytest.approx(want[:4].mean())
    # hand-worked: order FAR(.9 img0 is LIVER) ... see the outcomes below
    # img0 LIVER .9 TP; img1 FAR .8 FP; img2 FAR .75 FP; img1 LUNG .7 TP;
    # img1 LUNG .65 duplicate; img0 FAR .6 FP -> 3 images
    assert curve.fps_per_image.tolist() == [0, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1]
    assert curve.sensitivity.tolist() == [
        1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3
    ]
    assert res['froc/sens@0.5'] == pytest.approx(1 / 3)
    assert res['froc/sens@1'] == pytest.approx(2 / 3)
    assert res['froc/sens@16'] == pytest.approx(2 / 3)  # hold-last

    # breakdown: ground truth filtered, predictions kept
    lung_masks = [t == 5 for t in types]
    lung = sens_at_fp(froc_curve(dets, filter_gts(gts, lung_masks)), [0.5])
    assert res['froc/sens@0.5_type_lung'] == lung[0] == 0.0
    assert res['froc/sens@0.5_type_liver'] == 1.0
    assert np.isnan(res['froc/sens@4_type_bone'])  # no bone lesion
    assert res['froc/sens@16_size_lt10mm'] == 0.0  # the missed 4 mm lesion
    assert res['froc/sens@16_size_gt30mm'] == 1.0
    assert res['froc/sens@16_size_10to30mm'] == 1.0

    png = tmp_path / 'froc_curve.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    dump = json.loads((tmp_path / 'froc_detections.json').read_text())
    assert dump['num_images'] == 3 and dump['num_lesions'] == 3
    assert dump['skipped_img_ids'] == [3]
    assert dump['options']['overlap'] == 'iou'
    assert 'docs/protocols.md §1' in dump['protocol']
    by_id = {im['img_id']: im for im in dump['images']}
    assert by_id[0]['outcomes'] == ['tp', 'fp']
    assert by_id[1]['outcomes'] == ['fp', 'tp', 'duplicate']
    assert by_id[2]['outcomes'] == ['fp']
    assert dump['metrics']['sens@4'] == res['froc/sens@4']
    assert dump['metrics']['sens@4_type_bone'] is None  # NaN -> null


def test_all_ignored_images_can_be_kept(tmp_path):
    kwargs = dict(fp_rates=(0.2, 1), breakdowns=False, dump_detections=False)
    skipped = run_metric(fake_samples(), out_dir=str(tmp_path), **kwargs)
    # 3 images: the .9 TP comes first, at 0 FPs per image
    assert skipped['froc/sens@0.2'] == pytest.approx(1 / 3)
    kept = run_metric(
        fake_samples(),
        out_dir=str(tmp_path),
        skip_all_ignored_images=False,
        **kwargs)
    # 4 images: the .95 FP of image 3 comes first (0.25 FPs per image, and
    # a rate below the first point of the curve gives 0)
    assert kept['froc/sens@0.2'] == 0.0
    assert kept['froc/sens@1'] == pytest.approx(2 / 3)
    assert not any('type_' in k for k in kept)
    assert (tmp_path / 'froc_curve.png').exists()
    assert not (tmp_path / 'froc_detections.json').exists()


def test_class_agnostic_and_iobb(tmp_path):
    samples = fake_samples()
    base = run_metric(samples, breakdowns=False, out_dir=str(tmp_path))
    relabelled = fake_samples()
    for s in relabelled:
        n = len(s['pred_instances']['scores'])
        s['pred_instances']['labels'] = torch.arange(n) % 3
    assert run_metric(relabelled, breakdowns=False,
                      out_dir=str(tmp_path)) == base

    # a small detection inside the liver lesion: a miss with IoU, a hit
    # with IoBB
    small = [sample(0, [inst(LIVER)], [[15., 15., 20., 20.]], [0.9])]
    iou = run_metric(small, breakdowns=False, out_dir=str(tmp_path))
    iobb = run_metric(
        small, breakdowns=False, overlap='iobb', out_dir=str(tmp_path))
    assert iou['froc/sens@4'] == 0.0
    assert iobb['froc/sens@4'] == 1.0


def test_class_aware_type_breakdown(tmp_path):
    """type_classes: a lesion found with the wrong type is a miss of its
    type and an FP of the predicted one (ElixirNet Table 4's measure); the
    plain type breakdown still counts it as found."""
    liver, lung = 4, 5  # coarse types; labels are type - 1
    samples = [
        # liver lesion labelled liver, lung lesion labelled liver
        sample(0, [inst(LIVER, liver), inst(LUNG, lung)], [LIVER, LUNG],
               [0.9, 0.8], labels=[liver - 1, liver - 1]),
        # the same lung lesion labelled lung, later in the ranking
        sample(1, [inst(LUNG, lung)], [LUNG], [0.5], labels=[lung - 1]),
    ]
    res = run_metric(samples, type_classes=True, fp_rates=(0.5, 4),
                     out_dir=str(tmp_path))
    # class-agnostic breakdown: every lesion found at 0 FPs
    assert res['froc/sens@4_type_liver'] == 1.0
    assert res['froc/sens@4_type_lung'] == 1.0
    # class-aware: the liver lesion found; of the two lung lesions only the
    # one labelled lung (image 1), and the lung box labelled liver is one
    # FP of the liver class over 2 images (0.5 FP per image)
    assert res['froc/sens@4_typecls_liver'] == 1.0
    assert res['froc/sens@4_typecls_lung'] == 0.5
    # a type without lesions gives NaN, as the plain breakdown
    assert np.isnan(res['froc/sens@4_typecls_bone'])
    assert 'froc/sens@4_typecls_lung' not in run_metric(
        samples, fp_rates=(0.5, 4), out_dir=str(tmp_path))
    # relabelling the lung box of image 1 as liver: the lung class finds
    # nothing
    samples[1]['pred_instances']['labels'] = torch.tensor([liver - 1])
    res = run_metric(samples, type_classes=True, fp_rates=(0.5, 4),
                     out_dir=str(tmp_path))
    assert res['froc/sens@4_typecls_lung'] == 0.0
    assert res['froc/sens@4_type_lung'] == 1.0
    # a single-type data set cannot give the class-aware breakdown
    no_types = [sample(0, [dict(inst(LIVER), lesion_type=None)], [LIVER],
                       [0.9])]
    for s in no_types:
        s['instances'][0].pop('lesion_type')
    with pytest.raises(ValueError, match='type_classes=True'):
        run_metric(no_types, type_classes=True, out_dir=str(tmp_path))


def test_custom_rates_and_prefix(tmp_path):
    res = run_metric(
        fake_samples(),
        fp_rates=(0.125, 3),
        mean_rates=(1, 2, 3, 4),
        breakdowns=False,
        prefix='val',
        out_dir=str(tmp_path))
    assert sorted(res) == ['val/mean@1-4', 'val/sens@0.125', 'val/sens@3']


def test_no_detections(tmp_path):
    samples = [sample(0, [inst(LIVER)], [], []), sample(1, [], [], [])]
    res = run_metric(
        samples, breakdowns=False, with_coco_map=True, out_dir=str(tmp_path))
    assert res['froc/sens@4'] == 0.0
    assert res['froc/bbox_mAP'] == 0.0
    assert (tmp_path / 'froc_curve.png').exists()


def test_keras_retinanet_map_key(tmp_path, log_messages):
    """mAP@0.5 (what the Improved RetinaNet schedule monitors): kept images
    0-2; sorted TP .9, FP .8, FP .75, TP .7, duplicate .65, FP .6 on 3
    lesions -> AP = 1/3 * 1 + 1/3 * 1/2."""
    res = run_metric(
        fake_samples(), breakdowns=False, ap_iou_thr=0.5,
        out_dir=str(tmp_path))
    assert res['froc/mAP@0.5'] == pytest.approx(0.5)
    table = [m for m in log_messages if 'FROC protocol' in m][-1]
    assert '| mAP@0.5' in table and '0.5000' in table
    res = run_metric(
        [sample(0, [inst(LIVER)], [], [])], breakdowns=False,
        ap_iou_thr=0.5, out_dir=str(tmp_path))
    assert res['froc/mAP@0.5'] == 0.0  # the key exists without detections
    with pytest.raises(ValueError, match='ap_iou_thr'):
        FROCMetric(ap_iou_thr=0)


def test_coco_map(tmp_path):
    samples = [
        sample(0, [inst(LIVER)], [LIVER, FAR], [0.9, 0.3]),
        sample(1, [inst(LUNG, 5)], [LUNG], [0.8], labels=[1]),
    ]
    res = run_metric(
        samples, breakdowns=False, with_coco_map=True, out_dir=str(tmp_path))
    for item in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'):
        assert f'froc/bbox_{item}' in res
    # both lesions found exactly, above the false positive: perfect AP
    assert res['froc/bbox_mAP'] == pytest.approx(1.0)
    assert res['froc/sens@0.5'] == 1.0


def test_logged_table_is_the_headline(tmp_path, log_messages):
    samples = fake_samples()
    res = run_metric(samples, with_coco_map=True, out_dir=str(tmp_path))
    table = [m for m in log_messages if 'FROC protocol' in m][-1]
    assert '| all ' in table and 'COCO mAP' in table
    assert 'COCO AP50' in table and 'mean@0.5-4' in table
    assert 'liver' not in table and '10-30' not in table
    assert 'breakdowns (11 subsets' in table
    assert 'froc/sens@4_type_liver' in res  # still computed and returned
    run_metric(samples, log_breakdowns=True, out_dir=str(tmp_path))
    table = [m for m in log_messages if 'FROC protocol' in m][-1]
    assert 'liver' in table and 'breakdowns (' not in table


def test_coco_map_with_colliding_img_ids(tmp_path):
    """Two datasets concatenated both number their images from 0: an FP
    on the first image must not match the lesion of the second."""
    samples = [
        sample(0, [inst(LIVER)], [FAR], [0.9]),  # FP, lesion missed
        sample(0, [inst(FAR)], [], []),  # lesion missed
    ]
    res = run_metric(
        samples, breakdowns=False, with_coco_map=True, out_dir=str(tmp_path))
    assert res['froc/bbox_mAP_50'] == 0.0  # 0.5 with merged ids
    assert res['froc/sens@16'] == 0.0


def test_out_dir_defaults_to_runner_log_dir(tmp_path):
    # a Runner's logger writes work_dir/<timestamp>/<timestamp>.log
    log_dir = tmp_path / 'work_dir' / '20260101_000000'
    log_dir.mkdir(parents=True)
    name = 'test_froc_metric_log_dir'
    logger = MMLogger.get_instance(
        name, log_file=str(log_dir / '20260101_000000.log'))
    try:
        run_metric(fake_samples(), breakdowns=False)
    finally:
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
        MMLogger._instance_dict.pop(name)
    assert (log_dir / 'froc_curve.png').exists()
    assert (log_dir / 'froc_detections.json').exists()
    assert 'FROC protocol' in (log_dir / '20260101_000000.log').read_text()


def test_bad_input():
    metric = FROCMetric()
    s = fake_samples()[0]
    del s['instances']
    with pytest.raises(ValueError, match="meta_keys of PackDetInputs"):
        metric.process({}, [s])
    s = fake_samples()[0]
    s['instances'][1]['bbox'] = [1, 2, 3]
    with pytest.raises(ValueError, match=r"instance 1, row 2: field 'bbox'"):
        metric.process({}, [s])
    s = fake_samples()[0]
    s['instances'][0]['diameters_mm'] = ['long', 3]
    with pytest.raises(ValueError, match=r"instance 0, row 2: fields"):
        metric.process({}, [s])
    s = fake_samples()[0]
    s['pred_instances']['bboxes'] = torch.zeros(2, 5)
    with pytest.raises(ValueError, match=r"must have shape \(N, 4\)"):
        metric.process({}, [s])
    s = fake_samples()[0]
    s['instances'][0]['bbox'] = [30., 10., 10., 29.]  # x2 < x1
    metric.process({}, [s])
    with pytest.raises(ValueError, match=r'img_id=0 .*ground truth.*row 0'):
        metric.compute_metrics(metric.results)
    with pytest.raises(ValueError, match='overlap'):
        FROCMetric(overlap='giou')
    with pytest.raises(ValueError, match='fp_rates'):
        FROCMetric(fp_rates=())


def test_through_mmengine_evaluator_with_det_data_samples(tmp_path):
    """The real interface: DetDataSample -> Evaluator -> dicts -> metric."""
    from mmengine.evaluator import Evaluator
    from mmengine.structures import InstanceData

    from mmdet.structures import DetDataSample
    evaluator = Evaluator(
        METRICS.build(
            dict(type='FROCMetric', breakdowns=False,
                 out_dir=str(tmp_path))))
    evaluator.dataset_meta = dict(classes=('lesion', ))
    data_samples = []
    for img_id, s in enumerate(fake_samples()[:3]):
        ds = DetDataSample(
            metainfo=dict(
                img_id=img_id,
                img_path=s['img_path'],
                ori_shape=(512, 512),
                instances=s['instances']))
        pred = InstanceData()
        pred.bboxes = s['pred_instances']['bboxes']
        pred.scores = s['pred_instances']['scores']
        pred.labels = s['pred_instances']['labels']
        ds.pred_instances = pred
        data_samples.append(ds)
    evaluator.process(data_samples=data_samples, data_batch={})
    res = evaluator.evaluate(3)
    assert res['froc/sens@0.5'] == pytest.approx(1 / 3)
    assert res['froc/sens@1'] == pytest.approx(2 / 3)
