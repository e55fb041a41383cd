# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the DeepLesion FROC metric (:class:`FROCMetric`).

Pinned: the option checks at both ends of their ranges (``iou_thr`` 0 and
1, rates 0, ``ap_iou_thr`` 0 and 1) and their messages, the defaults
(rates, breakdowns, files, prefix), the name of the mean key, the parsing
of each sample (empty and malformed boxes, missing labels, flags and
fields, tensors needing ``detach``, the messages naming image, instance and
row), which images are dropped (only those whose instances are *all*
ignored; an image without instances or with ignored and valid lesions is
kept), a hit at IoU / IoBB exactly at the threshold, errors of the matching
re-raised with the image, the logged header, table and note, the files
written (and the log line naming them), the arguments of the plot
function, the JSON dump, and the COCO mAP inputs (class-agnostic labels,
ignored lesions, images without a shape).
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import FUNCTIONS

from mmlesion.evaluation.functional import froc_curve, sens_at_fp
from mmlesion.evaluation.metrics import FROCMetric
from mmlesion.evaluation.metrics.froc_metric import PROTOCOL_NAME

LIVER = [10., 10., 29., 29.]  # 20 x 20 px
HALF = [10., 10., 49., 29.]  # IoU with LIVER exactly 0.5, IoBB 0.5
INSIDE = [10., 10., 29., 19.]  # IoU with LIVER 0.5, IoBB 1
LUNG = [100., 100., 104., 104.]
FAR = [300., 300., 339., 339.]
HEADER = (
    f'FROC protocol: {PROTOCOL_NAME}\n'
    'options: overlap={overlap} (legacy +1 px) >= {thr}; one global score '
    'sort (stable on ties); multi-hit; duplicates neither TP nor FP; '
    'interp1d on the raw curve, hold-last beyond the last FP rate; '
    'class-agnostic; breakdowns filter ground truth only\n'
    'images: {images} (dropped, all instances ignored: {dropped}); '
    'lesions: {lesions}; detections: {dets} (TP {tp}, FP {fp}, duplicate '
    '{dup})')
NOTE = ('breakdowns ({n} subsets by lesion type and size): in the returned '
        'metrics (scalars) and froc_detections.json, size curves in '
        'froc_curve.png (log_breakdowns=True logs them here)')

_PLOT_CALLS = []


def _fake_plot(curves, fp_rates, path, **kwargs):
    _PLOT_CALLS.append((curves, fp_rates, path, kwargs))


FUNCTIONS.register_module(
    name='test_froc_metric_boundaries_plot', module=_fake_plot, force=True)


def inst(bbox, lesion_type=4, long_mm=15.0, ignore=0, **extra):
    out = dict(bbox=list(bbox), bbox_label=0, ignore_flag=ignore,
               lesion_type=lesion_type,
               diameters_mm=[long_mm, long_mm / 2])
    out.update(extra)
    return out


def sample(img_id, instances, boxes, scores, labels=None, **extra):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    scores = torch.as_tensor(scores, dtype=torch.float32)
    pred = dict(bboxes=boxes, scores=scores)
    if labels is not None:
        pred['labels'] = torch.as_tensor(labels)
    out = dict(img_id=img_id, img_path=f'/d/{img_id}.png',
               ori_shape=(512, 512), instances=instances,
               pred_instances=pred)
    out.update(extra)
    return out


def evaluate(samples, **kwargs):
    kwargs.setdefault('froc_plot', None)
    kwargs.setdefault('dump_detections', False)
    metric = FROCMetric(**kwargs)
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def protocol_log(messages):
    return [m for m in messages if m.startswith('FROC protocol')][-1]


# --- options --------------------------------------------------------------


def test_defaults():
    metric = FROCMetric()
    assert metric.iou_thr == 0.5 and metric.overlap == 'iou'
    assert metric.fp_rates == (0.5, 1., 2., 4., 8., 16.)
    assert metric.mean_rates == (0.5, 1., 2., 4.)
    assert metric.breakdowns is True and metric.type_classes is False
    assert metric.skip_all_ignored_images is True
    assert metric.out_dir is None and metric.dump_detections is True
    assert metric.with_coco_map is False and metric.ap_iou_thr is None
    assert metric.log_breakdowns is False
    assert metric.froc_plot == 'plot_froc_curves'
    assert metric.collect_device == 'cpu' and metric.prefix == 'froc'
    assert metric.mean_key == 'mean@0.5-4'
    assert FROCMetric(prefix='val').prefix == 'val'
    assert (FROCMetric.box_dim, FROCMetric.fp_unit,
            FROCMetric.file_stem) == (2, 'image', 'froc')
    assert FROCMetric.protocol_name == PROTOCOL_NAME == (
        'DeepLesion 2D official (3DCE/MULAN lineage, docs/protocols.md §1)')


