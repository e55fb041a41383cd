# Copyright (c) mmlesion contributors. All rights reserved.
"""The LUNA16 evaluation CLI: outputs, errors and the overwrite guard."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L
from mmlesion.testing import shared_data_root

TOOL = (Path(__file__).resolve().parents[3] / 'tools' / 'analysis_tools' /
        'eval_luna16.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('eval_luna16', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture
def small(tmp_path):
    ann = _write(tmp_path / 'annotations.csv',
                 'seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                 'a,0,0,0,10\na,40,0,0,6\nb,0,0,0,8\n')
    exc = _write(tmp_path / 'excluded.csv',
                 'seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                 'c,100,0,0,-1\n')
    uids = _write(tmp_path / 'seriesuids.csv', 'a\nb\nc\nd\n')
    cands = _write(tmp_path / 'cands.csv',
                   'seriesuid,coordX,coordY,coordZ,probability\n'
                   'a,1,0,0,0.9\na,40,0,0,0.3\na,90,0,0,0.8\n'
                   'b,50,0,0,0.7\nc,102,0,0,0.95\nd,7,7,7,0.2\n')
    return dict(annotations=ann, excluded=exc, seriesuids=uids,
                candidates=cands)


def _argv(files, out_dir, *extra):
    argv = []
    for key in ('annotations', 'excluded', 'seriesuids', 'candidates'):
        argv += [f'--{key}', files[key]]
    return argv + ['--out-dir', str(out_dir), *extra]


def test_small_case_outputs(small, tmp_path, capsys):
    tool = load_tool()
    out = tmp_path / 'out'
    assert tool.main(_argv(small, out, '--num-bootstrap', '50')) == 0
    metrics = json.loads((out / 'metrics.json').read_text())
    assert set(metrics['sensitivity_at']) == {
        '0.125', '0.25', '0.5', '1', '2', '4', '8'}
    # 2 of 3 nodules found; FPs: (a,90) 0.8, (b,50) 0.7, (d) 0.2 over 4
    # scans; (c,102) is on an excluded finding and ignored
    assert metrics['num_detected'] == 2 and metrics['num_nodules'] == 3
    assert metrics['num_fp'] == 3 and metrics['num_irrelevant'] == 1
    # curve: TP 0.9 -> 1/3, then FPs 0.8, 0.7 (0.5 FPs/scan), TP 0.3 -> 2/3
    # at 0.5 FPs/scan too: np.interp takes the last point of equal FPs
    assert metrics['sensitivity_at']['0.25'] == pytest.approx(1 / 3)
    assert metrics['sensitivity_at']['0.5'] == pytest.approx(2 / 3)
    assert metrics['cpm'] == pytest.approx(
        np.mean([1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3]))
    # with 4 scans some resamples have no nodule: their sensitivity is
    # undefined (NaN in the official script too), reported as null
    boot = metrics['bootstrap']
    assert boot['num_resamples'] == 50
    assert boot['num_resamples_without_nodules'] > 0
    assert boot['sensitivity_at']['1']['upper'] is None
    assert metrics['tnp']['num_negative_scans'] == 2  # c and d
    # 0.95 never reached: TNP undefined; at the highest sensitivity (2/3,
    # from 0.3 on) neither c nor d has an FP at or above it: printed with
    # that sensitivity, never as the paper's operating point
    assert metrics['tnp']['tnp'] is None
    assert metrics['tnp']['at_highest_sensitivity'] == dict(
        tnp=1.0, threshold=0.3, sensitivity=pytest.approx(2 / 3),
        num_true_negatives=2)
    assert ('TNP: undefined (sensitivity 0.95 never reached); at the '
            'highest sensitivity reached, 0.6667 (not the paper\'s operating '
            'point): 1.0000 (2/2 scans without nodules)') in \
        capsys.readouterr().out
    for name in ('froc.png', 'froc_curve.csv', 'froc_bootstrap.csv',
                 'nodules.csv'):
        assert (out / name).stat().st_size > 0
    assert (out / 'nodules.csv').read_text().count('\n') == 4
    # never overwrite without --overwrite
    before = (out / 'metrics.json').read_text()
    assert tool.main(_argv(small, out)) == 2
    assert (out / 'metrics.json').read_text() == before
    assert tool.main(_argv(small, out, '--overwrite', '--num-bootstrap',
                           '0')) == 0
    assert not (out / 'froc_bootstrap.csv').exists()


def test_bad_rows_and_unknown_seriesuids(small, tmp_path, capsys):
    tool = load_tool()
    bad = dict(small)
    bad['candidates'] = _write(
        tmp_path / 'bad.csv', 'seriesuid,coordX,coordY,coordZ,probability\n'
        'a,1,0,0,0.9\na,1,0,zz,0.9\n')
    assert tool.main(_argv(bad, tmp_path / 'o1')) == 1
    err = capsys.readouterr().err
    assert "bad.csv line 3: field 'coordZ'" in err
    bad['candidates'] = _write(
        tmp_path / 'unknown.csv',
        'seriesuid,coordX,coordY,coordZ,probability\nzz9,1,0,0,0.9\n')
    assert tool.main(_argv(bad, tmp_path / 'o2')) == 1
    err = capsys.readouterr().err
    assert 'unknown.csv, data row 1: seriesuid zz9 is not in' in err
    assert not (tmp_path / 'o2').exists()
    assert tool.main(_argv(bad, tmp_path / 'o3',
                           '--ignore-unknown-seriesuids',
                           '--num-bootstrap', '0')) == 0


def test_real_annotations(tmp_path):
    root = shared_data_root()
    if root is None or not (root / 'luna16' / 'annotations.csv').is_file():
        pytest.skip('real LUNA16 CSVs ($MMLESION_SHARED_DATA/luna16) not available')
    d = root / 'luna16'
    ann = L.read_findings_csv(str(d / 'annotations.csv'))
    # one perfect mark per nodule (probability 1) plus 2 FPs per scan
    uids = L.read_seriesuids_csv(str(d / 'seriesuids.csv'))
    fp_uids = np.repeat(np.asarray(uids, dtype=object), 2)
    xyz = np.concatenate([ann.xyz, np.full((len(fp_uids), 3), 1e4)])
    prob = np.concatenate([np.ones(len(ann.xyz)),
                           np.linspace(0.9, 0.1, len(fp_uids))])
    L.write_candidates_csv(str(tmp_path / 'c.csv'),
                           list(ann.seriesuids) + list(fp_uids), xyz, prob)
    tool = load_tool()
    argv = ['--annotations', str(d / 'annotations.csv'), '--excluded',
            str(d / 'annotations_excluded.csv'), '--seriesuids',
            str(d / 'seriesuids.csv'), '--candidates', str(tmp_path / 'c.csv'),
            '--out-dir', str(tmp_path / 'out'), '--num-bootstrap', '20']
    assert tool.main(argv) == 0
    m = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert m['num_nodules'] == 1186 and m['num_scans'] == 888
    assert m['num_detected'] == 1186 and m['cpm'] == 1.0
    assert m['num_fp'] == 2 * 888
    # every nodule above every FP: TNP threshold 1.0 flags no scan
    assert m['tnp']['num_negative_scans'] == 287 and m['tnp']['tnp'] == 1.0


def test_scans_without_candidates_are_named(small, tmp_path):
    """Scans with no candidate at all (a detector that found nothing or a
    candidates file that lacks them) get a warning, not just a low CPM."""
    import logging

    from mmlesion.utils import get_tool_logger
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    tool = load_tool()
    logger = get_tool_logger('eval_luna16')
    logger.addHandler(handler)
    try:
        uids = _write(tmp_path / 'more_uids.csv', 'a\nb\nc\nd\ne\nf\n')
        assert tool.main(_argv(dict(small, seriesuids=uids),
                               tmp_path / 'o')) == 0
        warned = [m for m in seen if 'no candidate at all' in m]
        assert len(warned) == 1 and warned[0].startswith('2 of 6 scans')
        seen.clear()
        assert tool.main(_argv(small, tmp_path / 'p')) == 0
        assert not [m for m in seen if 'no candidate at all' in m]
    finally:
        logger.removeHandler(handler)
