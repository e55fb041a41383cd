# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py aggregated3d/table5-6`` as a plan: the 3D
Aggregated Faster R-CNN's DeepLesion Tables V and VI are one set of runs
(the same four rows, Table VI their sensitivity at 4 FPs per lesion type
and size): DeepLesion converted to 3D chunks, the RPN stage, 3D-AG from
it, each tested with all lesions and ("*") without those >= 48 mm; 3DCE
(another paper's method) quoted, never run."""
import os.path as osp

import numpy as np
from mmengine.config import Config

from mmlesion.apps.reproduce import TABLES, PlanContext, build_rows
from mmlesion.apps.reproduce.execute import repo_root
from mmlesion.methods.aggregated3d.paper import (A3D_3DCE,
                                                 a3d_deeplesion_keys)
from mmlesion.methods.aggregated3d.tables import A3D_SCORE_CUT_KEYS
from mmlesion.apps.reproduce.paper_results import PAPER_RESULTS, QUOTED_MODELS

A3 = 'configs/aggregated3d'
RPN = 'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d'
AG = 'aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d'


def _rows(tmp_path, **kw):
    ctx = PlanContext(str(tmp_path / 'w'), python='python', **kw)
    return {r.key: r for r in build_rows('aggregated3d/table5-6', ctx, None,
                                         [1])}


def test_stages_of_every_row(tmp_path):
    rows = _rows(tmp_path, data_root='/d/DeepLesion',
                 cfg_options=['train_cfg.max_epochs=3'])
    assert list(rows) == ['3dce', 'rpn', '3dag', 'rpn_lt48mm',
                          '3dag_lt48mm']
    quoted = rows['3dce']
    assert quoted.stages == [] and quoted.model == A3D_3DCE
    assert 'quoted' in quoted.label and A3D_3DCE in QUOTED_MODELS
    names = {k: [s.name for s in r.stages] for k, r in rows.items()}
    assert names['rpn'] == ['convert_deeplesion3d', 'train_rpn', 'test_all']
    assert names['3dag'] == ['convert_deeplesion3d', 'train_rpn',
                             'train_3dag', 'test_all']
    assert names['rpn_lt48mm'][-1] == names['3dag_lt48mm'][-1] == \
        'test_lt48mm'
    # the release at --data-root, its chunks beside it (the configs' data
    # root moved there for the trainings and tests)
    convert = rows['rpn'].stages[0]
    assert convert.argv[1:5] == [
        'tools/dataset_converters/deeplesion_to_3d.py',
        '/d/DeepLesion/DL_info.csv', '/d/DeepLesion/Images_png',
        '/d/DeepLesion3D']
    assert '/d/DeepLesion3D/deeplesion3d_test.json' in convert.outputs
    for row in list(rows.values())[1:]:
        assert all('data_root=/d/DeepLesion3D/' in s.argv
                   for s in row.stages[1:])
        # one conversion and one RPN stage for the whole table
        assert row.stages[0].command == convert.command
        assert row.stages[1].command == rows['rpn'].stages[1].command
    # 3D-AG starts from the RPN stage's last epoch (Sec. III-E)
    rpn_train, ag_train = rows['3dag'].stages[1:3]
    rpn_work = rpn_train.argv[rpn_train.argv.index('--work-dir') + 1]
    assert f'load_from={rpn_work}/epoch_3.pth' in ag_train.argv
    assert ag_train.argv[2] == f'{A3}/{AG}.py'
    # a "*" row tests the same checkpoint with its -lt48mm config
    for key, stem in (('rpn', RPN), ('3dag', AG)):
        plain, star = rows[key].stages[-1], rows[f'{key}_lt48mm'].stages[-1]
        assert plain.argv[2] == f'{A3}/{stem}.py'
        assert star.argv[2] == f'{A3}/{stem}-lt48mm.py'
        assert plain.argv[3] == star.argv[3]  # @last: of one training
        assert plain.argv[3].startswith('@last:')
        assert rows[f'{key}_lt48mm'].model == f'{stem}-lt48mm'
        assert plain.outputs != star.outputs


def test_tests_run_without_the_cut_their_evaluator_applies(tmp_path):
    """Sec. IV-F's 0.269 (the configs' RPN score cut) moves from the model
    to the evaluator in every test: one run, evaluated with and without
    it (LUNA16Metric's rpn_score_cut)."""
    for row in list(_rows(tmp_path).values())[1:]:
        argv = row.stages[-1].argv
        assert 'model.test_cfg.rpn.score_thr=0' in argv
        assert 'test_evaluator.rpn_score_cut=0.269' in argv


def test_default_data_is_the_configs(tmp_path):
    rows = _rows(tmp_path)
    convert = rows['3dag'].stages[0]
    assert convert.argv[-2:] == ['data/DeepLesion3D', '--overwrite']
    assert not any(a.startswith('data_root=') for s in rows['3dag'].stages
                   for a in s.argv)


def test_columns_and_paper_numbers():
    spec = TABLES['aggregated3d/table5-6']
    keys = list(a3d_deeplesion_keys())
    # the paper's columns, then the RPN score cut's (no paper number)
    assert spec.columns == keys + list(A3D_SCORE_CUT_KEYS)
    assert len(keys) == 8 + 11
    assert keys[6:8] == ['luna16/mean@0.5-16', 'luna16/cpm']
    for model in (RPN, AG, RPN + '-lt48mm', AG + '-lt48mm', A3D_3DCE):
        paper = PAPER_RESULTS[model]
        assert set(paper) == set(keys) - (
            {'luna16/cpm'} if model == A3D_3DCE else set())
        # Table V's "Avg." is the mean of its six FP rates
        sens = [paper[k] for k in keys[:6]]
        assert abs(np.mean(sens) - paper['luna16/mean@0.5-16']) < 0.01


def test_star_configs_change_only_the_test_ground_truth():
    """One definition per row: a "*" config is its model's config, only
    its test evaluator removes the lesions >= 48 mm."""
    for stem in (RPN, AG):
        base = Config.fromfile(osp.join(repo_root(), A3, f'{stem}.py'))
        star = Config.fromfile(
            osp.join(repo_root(), A3, f'{stem}-lt48mm.py'))
        assert star.test_evaluator == dict(base.test_evaluator,
                                           max_diameter_mm=48.)
        assert base.test_evaluator.breakdowns is True
        for key in ('model', 'train_dataloader', 'test_dataloader',
                    'val_evaluator', 'train_cfg', 'optim_wrapper',
                    'load_from'):
            assert star.get(key) == base.get(key), (stem, key)