def test_option_types():
    metric = FROCMetric(iou_thr=1, fp_rates=[1, 2], mean_rates=np.array([3]),
                        type_classes=1, ap_iou_thr=1)
    assert type(metric.iou_thr) is float and metric.iou_thr == 1.0
    assert metric.fp_rates == (1.0, 2.0)
    assert all(type(r) is float for r in metric.fp_rates + metric.mean_rates)
    assert metric.mean_rates == (3.0, )
    assert metric.type_classes is True
    assert type(metric.ap_iou_thr) is float and metric.ap_iou_thr == 1.0


@pytest.mark.parametrize('thr', [0, 0.0, 1, 1.0, 0.5])
def test_iou_thr_ends_are_valid(thr):
    assert FROCMetric(iou_thr=thr).iou_thr == thr


@pytest.mark.parametrize('thr', [-1e-9, 1 + 1e-9, 2])
def test_iou_thr_outside_is_rejected(thr):
    with pytest.raises(ValueError) as err:
        FROCMetric(iou_thr=thr)
    assert str(err.value) == (
        f'FROCMetric: iou_thr must be in [0, 1], got {thr}')


def test_overlap_message():
    with pytest.raises(ValueError) as err:
        FROCMetric(overlap='IOU')
    assert str(err.value) == ("FROCMetric: overlap must be one of ('iou', "
                              "'iobb'), got 'IOU'")
    assert FROCMetric(overlap='iobb').overlap == 'iobb'


@pytest.mark.parametrize('name', ['fp_rates', 'mean_rates'])
@pytest.mark.parametrize('rates', [(), (-1e-9, ), (1., float('nan')),
                                   (float('inf'), ), (1., -2.)])
def test_bad_rates_are_rejected(name, rates):
    with pytest.raises(ValueError) as err:
        FROCMetric(**{name: rates})
    assert str(err.value) == (f'FROCMetric: {name} must be a non-empty list '
                              f'of finite rates >= 0, got {rates}')


def test_rate_zero_is_valid():
    metric = FROCMetric(fp_rates=(0, ), mean_rates=(0, 1))
    assert metric.fp_rates == (0., ) and metric.mean_key == 'mean@0-1'
    # the other list is checked too: a good one does not hide a bad one
    with pytest.raises(ValueError, match='mean_rates'):
        FROCMetric(fp_rates=(1., ), mean_rates=(-1., ))


@pytest.mark.parametrize('thr', [0, -0.5, 1 + 1e-9])
def test_ap_iou_thr_outside_is_rejected(thr):
    with pytest.raises(ValueError) as err:
        FROCMetric(ap_iou_thr=thr)
    assert str(err.value) == ('FROCMetric: ap_iou_thr must be in (0, 1], '
                              f'got {thr}')


def test_mean_key_names():
    assert FROCMetric(mean_rates=(4, )).mean_key == 'mean@4'
    assert FROCMetric(mean_rates=(2, 2.0)).mean_key == 'mean@2'
    assert FROCMetric(mean_rates=(4, 0.125, 1)).mean_key == 'mean@0.125-4'
    assert FROCMetric(mean_rates=(16, 0.5)).mean_key == 'mean@0.5-16'


# --- parsing ----------------------------------------------------------------


def test_parsed_sample_fields():
    metric = FROCMetric()
    s = sample(7, [inst(LIVER, 5, 12.5, row=3),
                   dict(bbox=LUNG, ignore_flag=1)], [LIVER, FAR],
               torch.tensor([[.9], [.4]]), file_name='a.png')
    s['pred_instances']['bboxes'].requires_grad_(True)
    s['pred_instances']['scores'].requires_grad_(True)
    s['pred_instances']['labels'] = torch.tensor([[2.], [3.]])
    metric.process({}, [s])
    (r, ) = metric.results
    assert (r['img_id'], r['img_path'], r['file_name']) == (7, '/d/7.png',
                                                            'a.png')
    assert r['ori_shape'] == (512, 512) and type(r['ori_shape']) is tuple
    assert r['gt_bboxes'].tolist() == [LIVER, LUNG]
    assert r['gt_bboxes'].dtype == np.float64
    assert r['gt_ignore'].tolist() == [False, True]
    assert r['gt_ignore'].dtype == bool
    assert r['gt_types'].tolist() == [5, -1]
    assert r['gt_types'].dtype == np.int64
    assert r['gt_long_mm'][0] == 12.5 and np.isnan(r['gt_long_mm'][1])
    assert r['gt_long_mm'].dtype == np.float64
    assert r['has_types'] is True and r['has_diams'] is True
    assert r['det_bboxes'].tolist() == [LIVER, FAR]
    assert r['det_bboxes'].dtype == np.float64
    assert r['det_scores'].shape == (2, )
    assert r['det_scores'].dtype == np.float64
    assert r['det_scores'].tolist() == [np.float32(.9), np.float32(.4)]
    assert r['det_labels'].tolist() == [2, 3]
    assert r['det_labels'].dtype == np.int64


