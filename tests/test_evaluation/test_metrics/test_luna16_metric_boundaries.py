# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`LUNA16Metric` (:mod:`...metrics.luna16_metric`).

Pinned: box centres and mean diameters in world coordinates (x spacing is
the last of ``spacing_zyx``), the documented defaults, every refusal with
its message (excluded / seriesuids without annotations, missing files, a
sample without a UID or the geometry, boxes not ``(N, 6)``, box and score
counts that differ, a malformed instance, evaluated scans not in the
seriesuids list, no sample), the scan of a sample (``series_uid``, else
``img_id``), the ground truth from the first sample of each scan (ignored
instances as excluded findings), the scans of the FP denominator (the
listed ones, else the evaluated ones in order), the metric keys (bootstrap
bounds only with a band, TNP NaN when unreached), the options passed on,
the files (and none without a prefix or a log file), the plot hook and
the log lines; the rate and size options' messages, the RPN scores (read
and checked only with a cut), the unknown lesion type (-1), the subsets'
JSON, the size cut with types and with CSVs, the breakdowns' options
and log lines (docs/mutation_testing.md).
"""
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import FUNCTIONS

import mmlesion.evaluation.metrics.froc_metric as fm
import mmlesion.evaluation.metrics.luna16_metric as lm
from mmlesion.evaluation.functional import luna16 as L
from mmlesion.evaluation.metrics.luna16_metric import (
    LUNA16Metric, boxes_to_world_candidates)

IDENTITY = dict(spacing_zyx=(1., 1., 1.), origin_xyz=(0., 0., 0.),
                direction=np.eye(3).ravel().tolist())


def box(x, y, z, r=1.0):
    """A box centred on (x, y, z), 2 r voxels wide (1 mm voxels)."""
    return [x - r, y - r, z - r, x + r, y + r, z + r]


def sample(uid, boxes, scores, instances=None, key='series_uid', **extra):
    out = dict(img_id='img-' + str(uid), img_path='p.mhd',
               pred_instances=dict(
                   bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(
                       -1, 6),
                   scores=torch.tensor(scores, dtype=torch.float32)),
               **IDENTITY)
    if key is not None:
        out[key] = uid
    if instances is not None:
        out['instances'] = instances
    out.update(extra)
    return out


def nodule(x, d=10.0, ignore=None):
    inst = dict(center_world=[x, 0., 0.], diameter_mm=d)
    if ignore is not None:
        inst['ignore_flag'] = ignore
    return inst


def run(metric, samples):
    metric.process({}, samples)
    return metric.evaluate(len(samples))


# --- world candidates -----------------------------------------------------------


def test_world_centres_and_diameters():
    world, diam = boxes_to_world_candidates(
        [[0., 0., 0., 4., 6., 8.]], (2., 3., 5.), (10., 20., 30.),
        np.eye(3).ravel())
    # x spacing 5, y 3, z 2: centre (2, 3, 4) voxels -> (10, 9, 8) mm
    assert world.tolist() == [[20., 29., 38.]]
    # extents 4, 6, 8 voxels -> 20, 18, 16 mm
    assert diam.tolist() == [18.]
    world, diam = boxes_to_world_candidates(np.zeros(0), (1., 1., 1.),
                                            (0., 0., 0.), np.eye(3))
    assert world.shape == (0, 3) and diam.shape == (0, )
    flat = boxes_to_world_candidates([1, 1, 1, 3, 3, 3], (1., 1., 1.),
                                     (0., 0., 0.), np.eye(3))
    assert flat[0].tolist() == [[2., 2., 2.]] and flat[1].tolist() == [2.]


def test_float32_boxes_are_computed_in_float64():
    b32 = np.array([[0.1, 0.2, 0.3, 10.7, 20.9, 30.3]], np.float32)
    w32, d32 = boxes_to_world_candidates(b32, (0.7, 0.9, 1.1), (0., 0., 0.),
                                         np.eye(3))
    w64, d64 = boxes_to_world_candidates(b32.astype(np.float64),
                                         (0.7, 0.9, 1.1), (0., 0., 0.),
                                         np.eye(3))
    assert w32.dtype == d32.dtype == np.float64
    assert np.array_equal(w32, w64) and np.array_equal(d32, d64)


def test_tensor_with_grad_is_read():
    b = torch.tensor([box(0., 0., 0.)], requires_grad=True)
    assert lm.to_numpy(b).tolist() == [box(0., 0., 0.)]
    assert lm.to_numpy([1, 2]).tolist() == [1, 2]


# --- construction -----------------------------------------------------------------


def test_defaults():
    m = LUNA16Metric()
    assert (m.annotations, m.excluded, m.seriesuids) == (None, None, None)
    assert m.max_marks == 100 and m.num_bootstrap == 1000 and m.seed == 0
    assert m.confidence == 0.95 and m.tnp_sensitivity == 0.95
    assert m.outfile_prefix is None and m.froc_plot == 'plot_luna16_froc'
    assert m.prefix == 'luna16' and LUNA16Metric.default_prefix == 'luna16'
    assert m.collect_device == 'cpu'
    m = LUNA16Metric(prefix='x', collect_device='gpu')
    assert m.prefix == 'x' and m.collect_device == 'gpu'


@pytest.mark.parametrize('kw', [dict(excluded='e.csv'),
                                dict(seriesuids='s.csv'),
                                dict(excluded='e.csv', seriesuids='s.csv')])
def test_excluded_or_seriesuids_need_annotations(kw):
    with pytest.raises(ValueError,
                       match=r"^LUNA16Metric: excluded / seriesuids need "
                       r"annotations \(or give none of them to use the "
                       r"dataset's instances\)$"):
        LUNA16Metric(**kw)


def test_missing_files_are_named(tmp_path):
    ann = tmp_path / 'ann.csv'
    ann.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n')
    for kw in (dict(annotations=str(tmp_path / 'no.csv')),
               dict(annotations=str(ann), excluded=str(tmp_path / 'no.csv')),
               dict(annotations=str(ann),
                    seriesuids=str(tmp_path / 'no.csv'))):
        with pytest.raises(FileNotFoundError,
                           match=r'^LUNA16Metric: no such file: .*no\.csv$'):
            LUNA16Metric(**kw)
    # a folder is not a file
    with pytest.raises(FileNotFoundError):
        LUNA16Metric(annotations=str(tmp_path))
    LUNA16Metric(annotations=str(ann), excluded=str(ann))


# --- process --------------------------------------------------------------------


def test_sample_scan_is_series_uid_else_img_id():
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None)
    m.process({}, [sample('s1', [box(0, 0, 0)], [.5], [], img_id='i1'),
                   sample('i2', [box(0, 0, 0)], [.5], [], key='img_id'),
                   sample('', [box(0, 0, 0)], [.5], [], img_id='i3')])
    assert [r['uid'] for r in m.results] == ['s1', 'i2', 'i3']


def test_sample_errors():
    m = LUNA16Metric()
    bad = sample('x', [], [], key=None)
    bad['img_id'] = None
    with pytest.raises(ValueError,
                       match=r'^LUNA16Metric: sample img_id=None \(p\.mhd\) '
                       r'has neither series_uid nor img_id$'):
        m.process({}, [bad])
    for key in ('spacing_zyx', 'origin_xyz', 'direction'):
        s = sample('x', [], [])
        del s[key]
        with pytest.raises(
                ValueError,
                match=rf"^LUNA16Metric: sample img_id=img-x \(p\.mhd\) lacks "
                rf"the metainfo \['{key}'\] needed to put its boxes in world "
                r'coordinates \(add them to the meta_keys of PackDetInputs\)$'):
            m.process({}, [s])
    s = sample('x', [], [])
    s['pred_instances']['bboxes'] = torch.zeros(2, 4)
    with pytest.raises(ValueError,
                       match=r"^LUNA16Metric: sample img_id=img-x \(p\.mhd\): "
                       r"pred_instances\['bboxes'\] must be \(N, 6\) \[x1, "
                       r"y1, z1, x2, y2, z2\], got \(2, 4\)$"):
        m.process({}, [s])
    s['pred_instances']['bboxes'] = torch.zeros(6)
    with pytest.raises(ValueError, match=r'got \(6,\)$'):
        m.process({}, [s])
    s['pred_instances']['bboxes'] = torch.zeros(1, 2, 6)
    with pytest.raises(ValueError, match=r'got \(1, 2, 6\)$'):
        m.process({}, [s])
    # no boxes at all, in any shape: accepted
    s['pred_instances']['bboxes'] = torch.zeros(0, 4)
    s['pred_instances']['scores'] = torch.zeros(0)
    m.process({}, [s])
    s = sample('x', [box(0, 0, 0)], [.5, .6])
    with pytest.raises(ValueError,
                       match=r'^LUNA16Metric: sample img_id=img-x \(p\.mhd\) '
                       r'has 1 boxes but 2 scores$'):
        m.process({}, [s])


@pytest.mark.parametrize('inst', [
    dict(diameter_mm=5.),
    dict(center_world=[0., 0.], diameter_mm=5.),
    dict(center_world=[0., 0., 0.]),
    dict(center_world=[0., 0., 0.], diameter_mm='big'),
    dict(center_world=[0., 0., 0.], diameter_mm=None),
])
def test_malformed_instance_is_named(inst):
    m = LUNA16Metric()
    s = sample('x', [], [], [nodule(0.), inst])
    with pytest.raises(ValueError,
                       match=r"^LUNA16Metric: sample img_id=img-x \(p\.mhd\), "
                       r"instance 1: needs 'center_world' \[x, y, z\] and "
                       r"'diameter_mm' \("):
        m.process({}, [s])


def test_instances_read_only_without_annotations(tmp_path):
    ann = tmp_path / 'ann.csv'
    ann.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n')
    m = LUNA16Metric(annotations=str(ann))
    m.process({}, [sample('x', [], [], [dict(bad=1)])])  # not parsed
    assert m.results[0]['gts'] is None
    m = LUNA16Metric()
    m.process({}, [sample('x', [box(1, 2, 3)], [.5], [nodule(1., 4.,
                                                              True)])])
    r = m.results[0]
    assert r['gts'][0][0].tolist() == [1., 0., 0.]
    assert r['gts'][0][1:] == (4.0, True)
    assert r['xyz'].tolist() == [[1., 2., 3.]] and r['diam'].tolist() == [2.]
    assert r['scores'].dtype == np.float64
    m.process({}, [sample('y', [], [])])  # no instances key: no nodule
    assert m.results[1]['gts'] == []
    # scores of any shape are flattened
    s = sample('z', [box(0, 0, 0), box(9, 0, 0)], [.5, .6])
    s['pred_instances']['scores'] = torch.tensor([[.5, .6]])
    m.process({}, [s])
    assert m.results[2]['scores'].shape == (2, )


# --- compute_metrics ---------------------------------------------------------------


def test_no_sample_is_an_error():
    with pytest.raises(ValueError,
                       match=r'^LUNA16Metric: no sample to evaluate$'):
        LUNA16Metric().compute_metrics([])


def test_metric_keys_without_band_and_tnp_nan():
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None)
    # one nodule of two found: the TNP sensitivity 0.95 is never reached
    res = run(m, [
        sample('a', [box(0, 0, 0), box(50, 0, 0)], [.9, .4],
               [nodule(0.), nodule(100.)]),
        sample('n', [box(0, 0, 0)], [.6], []),
    ])
    assert list(res) == ['luna16/cpm'] + [
        f'luna16/sens@{k}' for k in ('0.125', '0.25', '0.5', '1', '2', '4',
                                     '8')
    ] + ['luna16/tnp']
    assert res['luna16/cpm'] == 0.5 and res['luna16/sens@8'] == 0.5
    assert math.isnan(res['luna16/tnp'])
    assert all(type(v) is float for v in res.values())


def test_metric_keys_with_band_and_options_passed_on(tmp_path):
    m = LUNA16Metric(num_bootstrap=7, seed=3, confidence=0.5, max_marks=1,
                     tnp_sensitivity=0.5, froc_plot=None,
                     outfile_prefix=str(tmp_path / 'a' / 'b' / 'val'))
    samples = [
        sample('a', [box(0, 0, 0), box(50, 0, 0)], [.9, .4], [nodule(0.)]),
        sample('b', [box(0, 0, 0), box(50, 0, 0)], [.3, .8], [nodule(0.)]),
        sample('n', [box(0, 0, 0)], [.6], []),
    ]
    res = run(m, samples)
    assert list(res)[-3:] == ['luna16/cpm_lower', 'luna16/cpm_upper',
                              'luna16/tnp']
    summary = json.loads((tmp_path / 'a' / 'b' / 'val_metrics.json')
                         .read_text())
    assert summary['options']['max_marks'] == 1
    assert summary['options']['num_bootstrap'] == 7
    assert summary['options']['seed'] == 3
    assert summary['options']['confidence'] == 0.5
    assert summary['options']['tnp_sensitivity'] == 0.5
    assert summary['num_kept'] == 3  # one mark per scan
    boot = summary['bootstrap']
    assert (res['luna16/cpm_lower'], res['luna16/cpm_upper']) == (
        boot['cpm_lower'], boot['cpm_upper'])
    assert summary['ground_truth'] == ('dataset instances (center_world, '
                                       'diameter_mm; ignore_flag = excluded)')
    # TNP at sensitivity 0.5: threshold .9, n's FP (.6) below: a TN
    assert res['luna16/tnp'] == 1.0
    assert res['luna16/cpm'] == summary['cpm']


def test_ground_truth_from_first_sample_of_each_scan():
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None)
    samples = [
        # scan a in two crops: the second crop's instances are not read
        sample('a', [box(0, 0, 0)], [.9], [nodule(0.), nodule(30., -1., 1)]),
        sample('a', [box(30, 0, 0), box(60, 0, 0)], [.8, .7],
               [nodule(60.)]),
        sample('b', [box(0, 0, 0)], [.5], [nodule(0., ignore=0)]),
    ]
    m.process({}, samples)
    ann, exc, uids, _ = m._ground_truth(m.results)
    assert uids == ['a', 'b']
    assert ann.seriesuids.tolist() == ['a', 'b']
    assert ann.seriesuids.dtype == object
    assert ann.xyz.tolist() == [[0., 0., 0.], [0., 0., 0.]]
    assert ann.diameter_mm.tolist() == [10., 10.]
    assert exc.seriesuids.tolist() == ['a']
    assert exc.xyz.tolist() == [[30., 0., 0.]]
    assert exc.diameter_mm.tolist() == [-1.]
    res = m.evaluate(3)
    # .9 TP, .8 on the excluded finding, .7 an FP, .5 TP
    assert res['luna16/sens@8'] == 1.0
    assert res['luna16/sens@0.125'] == 0.5  # the FP comes before the 2nd TP
    empty = LUNA16Metric()
    empty.process({}, [sample('z', [], [])])
    ann, exc, uids, _ = empty._ground_truth(empty.results)
    assert ann.xyz.shape == (0, 3) and exc.xyz.shape == (0, 3)
    assert ann.diameter_mm.shape == (0, ) and uids == ['z']


def _csvs(tmp_path):
    ann = tmp_path / 'ann.csv'
    ann.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                   'a,0,0,0,10\nc,0,0,0,10\n')
    exc = tmp_path / 'exc.csv'
    exc.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                   'a,30,0,0,-1\na,30,0,0,-1\n')  # repeated rows allowed
    uids = tmp_path / 'uids.csv'
    uids.write_text('a\nb\nc\nd\n')
    return str(ann), str(exc), str(uids)


def test_ground_truth_from_csvs(tmp_path):
    ann, exc, uids = _csvs(tmp_path)
    samples = [sample('b', [box(0, 0, 0)], [.5]),
               sample('a', [box(0, 0, 0), box(30, 0, 0)], [.9, .8])]
    # evaluated scans only, in order: c's nodule is ignored
    m = LUNA16Metric(annotations=ann, excluded=exc, num_bootstrap=0,
                     froc_plot=None)
    m.process({}, samples)
    a, e, u, _ = m._ground_truth(m.results)
    assert u == ['b', 'a'] and len(e.seriesuids) == 2
    res = m.evaluate(2)
    assert res['luna16/sens@8'] == 1.0 and res['luna16/sens@0.125'] == 1.0
    # without the excluded file the mark at x=30 is an FP
    m = LUNA16Metric(annotations=ann, num_bootstrap=0, froc_plot=None)
    m.process({}, samples)
    assert m._ground_truth(m.results)[1] is None
    res = m.evaluate(2)
    assert res['luna16/sens@0.125'] == 1.0 and res['luna16/sens@1'] == 1.0
    # with the list: four scans, c's nodule missed
    m = LUNA16Metric(annotations=ann, excluded=exc, seriesuids=uids,
                     num_bootstrap=0, froc_plot=None,
                     outfile_prefix=str(tmp_path / 'out' / 'v'))
    m.process({}, samples)
    assert m._ground_truth(m.results)[2] == ['a', 'b', 'c', 'd']
    res = m.evaluate(2)
    assert res['luna16/sens@8'] == 0.5
    summary = json.loads((tmp_path / 'out' / 'v_metrics.json').read_text())
    assert summary['num_scans'] == 4
    assert summary['ground_truth'] == dict(annotations=ann, excluded=exc,
                                           seriesuids=uids)


def test_evaluated_scans_must_be_listed(tmp_path):
    ann, exc, uids = _csvs(tmp_path)
    m = LUNA16Metric(annotations=ann, seriesuids=uids, num_bootstrap=0)
    m.process({}, [sample('zz', [], []), sample('a', [], []),
                   sample('yy', [], [])])
    with pytest.raises(ValueError,
                       match=r'^LUNA16Metric: 2 evaluated scan\(s\) are not '
                       r'in .*uids\.csv, e\.g\. yy$'):
        m.evaluate(3)


# --- files, plot and log -----------------------------------------------------------


def test_files_plot_hook_and_log(tmp_path, monkeypatch):
    calls, logs = [], []

    def fake_plot(result, path, name=None):
        calls.append((result.cpm, path, name))
        with open(path, 'wb') as f:
            f.write(b'png')

    FUNCTIONS.register_module(name='_test_luna16_plot', module=fake_plot,
                              force=True)
    loggers = []

    def fake_log(msg, logger=None):
        logs.append(msg)
        loggers.append(logger)

    monkeypatch.setattr(lm, 'print_log', fake_log)
    prefix = str(tmp_path / 'deep' / 'er' / 'val')
    m = LUNA16Metric(num_bootstrap=0, froc_plot='_test_luna16_plot',
                     outfile_prefix=prefix)
    samples = [sample('a', [box(0, 0, 0, 2.), box(50, 0, 0)], [.9, .4],
                      [nodule(0.)])]
    res = run(m, samples)
    assert calls == [(res['luna16/cpm'], prefix + '_froc.png', 'val')]
    cands = L.read_candidates_csv(prefix + '_candidates.csv')
    assert cands.xyz.tolist() == [[0., 0., 0.], [50., 0., 0.]]
    assert cands.probability.tolist() == [
        float(np.float32(.9)), float(np.float32(.4))
    ]
    with open(prefix + '_candidates.csv') as f:
        rows = f.read().split()
    assert rows[0].endswith(',probability,diameter_mm')
    assert rows[1].endswith(',4.0') and rows[2].endswith(',2.0')
    summary = json.loads(open(prefix + '_metrics.json').read())
    assert summary['cpm'] == res['luna16/cpm']
    assert summary['protocol'].startswith('LUNA16 (official')
    assert len(logs) == 2 and loggers == ['current', 'current']
    with open(prefix + '_metrics.json') as f:
        assert f.read().startswith('{\n  "protocol": ')  # indent 2
    assert logs[0].startswith(
        'LUNA16Metric: LUNA16 (official noduleCADEvaluationLUNA16.py '
        'semantics, docs/protocols.md §3); options {')
    assert logs[0].splitlines()[1] == (
        'scans 1, nodules 1 (detected 1), marks 2 (kept 2, FP 1, on '
        'excluded findings 0)')
    assert logs[0].splitlines()[2] == (
        'cpm=1.0000, sens@0.125=1.0000, sens@0.25=1.0000, sens@0.5=1.0000, '
        'sens@1=1.0000, sens@2=1.0000, sens@4=1.0000, sens@8=1.0000, '
        'tnp=nan')
    assert logs[1] == (f'LUNA16Metric: wrote {prefix}_candidates.csv, '
                       f'{prefix}_metrics.json and {prefix}_froc.png')
    # without a plot: two files
    logs.clear()
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None, outfile_prefix=prefix)
    run(m, samples)
    assert logs[1] == (f'LUNA16Metric: wrote {prefix}_candidates.csv and '
                       f'{prefix}_metrics.json')
    # an unregistered plot name
    m = LUNA16Metric(num_bootstrap=0, froc_plot='no_such_plot_fn',
                     outfile_prefix=prefix)
    with pytest.raises(KeyError,
                       match=r"LUNA16Metric: froc_plot 'no_such_plot_fn' is "
                       r"not in mmengine's FUNCTIONS registry \(import "
                       r'mmlesion\.visualization, or set froc_plot=None\)'):
        run(m, samples)


class _Logger:

    def __init__(self, log_file):
        self.log_file = log_file


class _LoggerWithout:
    pass


def test_prefix_from_the_log_file(tmp_path, monkeypatch):
    log_dir = tmp_path / 'work' / '2024'
    log_dir.mkdir(parents=True)
    current = {'logger': _Logger(str(log_dir / 'run.log'))}

    class FakeMMLogger:

        @staticmethod
        def get_current_instance():
            return current['logger']

    monkeypatch.setattr(fm, 'MMLogger', FakeMMLogger)
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None)
    assert m._resolve_prefix() == osp.join(str(log_dir), 'luna16')
    run(m, [sample('a', [box(0, 0, 0)], [.5], [])])
    assert (log_dir / 'luna16_metrics.json').is_file()
    assert (log_dir / 'luna16_candidates.csv').is_file()
    # the outfile prefix wins
    assert LUNA16Metric(outfile_prefix='x/y')._resolve_prefix() == 'x/y'
    # no log file: no files
    for logger in (_Logger(None), _Logger(''), _LoggerWithout()):
        current['logger'] = logger
        assert LUNA16Metric()._resolve_prefix() is None
    res = run(LUNA16Metric(num_bootstrap=0),
              [sample('a', [box(0, 0, 0)], [.5], [])])
    assert res['luna16/cpm'] != res['luna16/cpm']  # NaN: no nodule


# --- option messages, the score-cut inputs, subsets and breakdowns ----------------


@pytest.mark.parametrize('kw,name,got', [
    (dict(fp_rates=[]), 'fp_rates', r'\[\]'),
    (dict(fp_rates=[1., -1.]), 'fp_rates', r'\[1\.0, -1\.0\]'),
    (dict(mean_rates=[float('inf')]), 'mean_rates', r'\[inf\]'),
])
def test_bad_rates_are_named(kw, name, got):
    with pytest.raises(ValueError,
                       match=rf'^LUNA16Metric: {name} must be a non-empty '
                       rf'list of finite rates >= 0, got {got}$'):
        LUNA16Metric(**kw)


def test_breakdowns_with_csv_annotations_message(tmp_path):
    ann = tmp_path / 'ann.csv'
    ann.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n')
    with pytest.raises(ValueError,
                       match=r"^LUNA16Metric: breakdowns=True needs the "
                       r"lesion types of the dataset's instances; the "
                       r'annotations CSV has none \(set annotations=None\)$'):
        LUNA16Metric(annotations=str(ann), breakdowns=True)


def test_max_diameter_must_be_positive():
    for bad in (0, -1.5):
        with pytest.raises(ValueError,
                           match=r'^LUNA16Metric: max_diameter_mm must be > '
                           rf'0, got {bad}$'):
            LUNA16Metric(max_diameter_mm=bad)
    assert LUNA16Metric(max_diameter_mm=0.5).max_diameter_mm == 0.5


def _with_rpn(s, rpn):
    s['pred_instances']['rpn_scores'] = torch.tensor(rpn, dtype=torch.float64)
    return s


def test_rpn_scores_read_and_checked_only_with_a_cut():
    s = _with_rpn(sample('x', [box(0, 0, 0), box(9, 0, 0)], [.5, .6]), [.7])
    with pytest.raises(ValueError,
                       match=r'^LUNA16Metric: sample img_id=img-x \(p\.mhd\) '
                       r'has 2 scores but 1 rpn_scores$'):
        LUNA16Metric(rpn_score_cut=.3).process({}, [s])
    m = LUNA16Metric()  # no cut: the RPN scores are not read
    m.process({}, [s])
    assert m.results[0]['rpn'].tolist() == [.7]
    # any shape is flattened
    s = _with_rpn(sample('x', [box(0, 0, 0), box(9, 0, 0)], [.5, .6]),
                  [[.7, .2]])
    m = LUNA16Metric(rpn_score_cut=.3)
    m.process({}, [s])
    assert m.results[0]['rpn'].tolist() == [.7, .2]
    # without RPN scores the cut reads the scores
    m.process({}, [sample('y', [box(0, 0, 0)], [.25])])
    assert m.results[1]['rpn'].tolist() == [.25]


def test_unknown_lesion_type_is_minus_one():
    m = LUNA16Metric()
    m.process({}, [sample('x', [], [], [nodule(0.),
                                        dict(nodule(5.), lesion_type=3)])])
    assert m.results[0]['gt_types'] == [-1, 3]
    # results without types (or none recorded): every type unknown
    results = [dict(uid='a', gts=[(np.zeros(3), 5., False),
                                  (np.ones(3), 6., True),
                                  (np.full(3, 2.), 7., False)])]
    types = m._ground_truth(results)[3]
    assert types.tolist() == [-1, -1] and types.dtype == np.int64
    results[0]['gt_types'] = []
    assert m._ground_truth(results)[3].tolist() == [-1, -1]
    # no included finding: still int64
    m = LUNA16Metric()
    m.process({}, [sample('z', [], [], [nodule(0., ignore=1)])])
    types = m._ground_truth(m.results)[3]
    assert types.shape == (0, ) and types.dtype == np.int64


def test_mean_key_averages_its_own_rates():
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None, mean_rates=(4, 8))
    # the FP (.7) comes before the second TP: sens 0.5 at 1/8, 1 at 4 and 8
    res = run(m, [sample('a', [box(0, 0, 0), box(50, 0, 0), box(99, 0, 0)],
                         [.9, .7, .5], [nodule(0.), nodule(99.)])])
    assert res['luna16/sens@0.125'] == 0.5
    assert res['luna16/mean@4-8'] == 1.0


def test_score_cut_effect_keeps_the_excluded_findings():
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None, rpn_score_cut=.3)
    # a mark on the excluded finding above the TP: neither TP nor FP
    s = _with_rpn(sample('a', [box(30, 0, 0), box(0, 0, 0)], [.9, .5],
                         [nodule(0.), nodule(30., ignore=1)]), [.9, .9])
    res = run(m, [s])
    assert res['luna16/cpm'] == 1.0 and res['luna16/cpm_uncut'] == 1.0
    assert res['luna16/sens@0.125_uncut'] == 1.0


def test_score_cut_candidates_csv_has_the_kept_diameters(tmp_path):
    prefix = str(tmp_path / 'v')
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None, rpn_score_cut=.5,
                     outfile_prefix=prefix)
    # RPN exactly at the cut (dropped) first, then one above it (kept)
    s = _with_rpn(sample('a', [box(0, 0, 0, 1.), box(9, 0, 0, 2.)],
                         [.9, .8], [nodule(0.)]), [.5, .6])
    run(m, [s])
    with open(prefix + '_candidates.csv') as f:
        rows = f.read().split()
    assert rows[0].endswith(',probability,diameter_mm') and len(rows) == 2
    assert rows[1].endswith(',4.0')


def _lesion(x, d, kind, ignore=0):
    return dict(center_world=[x, 0., 0.], diameter_mm=d, lesion_type=kind,
                ignore_flag=ignore)


def test_subsets_json_and_the_size_cut_with_types(tmp_path):
    prefix = str(tmp_path / 'v')
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None, breakdowns=True,
                     max_diameter_mm=48, fp_rates=(1, ), outfile_prefix=prefix)
    # liver 20 mm found, liver 60 mm (removed by the cut) found, lung 8 mm
    # missed
    res = run(m, [sample('a', [box(0, 0, 0), box(100, 0, 0)], [.9, .8],
                         [_lesion(0., 20., 4), _lesion(100., 60., 4),
                          _lesion(200., 8., 5)])])
    assert res['luna16/sens@1_type_liver'] == 1.0
    assert res['luna16/sens@1_type_lung'] == 0.0
    sub = json.loads(open(prefix + '_metrics.json').read())['subsets']
    assert sub['rule'] == ('ground truth filtered, every mark kept (a mark '
                           'on a lesion outside the subset is a false '
                           'positive)')
    assert sub['max_diameter_mm'] == 48.0 and sub['num_lesions'] == 2
    assert sub['breakdowns']['type_liver'] == dict(
        label='liver', num_lesions=1, num_detected=1,
        metrics={'sens@1_type_liver': 1.0})
    assert sub['breakdowns']['type_lung'] == dict(
        label='lung', num_lesions=1, num_detected=0,
        metrics={'sens@1_type_lung': 0.0})
    assert sub['breakdowns']['type_bone']['metrics'] == {
        'sens@1_type_bone': None}
    assert sub['breakdowns']['size_lt10mm']['num_lesions'] == 1


def test_size_cut_with_csv_annotations(tmp_path):
    ann = tmp_path / 'ann.csv'
    ann.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                   'a,0,0,0,10\na,50,0,0,60\n')
    prefix = str(tmp_path / 'v')
    m = LUNA16Metric(annotations=str(ann), num_bootstrap=0, froc_plot=None,
                     max_diameter_mm=48, outfile_prefix=prefix)
    res = run(m, [sample('a', [box(0, 0, 0)], [.9])])
    assert res['luna16/cpm'] == 1.0
    sub = json.loads(open(prefix + '_metrics.json').read())['subsets']
    assert sub['num_lesions'] == 1 and sub['max_diameter_mm'] == 48.0


def test_breakdowns_use_max_marks():
    m = LUNA16Metric(num_bootstrap=0, froc_plot=None, breakdowns=True,
                     fp_rates=(8, ), max_marks=1)
    # the lesion's mark ranks second: cut by max_marks in every evaluation
    res = run(m, [sample('a', [box(50, 0, 0), box(0, 0, 0)], [.9, .5],
                         [_lesion(0., 20., 4)])])
    assert res['luna16/sens@8'] == 0.0
    assert res['luna16/sens@8_type_liver'] == 0.0
    assert res['luna16/sens@8_size_10to30mm'] == 0.0


def test_breakdown_log_lines(monkeypatch):
    logs = []
    monkeypatch.setattr(lm, 'print_log',
                        lambda msg, logger=None: logs.append((msg, logger)))
    kw = dict(num_bootstrap=0, froc_plot=None, fp_rates=(1, ))
    run(LUNA16Metric(breakdowns=True, **kw),
        [sample('a', [box(0, 0, 0)], [.9], [_lesion(0., 20., 4)])])
    assert len(logs) == 1 and logs[0][1] == 'current'
    lines = logs[0][0].splitlines()
    assert lines[2:] == [
        'cpm=1.0000, sens@1=1.0000, tnp=nan',
        '(the lesion-type and size breakdowns are in the returned metrics '
        'and the metrics JSON)']
    # no known lesion type: said, and only the size subsets
    logs.clear()
    res = run(LUNA16Metric(breakdowns=True, **kw),
              [sample('a', [box(0, 0, 0)], [.9], [nodule(0.)])])
    assert logs[0] == ('LUNA16Metric: no lesion has a known "lesion_type"; '
                       'lesion-type breakdown skipped', 'current')
    assert len(logs) == 2 and not any('_type_' in k for k in res)
    assert res['luna16/sens@1_size_10to30mm'] == 1.0
    # without breakdowns: no note
    logs.clear()
    run(LUNA16Metric(**kw), [sample('a', [box(0, 0, 0)], [.9], [nodule(0.)])])
    assert len(logs) == 1
    assert logs[0][0].splitlines()[2:] == ['cpm=1.0000, sens@1=1.0000, '
                                           'tnp=nan']
