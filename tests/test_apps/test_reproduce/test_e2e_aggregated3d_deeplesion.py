# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py aggregated3d/table5-6`` end to end at tiny size, as
a user runs it: a DeepLesion release replica as ``--data-root``, the row
"RPN Baseline *": the conversion to 3D chunks (written beside the
release), the RPN stage, and its test without the lesions >= 48 mm with
the per-type and per-size breakdown of Table VI. The full-size configs are
shrunk only by appended ``--cfg-options`` (model width, 4 mm voxels, crop
and window, one epoch, no bootstrap). A second run resumes: nothing runs.

Then the other rows into the same folder: the 3D-AG stage from the RPN
stage's last epoch, the tests with every lesion and 3D-AG's "*" test.
"""
import json
import math

import pytest

from mmlesion.apps.reproduce.paper_results import PAPER_RESULTS
from mmlesion.methods.aggregated3d.tables import A3D_SCORE_CUT_KEYS
from tests.helpers.measured_cells import measured_rows
from tests.helpers.tool_modules import load_tool

# Stages run as forks of a process that imported mmdet once (conftest).
pytestmark = pytest.mark.usefixtures('tools_forked')

MODEL = ('rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d'
         '-lt48mm')
TRAINED = 'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d'
#: shrink the full-size DeepLesion 3D configs to seconds on a CPU
TINY = [
    'train_cfg.max_epochs=1', 'train_cfg.val_begin=2',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'train_dataloader.batch_size=1', 'model.backbone.base_channels=4',
    'model.backbone.growth_rate=8',
    'train_dataloader.dataset.pipeline.1.crop_size=(32,32,32)',
    'model.test_cfg.window_size=(32,32,32)', 'model.test_cfg.overlap=8',
    'model.test_cfg.score_thr=0', 'model.test_cfg.show_progress=False',
    'model.test_cfg.rpn.score_thr=0', 'model.test_cfg.rpn.nms_pre=30',
    'model.test_cfg.rpn.max_per_img=5', 'model.test_cfg.max_per_img=20',
    'train_dataloader.dataset.pipeline.0.spacing_zyx=(4.,4.,4.)',
    'test_dataloader.dataset.pipeline.0.spacing_zyx=(4.,4.,4.)',
    'test_evaluator.num_bootstrap=0', 'test_evaluator.froc_plot=None'
]


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """A tiny DeepLesion release replica (its one test lesion: 47.9 mm,
    pelvis)."""
    root = tmp_path_factory.mktemp('a3d_dl') / 'DeepLesion'
    assert load_tool('projects/replicas/tools/generate_release_replica.py').main(
        ['deeplesion', '--out', str(root), '--size', 'tiny', '--quiet']) == 0
    return root


def test_star_row_end_to_end_and_resume(release, tmp_path, capsys):
    tool = load_tool('reproduce.py')
    work = tmp_path / 'table5-6'
    args = ['aggregated3d/table5-6', '--rows', 'rpn_lt48mm', '--work-dir',
            str(work), '--data-root', str(release), '--cfg-options', *TINY]
    assert tool.main(args) == 2  # a replica: refused unless asked
    assert 'is a release replica' in capsys.readouterr().err
    assert not work.exists()
    assert tool.main(args + ['--allow-replica']) == 0
    capsys.readouterr()
    chunks = release.parent / 'DeepLesion3D'
    assert (chunks / 'deeplesion3d_test.json').is_file()
    assert (chunks / 'REPLICA.txt').is_file()  # still a replica

    (row, ) = json.loads((work / 'table.json').read_text())['rows']
    assert row['key'] == 'rpn_lt48mm' and row['label'] == 'RPN Baseline *'
    assert row['model'] == MODEL and row['seeds'] == [0]
    assert row['paper'] == PAPER_RESULTS[MODEL]
    ours = {k: v['mean'] for k, v in row['ours'].items()}
    # every column, measured: the paper's and the RPN score cut's (the
    # test ran without the cut, its evaluator applied it: both from one run)
    assert set(ours) == set(PAPER_RESULTS[MODEL]) | set(A3D_SCORE_CUT_KEYS)
    assert ours['luna16/candidates_per_scan'] <= ours[
        'luna16/candidates_per_scan_uncut']
    assert 0 <= ours['luna16/cpm_uncut'] <= 1
    sens = [ours[f'luna16/sens@{r}'] for r in ('0.5', '1', '2', '4', '8',
                                                 '16')]
    assert all(0 <= v <= 100 for v in sens) and sens == sorted(sens)
    assert ours['luna16/mean@0.5-16'] == pytest.approx(sum(sens) / 6)
    assert 0 <= ours['luna16/cpm'] <= 1
    # the one test lesion (pelvis, 47.9 mm < 48) is in its subsets only
    assert 0 <= ours['luna16/sens@4_type_pelvis'] <= 100
    assert 0 <= ours['luna16/sens@4_size_gt30mm'] <= 100
    assert math.isnan(ours['luna16/sens@4_type_lung'])
    md = (work / 'table.md').read_text()
    # a variant (chunks not clipped to the body) that carries the paper's
    # number, and says so beside it
    assert ('| RPN Baseline * | variant: DeepLesion chunks not clipped '
            'to the body') in md
    assert "as a variant (no row is the paper's reading) | 69.09 / " in md

    test_dir = work / TRAINED / 'seed_0' / 'test_lt48mm'
    (summary, ) = test_dir.glob('*/luna16_metrics.json')
    subsets = json.loads(summary.read_text())['subsets']
    assert json.loads(summary.read_text())['score_cut']['threshold'] == 0.269
    assert subsets['max_diameter_mm'] == 48.0 and subsets['num_lesions'] == 1
    assert subsets['breakdowns']['type_pelvis']['num_lesions'] == 1
    runs = [c for c in (work / 'commands.sh').read_text().splitlines()
            if not c.startswith('#')]
    assert len(runs) == 3
    assert 'tools/dataset_converters/deeplesion_to_3d.py' in runs[0]
    assert f'data_root={chunks}/' in runs[1] and f'{MODEL}.py' in runs[2]
    assert f'{TRAINED}/seed_0/epoch_1.pth' in runs[2]  # @last: resolved

    # again: every stage is done, nothing runs
    assert tool.main(args + ['--allow-replica']) == 0
    out = capsys.readouterr().out
    assert 'tools/train.py' not in out and 'deeplesion_to_3d' not in out
    assert (work / 'commands.sh').read_text().count('\n') == 6

    # the other rows: 3D-AG from the RPN stage's last epoch (its one new
    # training), each training tested with every lesion and 3D-AG without
    # the lesions >= 48 mm
    rows = ['rpn', '3dag', '3dag_lt48mm']
    assert tool.main(['aggregated3d/table5-6', '--rows', *rows] + args[3:] +
                     ['--allow-replica']) == 0
    out = capsys.readouterr().out
    assert out.count('tools/train.py') == 1 and out.count('tools/test.py') == 3
    assert f'load_from={work / TRAINED}/seed_0/epoch_1.pth' in out
    # every column of each row measured (a lesion type or size the tiny
    # test set lacks: NaN)
    measured_rows(work, rows, lambda col: '_type_' in col or '_size_' in col)