def test_parsed_sample_without_labels_instances_or_shape():
    metric = FROCMetric()
    s = sample(1, [], [LIVER], [.5])
    del s['ori_shape']
    metric.process({}, [s])
    r = metric.results[0]
    assert r['det_labels'].tolist() == [0]
    assert r['det_labels'].dtype == np.int64
    assert r['ori_shape'] is None and r['file_name'] is None
    assert r['gt_bboxes'].shape == (0, 4)
    assert r['gt_ignore'].shape == (0, ) and r['gt_ignore'].dtype == bool
    assert r['gt_types'].shape == (0, ) and r['gt_types'].dtype == np.int64
    assert r['gt_long_mm'].shape == (0, )
    assert r['has_types'] is False and r['has_diams'] is False


def test_parsed_fields_none_and_empty():
    metric = FROCMetric()
    s = sample(0, [
        dict(bbox=LIVER, lesion_type=None, diameters_mm=None),
        dict(bbox=LIVER, diameters_mm=[]),
    ], [], [])
    s['pred_instances']['bboxes'] = torch.zeros(0)  # 1-D empty
    metric.process({}, [s])
    r = metric.results[0]
    assert r['det_bboxes'].shape == (0, 4)
    assert r['det_scores'].shape == (0, ) and r['det_labels'].shape == (0, )
    assert r['gt_types'].tolist() == [-1, -1]
    assert np.isnan(r['gt_long_mm']).all()
    # the key present (even None) counts for types; an empty list for
    # diameters
    assert r['has_types'] is True and r['has_diams'] is True
    assert r['gt_ignore'].tolist() == [False, False]
    s = sample(0, [dict(bbox=LIVER, diameters_mm=None)], [], [])
    metric.process({}, [s])
    assert metric.results[1]['has_types'] is False
    assert metric.results[1]['has_diams'] is False


def _message(s, **kwargs):
    metric = FROCMetric(**kwargs)
    with pytest.raises(ValueError) as err:
        metric.process({}, [s])
    return str(err.value)


def test_parse_messages():
    s = sample(3, [], [LIVER], [.5])
    del s['instances']
    assert _message(s) == (
        "FROCMetric: image img_id=3 (/d/3.png) has no 'instances': add "
        "'instances' to the meta_keys of PackDetInputs so that the raw "
        'ground truth (original image coordinates) reaches the metric')
    s = sample(3, [], [LIVER], [.5])
    del s['pred_instances']
    assert _message(s) == (
        "FROCMetric: image img_id=3 (/d/3.png) has no 'pred_instances'")
    s = sample(3, [], [LIVER], [.5])
    s['pred_instances']['bboxes'] = torch.zeros(2, 5)
    assert _message(s) == (
        "FROCMetric: image img_id=3 (/d/3.png): pred_instances['bboxes'] "
        'must have shape (N, 4) (x1, y1, x2, y2), got (2, 5)')
    for bad in (torch.zeros(4), torch.zeros(1, 4, 1), torch.zeros(1, 1, 4)):
        s['pred_instances']['bboxes'] = bad
        assert 'must have shape (N, 4)' in _message(s)
    s = sample(3, [], [LIVER, FAR], [.5])
    assert _message(s) == ('FROCMetric: image img_id=3 (/d/3.png) has 2 '
                           'predicted boxes but 1 scores')
    s = sample(3, [inst(LIVER), dict(bbox=[1, 2, 3])], [], [])
    assert _message(s) == (
        "FROCMetric: image img_id=3 (/d/3.png), instance 1: field 'bbox' "
        'must be [x1, y1, x2, y2], got [1, 2, 3]')
    s = sample(3, [dict(row=9)], [], [])
    assert _message(s) == (
        "FROCMetric: image img_id=3 (/d/3.png), instance 0, row 9: field "
        "'bbox' must be [x1, y1, x2, y2], got None")
    s = sample(3, [dict(bbox=['a', 1, 2, 3])], [], [])
    assert "instance 0: field 'bbox'" in _message(s)
    s = sample(3, [dict(bbox=None)], [], [])
    assert "instance 0: field 'bbox'" in _message(s)
    s = sample(3, [inst(LIVER, lesion_type='liver', row=4)], [], [])
    assert _message(s) == (
        'FROCMetric: image img_id=3 (/d/3.png), instance 0, row 4: fields '
        "'lesion_type' (int) / 'diameters_mm' ([long, short]) malformed: "
        "'liver', [15.0, 7.5]")
    s = sample(3, [dict(bbox=LIVER, diameters_mm=5.)], [], [])
    assert _message(s) == (
        'FROCMetric: image img_id=3 (/d/3.png), instance 0: fields '
        "'lesion_type' (int) / 'diameters_mm' ([long, short]) malformed: "
        'None, 5.0')
    s = sample(3, [dict(bbox=LIVER, lesion_type=[1, 2])], [], [])
    assert 'malformed' in _message(s)
    s = sample(3, [dict(bbox=LIVER, diameters_mm=['x'])], [], [])
    assert 'malformed' in _message(s)
    s = dict(instances=[], pred_instances=dict(bboxes=torch.zeros(1, 3),
                                               scores=torch.zeros(1)))
    assert _message(s).startswith('FROCMetric: image img_id=None (None): ')


