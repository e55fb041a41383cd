# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN's LUNA16 tables as ``table.md`` prints
them: every row of Tables II, III, IV and Fig. 4c (TNP) carries the paper's
number beside its measured one, merged rows included; Table II row f, the
Table IV 3D-AG row and the TNP rows are the runs of other rows (one
definition each), not copies.

The measured numbers are recorded stage outputs: one ``eval_luna16``
``metrics.json`` (written by :func:`evaluate_luna16` on a tiny set) in the
place of every row's, so the table builder is checked without training
(the end-to-end run of a Table III row is in ``test_e2e_aggregated3d``)."""
import json
import os
import os.path as osp
import re

import numpy as np
import pytest

from mmlesion.evaluation.functional.luna16 import (LUNA16Candidates,
                                                   LUNA16Findings,
                                                   LUNA16Options,
                                                   evaluate_luna16)
from mmlesion.apps.reproduce import TABLES, PlanContext, build_rows
from mmlesion.apps.reproduce.execute import stage_id, write_table

TABLES_3DAG = ('aggregated3d/table2', 'aggregated3d/table3',
               'aggregated3d/table4', 'aggregated3d/tnp')


@pytest.fixture(scope='module')
def recorded_metrics():
    """``metrics.json`` of ``eval_luna16`` on three scans: two nodules
    found, one behind a false positive (a CPM below 1), a scan without
    nodules whose one mark is below the threshold of 0.95 sensitivity (TNP
    1)."""
    cands = LUNA16Candidates(
        np.asarray(['s1', 's2', 's3', 's1'], dtype=object),
        np.asarray([[0., 0, 0], [5, 5, 5], [9, 9, 9], [40, 40, 40]]),
        np.asarray([0.9, 0.8, 0.3, 0.85]))
    ann = LUNA16Findings(np.asarray(['s1', 's2'], dtype=object),
                         np.asarray([[0., 0, 0], [5, 5, 5]]),
                         np.asarray([6., 6.]))
    empty = LUNA16Findings(np.zeros(0, object), np.zeros((0, 3)),
                           np.zeros(0))
    res = evaluate_luna16(cands, ann, empty, ['s1', 's2', 's3'],
                          LUNA16Options(num_bootstrap=0))
    return res.to_dict()


def _table(name, tmp_path, recorded):
    ctx = PlanContext(str(tmp_path / 'w'), python='python', folds=[0, 1])
    rows = build_rows(name, ctx, None, [0])
    for row in rows:
        if row.stages:  # quoted rows run nothing
            os.makedirs(osp.dirname(row.metrics_file), exist_ok=True)
            with open(row.metrics_file, 'w') as f:
                json.dump(recorded, f)
    write_table(ctx.work_dir, TABLES[name], rows)
    with open(osp.join(ctx.work_dir, 'table.md')) as f:
        lines = [ln for ln in f.read().splitlines() if ln.startswith('| ')]
    return rows, lines[1:]  # without the header


@pytest.mark.parametrize('name', TABLES_3DAG)
def test_every_row_prints_the_paper_and_its_measured_number(
        name, tmp_path, recorded_metrics):
    rows, lines = _table(name, tmp_path, recorded_metrics)
    assert len(lines) == len(rows) == len(TABLES[name].row_keys)
    number = re.compile(r'\d+(\.\d+)?')
    for row, line in zip(rows, lines):
        cells = [c.strip() for c in line.strip('|').split('|')][2:-1]
        paper = [c.split(' / ')[0] for c in cells]
        ours = [c.split(' / ')[1] for c in cells]
        # the paper's number: its first column (FROC score or TNP)
        assert number.fullmatch(paper[0]), (name, row.key, line)
        if row.stages:  # measured: a number in every cell
            assert all(number.fullmatch(o) for o in ours), (name, line)
        else:  # quoted: nothing measured
            assert set(ours) == {'-'}, (name, line)


def test_merged_rows_are_the_papers_and_table3s(tmp_path, recorded_metrics):
    rows, lines = _table('aggregated3d/table3', tmp_path, recorded_metrics)
    merged = dict(zip([r.key for r in rows], lines))
    assert '| 0.943 / 0.86 |' in merged['merged_intersection']
    assert '| 0.942 / 0.86 |' in merged['merged_union']
    assert all(' - / - ' not in ln for ln in lines)


def test_rows_of_other_tables_share_their_runs(tmp_path):
    """Table II row f, Table IV's 3D-AG and every TNP row are the stages
    of the Table II / III row they score: the same commands, once."""
    ctx = PlanContext(str(tmp_path / 'w'), python='python', folds=[0])

    def row(table, key):
        (r, ) = build_rows(table, ctx, [key], [0])
        return r

    def ids(r):
        return [stage_id(s) for s in r.stages]

    f = row('aggregated3d/table2', 'f')
    assert f.model == 'rpn3d-focal-abs_denseunet3d_anchor1_4xb2-30e_luna16'
    assert ids(row('aggregated3d/tnp', 'rpn')) == ids(f)
    lm = row('aggregated3d/table3', '3dag_lm_abs')
    t4 = row('aggregated3d/table4', '3dag')
    assert ids(t4) == ids(lm) and t4.model == lm.model
    for tnp, t3 in (('3dag', '3dag_abs'), ('3dag_lm', '3dag_lm_abs'),
                    ('merged_union', 'merged_union'),
                    ('merged_intersection', 'merged_intersection')):
        r = row('aggregated3d/tnp', tnp)
        assert ids(r) == ids(row('aggregated3d/table3', t3))
        assert r.paper_name == r.model + '@tnp'
    assert 'rpn_abs' not in TABLES['aggregated3d/table3'].row_keys