# --- which images count ------------------------------------------------------


def test_only_all_ignored_images_are_dropped(log_messages):
    # image 0: a valid and an ignored lesion, the box on the ignored one is
    # an FP; image 1: no instance (kept, FP denominator); image 2: all
    # ignored (dropped with its detection)
    samples = [
        sample(0, [inst(LIVER), inst(LUNG, ignore=1)], [LUNG, LIVER],
               [.9, .8]),
        sample(1, [], [FAR], [.7]),
        sample(2, [inst(LIVER, ignore=1)], [FAR], [.95]),
    ]
    res = evaluate(samples, breakdowns=False, fp_rates=(0.5, ),
                   mean_rates=(0.5, ))
    # order: FP .9 (0.5 per image), TP .8, FP .7
    assert res == {'sens@0.5': 1.0, 'mean@0.5': 1.0}
    assert protocol_log(log_messages).startswith(HEADER.format(
        overlap='iou', thr='0.5', images=2, dropped=1, lesions=1, dets=3,
        tp=1, fp=2, dup=0) + '\n')
    kept = evaluate(samples, breakdowns=False, fp_rates=(0.5, ),
                    mean_rates=(0.5, ), skip_all_ignored_images=False)
    # 3 images: FP .95 and FP .9 before the TP: 2/3 FPs per image
    assert kept == {'sens@0.5': 0.0, 'mean@0.5': 0.0}
    assert 'images: 3 (dropped, all instances ignored: 0)' in protocol_log(
        log_messages)


def test_no_image_left_message():
    samples = [sample(4, [inst(LIVER, ignore=1)], [], []),
               sample(5, [inst(LUNG, ignore=1), inst(LIVER, ignore=1)],
                      [], [])]
    with pytest.raises(ValueError) as err:
        evaluate(samples)
    assert str(err.value) == (
        'FROCMetric: no image to evaluate (2 received, 2 dropped because '
        'all their instances are ignored)')
    res = evaluate(samples, breakdowns=False,
                   skip_all_ignored_images=False)
    assert np.isnan(res['sens@4'])  # no valid lesion left


@pytest.mark.parametrize('overlap', ['iou', 'iobb'])
def test_hit_exactly_at_the_threshold(overlap):
    samples = [sample(0, [inst(LIVER)], [HALF], [.9])]
    res = evaluate(samples, overlap=overlap, breakdowns=False)
    assert res['sens@0.5'] == 1.0
    thr = 0.5 + 1e-9
    res = evaluate(samples, overlap=overlap, iou_thr=thr, breakdowns=False)
    assert res['sens@16'] == 0.0


def test_default_overlap_is_iou():
    # IoU 0.5, IoBB 1: a miss at 0.75 unless IoBB is asked for
    samples = [sample(0, [inst(LIVER)], [INSIDE], [.9])]
    assert evaluate(samples, iou_thr=0.75,
                    breakdowns=False)['sens@16'] == 0.0
    assert evaluate(samples, iou_thr=0.75, overlap='iobb',
                    breakdowns=False)['sens@16'] == 1.0


def test_default_rates_and_mean():
    # one image per FP rate step: TP, FP, TP, FP, FP, TP, FP x 4, TP on
    # 5 lesions of one image (FP rates are integers)
    lesions = [[100. * k, 0., 100. * k + 9., 9.] for k in range(5)]
    far = [[1000. + 20 * k, 500., 1009. + 20 * k, 509.] for k in range(8)]
    boxes = ([lesions[0], far[0], lesions[1], far[1], far[2], lesions[2]] +
             far[3:7] + [lesions[3]])
    scores = list(np.linspace(.99, .5, len(boxes)))
    samples = [sample(0, [inst(b) for b in lesions], boxes, scores)]
    res = evaluate(samples, breakdowns=False)
    dets = [np.concatenate([np.array(boxes), np.array(scores)[:, None]],
                           1)]
    curve = froc_curve(dets, [np.array(lesions)])
    want = sens_at_fp(curve, (0.5, 1, 2, 4, 8, 16))
    assert list(res) == ['sens@0.5', 'sens@1', 'sens@2', 'sens@4', 'sens@8',
                         'sens@16', 'mean@0.5-4']
    assert [res[k] for k in list(res)[:6]] == want.tolist()
    assert want.tolist() == [0.2, 0.4, 0.4, 0.6, 0.8, 0.8]
    assert res['mean@0.5-4'] == pytest.approx(np.mean([.2, .4, .4, .6]))
    assert all(type(v) is float for v in res.values())


# --- errors of the matching --------------------------------------------------


def test_matching_errors_name_the_image():
    bad_pred = [sample(0, [inst(LIVER)], [LIVER], [.9]),
                sample(8, [inst(LIVER)], [[5., 5., 1., 9.]], [.9])]
    with pytest.raises(ValueError) as err:
        evaluate(bad_pred)
    assert str(err.value).startswith(
        'FROCMetric: image img_id=8 (/d/8.png), prediction: dets[1] row 0')
    bad_gt = [sample(6, [inst(LIVER), inst([5., 5., 1., 9.])], [], [])]
    with pytest.raises(ValueError) as err:
        evaluate(bad_gt)
    assert str(err.value).startswith(
        'FROCMetric: image img_id=6 (/d/6.png), ground truth: gts[0] row 1')


# --- the logged table --------------------------------------------------------


def test_logged_header_table_and_note(log_messages):
    samples = [
        sample(0, [inst(LIVER, 4, 10.), inst(LUNG, 5, 30., ignore=1)],
               [LIVER, LIVER, FAR], [.9, .85, .6]),
        sample(1, [inst(LIVER, 4, 20., ignore=1)], [FAR], [.95]),
        sample(2, [], [FAR], [.7]),
    ]
    evaluate(samples, fp_rates=(0.5, 1), mean_rates=(0.5, 1), iou_thr=0.25,
             overlap='iobb')
    table = ('+--------+---------+----------+--------+------------+\n'
             '| subset | lesions | sens@0.5 | sens@1 | mean@0.5-1 |\n'
             '+--------+---------+----------+--------+------------+\n'
             '| all    | 1       | 1.0000   | 1.0000 | 1.0000     |\n'
             '+--------+---------+----------+--------+------------+')
    assert protocol_log(log_messages) == HEADER.format(
        overlap='iobb', thr='0.25', images=2, dropped=1, lesions=1, dets=4,
        tp=1, fp=2, dup=1) + '\n' + table + '\n' + NOTE.format(n=11)
    # class-aware subsets are rows but not curves
    evaluate(samples, fp_rates=(0.5, 1), mean_rates=(0.5, 1),
             breakdowns=False, type_classes=True)
    assert protocol_log(log_messages).endswith(table + '\n' +
                                               NOTE.format(n=0))
    # no breakdown: no note
    evaluate(samples, fp_rates=(0.5, 1), mean_rates=(0.5, 1),
             breakdowns=False)
    assert protocol_log(log_messages).endswith(table)
    # no detections at all
    evaluate([sample(0, [inst(LIVER)], [], [])], breakdowns=False)
    assert 'detections: 0 (TP 0, FP 0, duplicate 0)' in protocol_log(
        log_messages)


def test_logged_breakdown_rows_with_map_columns(log_messages):
    samples = [sample(0, [inst(LIVER, 4, 40.)], [LIVER, FAR], [.9, .8])]
    evaluate(samples, fp_rates=(1, ), mean_rates=(1, ), log_breakdowns=True,
             with_coco_map=True, ap_iou_thr=0.5)
    lines = protocol_log(log_messages).split('\n')
    assert 'breakdowns (' not in protocol_log(log_messages)
    rows = [[c.strip() for c in line.split('|')[1:-1]] for line in lines
            if line.startswith('| ')]
    assert rows[0] == ['subset', 'lesions', 'sens@1', 'mean@1', 'COCO mAP',
                       'COCO AP50', 'mAP@0.5']
    assert rows[1] == ['all', '1', '1.0000', '1.0000', '1.0000', '1.0000',
                       '1.0000']
    assert rows[5] == ['liver', '1', '1.0000', '1.0000', '', '', '']
    assert rows[2] == ['bone', '0', 'nan', 'nan', '', '', '']
    assert rows[-1] == ['>30 mm', '1', '1.0000', '1.0000', '', '', '']
    assert len(rows) == 1 + 1 + 8 + 3
    # only the mAP@ column
    evaluate(samples, fp_rates=(1, ), mean_rates=(1, ), log_breakdowns=True,
             ap_iou_thr=0.25)
    rows = [[c.strip() for c in line.split('|')[1:-1]]
            for line in protocol_log(log_messages).split('\n')
            if line.startswith('| ')]
    assert rows[0][-1] == 'mAP@0.25' and rows[1][-1] == '1.0000'
    assert rows[-1][-1] == '' and len(rows[-1]) == 5


# --- files ----------------------------------------------------------------


def test_files_and_the_log_line(tmp_path, log_messages):
    samples = [sample(0, [inst(LIVER)], [LIVER], [.9])]
    out = tmp_path / 'a' / 'b'
    evaluate(samples, out_dir=str(out), breakdowns=False,
             froc_plot='test_froc_metric_boundaries_plot',
             dump_detections=True)
    assert (out / 'froc_detections.json').exists()
    assert log_messages[-1] == (
        f'FROCMetric: wrote froc_curve.png and froc_detections.json to {out}')
    evaluate(samples, out_dir=str(out), breakdowns=False,
             froc_plot='test_froc_metric_boundaries_plot')
    assert log_messages[-1] == f'FROCMetric: wrote froc_curve.png to {out}'
    # nothing to write: no line, but the folder is made
    del log_messages[:]
    other = tmp_path / 'c'
    evaluate(samples, out_dir=str(other), breakdowns=False)
    assert other.is_dir() and not any(other.iterdir())
    assert not any('wrote' in m for m in log_messages)


def test_nothing_written_without_out_dir_or_runner(tmp_path, monkeypatch,
                                                   log_messages):
    monkeypatch.chdir(tmp_path)
    metric = FROCMetric()
    assert metric._resolve_out_dir() is None
    evaluate([sample(0, [inst(LIVER)], [LIVER], [.9])], breakdowns=False,
             dump_detections=True,
             froc_plot='test_froc_metric_boundaries_plot')
    assert not any('wrote' in m for m in log_messages)
    assert list(tmp_path.iterdir()) == []
    assert FROCMetric(out_dir='x')._resolve_out_dir() == 'x'


def test_out_dir_of_a_logger_with_a_file(tmp_path):
    name = 'test_froc_metric_boundaries_log_dir'
    (tmp_path / 'run').mkdir()
    logger = MMLogger.get_instance(name,
                                   log_file=str(tmp_path / 'run' / 'x.log'))
    try:
        assert FROCMetric()._resolve_out_dir() == str(tmp_path / 'run')
        assert FROCMetric(out_dir='y')._resolve_out_dir() == 'y'
    finally:
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
        MMLogger._instance_dict.pop(name)


def test_plot_arguments(tmp_path):
    samples = [sample(0, [inst(LIVER, 4, 40.)], [LIVER, FAR], [.9, .8])]
    del _PLOT_CALLS[:]
    res = evaluate(samples, out_dir=str(tmp_path), fp_rates=(1, 2),
                   mean_rates=(1, 2), type_classes=True, overlap='iobb',
                   iou_thr=0.25,
                   froc_plot='test_froc_metric_boundaries_plot')
    ((curves, rates, path, kwargs), ) = _PLOT_CALLS
    assert list(curves) == ['all', 'size_lt10mm', 'size_10to30mm',
                            'size_gt30mm']
    assert curves['all'][0] == 'all lesions'
    assert curves['size_gt30mm'][0] == '>30 mm'
    assert curves['all'][1].num_gts == 1
    assert curves['size_gt30mm'][1].num_gts == 1
    assert curves['size_lt10mm'][1].num_gts == 0
    assert rates == (1.0, 2.0)
    assert path == osp.join(str(tmp_path), 'froc_curve.png')
    assert kwargs == dict(
        operating_points=[res['sens@1'], res['sens@2']], primary='all',
        title='FROC, DeepLesion 2D official, IOBB >= 0.25; mean@1-2 = '
        '1.0000', fp_unit='image')
    # the data evaluated is the title's first line
    del _PLOT_CALLS[:]
    evaluate(samples, out_dir=str(tmp_path), split='test split: x.csv',
             froc_plot='test_froc_metric_boundaries_plot')
    assert _PLOT_CALLS[0][3]['title'].startswith('test split: x.csv\nFROC, ')
    with pytest.raises(KeyError) as err:
        evaluate(samples, out_dir=str(tmp_path), froc_plot='no_such_plot')
    assert err.value.args[0] == (
        "FROCMetric: froc_plot 'no_such_plot' is not in mmengine's "
        'FUNCTIONS registry (import mmlesion.visualization, or set '
        'froc_plot=None)')


def test_json_dump(tmp_path):
    samples = [
        sample(0, [inst(LIVER, 4, 10.), inst(LUNG, 5, 30., ignore=1)],
               [LIVER, LIVER, FAR], [.5, .5, .25], labels=[2, 1, 0],
               file_name='0.png'),
        sample(1, [inst(LIVER, 4, 20., ignore=1)], [FAR], [.95]),
        sample(2, [], [FAR], [.75]),
    ]
    res = evaluate(samples, out_dir=str(tmp_path), dump_detections=True,
                   fp_rates=(0.5, 1), mean_rates=(1, ), overlap='iobb',
                   iou_thr=0.75)
    dump = json.loads((tmp_path / 'froc_detections.json').read_text())
    assert list(dump) == ['protocol', 'options', 'num_images', 'num_lesions',
                          'skipped_img_ids', 'metrics', 'images']
    assert dump['protocol'] == PROTOCOL_NAME
    assert dump['options'] == dict(
        iou_thr=0.75, overlap='iobb', overlap_convention='legacy +1 pixel',
        fp_rates=[0.5, 1.0], mean_rates=[1.0], class_agnostic=True,
        tie_order='stable descending score (input order on ties)',
        interpolation='interp1d (np.interp) on the raw curve, hold-last '
        'beyond the last FP rate',
        skip_all_ignored_images=True)
    assert dump['num_images'] == 2 and dump['num_lesions'] == 1
    assert dump['skipped_img_ids'] == [1]
    assert list(dump['metrics']) == list(res)
    assert dump['metrics']['sens@1'] == 1.0
    assert dump['metrics']['sens@1_type_bone'] is None
    assert dump['images'] == [
        dict(img_id=0, img_path='/d/0.png', file_name='0.png',
             gt_bboxes=[LIVER, LUNG], gt_ignored=[False, True],
             bboxes=[LIVER, LIVER, FAR], scores=[.5, .5, .25],
             labels=[2, 1, 0], outcomes=['tp', 'duplicate', 'fp']),
        dict(img_id=2, img_path='/d/2.png', file_name=None, gt_bboxes=[],
             gt_ignored=[], bboxes=[FAR], scores=[.75], labels=[0],
             outcomes=['fp']),
    ]
    evaluate(samples, out_dir=str(tmp_path), dump_detections=True,
             skip_all_ignored_images=False, breakdowns=False)
    dump = json.loads((tmp_path / 'froc_detections.json').read_text())
    assert dump['options']['skip_all_ignored_images'] is False
    assert dump['skipped_img_ids'] == [] and dump['num_images'] == 3


# --- COCO mAP ----------------------------------------------------------------


def test_coco_map_inputs(log_messages):
    # labels of a multi-class model are ignored; an ignored lesion is a
    # crowd region (a box on it is no FP); images without a shape count
    samples = [
        sample(0, [inst(LIVER), inst(FAR, ignore=1)], [FAR, LIVER],
               [.9, .8], labels=[3, 5]),
        sample(1, [inst(LUNG, 5)], [LUNG], [.7], labels=[1]),
    ]
    del samples[1]['ori_shape']
    res = evaluate(samples, breakdowns=False, with_coco_map=True)
    assert list(res)[-6:] == ['bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75',
                              'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l']
    assert res['bbox_mAP'] == pytest.approx(1.0)
    assert res['bbox_mAP_s'] == pytest.approx(1.0)
    assert all(type(res[k]) is float for k in list(res)[-6:])
    # no detections: every key 0, and a log line
    res = evaluate([sample(0, [inst(LIVER)], [], [])], breakdowns=False,
                   with_coco_map=True)
    assert {k: v for k, v in res.items() if k.startswith('bbox')} == {
        'bbox_mAP': 0.0, 'bbox_mAP_50': 0.0, 'bbox_mAP_75': 0.0,
        'bbox_mAP_s': 0.0, 'bbox_mAP_m': 0.0, 'bbox_mAP_l': 0.0
    }
    assert 'FROCMetric: no detections, COCO mAP set to 0' in log_messages


def test_keras_map_uses_ignored_lesions():
    # the first-ranked box on an ignored lesion: neither TP nor FP
    samples = [sample(0, [inst(LIVER), inst(FAR, ignore=1)], [FAR, LIVER],
                      [.9, .8])]
    res = evaluate(samples, breakdowns=False, ap_iou_thr=0.5)
    assert res['mAP@0.5'] == 1.0
    assert res['sens@0.5'] == 0.0  # for the FROC it is an FP
    res = evaluate(samples, breakdowns=False, ap_iou_thr=1)
    assert 'mAP@1' in res


# --- subclasses, options passed through --------------------------------------


class NamedFROC(FROCMetric):
    """A subclass: its name is in the messages."""


class Box3DFROC(FROCMetric):
    """The ``box_dim`` hook of FROC3DMetric: 3D boxes all the way."""
    box_dim = 3


def test_collect_device_is_passed_on():
    assert FROCMetric(collect_device='gpu').collect_device == 'gpu'


def test_rates_that_are_not_numbers():
    with pytest.raises(ValueError) as err:
        FROCMetric(fp_rates=(1., None))
    assert str(err.value) == ('FROCMetric: fp_rates must be a non-empty list '
                              'of finite rates >= 0, got (1.0, None)')


def test_subclass_name_in_messages(log_messages):
    samples = [sample(0, [dict(bbox=LIVER, diameters_mm=[12., 6.])],
                      [LIVER], [.9])]
    metric = NamedFROC(froc_plot=None, dump_detections=False)
    metric.process({}, samples)
    metric.compute_metrics(metric.results)
    assert ('NamedFROC: no instance has "lesion_type"; lesion-type '
            'breakdown skipped') in log_messages
    with pytest.raises(ValueError, match='^NamedFROC: no image to evaluate'):
        metric.compute_metrics([dict(metric.results[0],
                                     gt_ignore=np.array([True]))])


def test_3d_boxes_in_every_subset():
    cube = [0., 0., 0., 9., 9., 9.]
    half = [0., 0., 0., 9., 9., 4.]  # IoU 0.5
    metric = Box3DFROC(froc_plot=None, dump_detections=False, fp_rates=(1, ),
                       mean_rates=(1, ))
    metric.process({}, [dict(
        img_id=0, img_path='v', instances=[dict(bbox=cube, lesion_type=4,
                                                diameters_mm=[40., 9.])],
        pred_instances=dict(bboxes=torch.tensor([half, cube]),
                            scores=torch.tensor([.9, .8])))])
    res = metric.compute_metrics(metric.results)
    assert res['sens@1'] == 1.0 and res['sens@1_type_liver'] == 1.0
    assert res['sens@1_size_gt30mm'] == 1.0
    with pytest.raises(ValueError, match=r'must have shape \(N, 6\) \(x1, '
                       r'y1, z1, x2, y2, z2\)'):
        metric.process({}, [sample(0, [], [LIVER], [.5])])


def test_subsets_use_the_overlap_and_threshold():
    # IoU 0.5, IoBB 1: found at 0.75 only with IoBB, in every subset
    samples = [sample(0, [inst(LIVER, 4, 40.)], [INSIDE], [.9], labels=[3])]
    res = evaluate(samples, iou_thr=0.75, overlap='iobb', type_classes=True)
    assert res['sens@16_type_liver'] == 1.0
    assert res['sens@16_size_gt30mm'] == 1.0
    assert res['sens@16_typecls_liver'] == 1.0
    res = evaluate(samples, iou_thr=0.75, type_classes=True)
    assert res['sens@16_type_liver'] == 0.0
    assert res['sens@16_typecls_liver'] == 0.0


def test_keras_map_threshold():
    # IoU 0.5: a hit at 0.5, a miss at 0.75
    samples = [sample(0, [inst(LIVER)], [INSIDE], [.9])]
    assert evaluate(samples, breakdowns=False,
                    ap_iou_thr=0.5)['mAP@0.5'] == 1.0
    assert evaluate(samples, breakdowns=False,
                    ap_iou_thr=0.75)['mAP@0.75'] == 0.0


def test_coco_map_ignored_lesions_are_crowds():
    # two ignored lesions, one detected first, one never: with them as
    # crowds the two lesions found are all there is
    far2 = [400., 400., 439., 439.]
    samples = [sample(0, [inst(LIVER), inst(FAR, ignore=1),
                          inst(far2, ignore=1)], [FAR, LIVER], [.9, .8]),
               sample(1, [inst(LUNG, 5)], [LUNG], [.7])]
    samples[0]['ori_shape'] = (512, 512, 3)
    res = evaluate(samples, breakdowns=False, with_coco_map=True)
    assert res['bbox_mAP'] == pytest.approx(1.0)
    assert res['bbox_mAP_50'] == pytest.approx(1.0)
