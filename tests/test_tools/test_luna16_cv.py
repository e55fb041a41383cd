# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/luna16_cv.py`` end to end on tiny synthetic volumes: two folds of
one training iteration each, pooling, scoring, skipping finished folds and
resuming an interrupted one."""
import importlib.util
import json
import logging

import numpy as np
import pytest

from mmlesion.apps.own_data import ConvertSettings, convert_dataset
from mmlesion.datasets.volumes.dataset import volume_fold
from projects.study_demo.synthetic.volumes import generate_demo_volumes
from mmlesion.evaluation.functional.luna16 import read_candidates_csv
from mmlesion.testing import repo_root

CONFIG = 'configs/aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py'


def _tool():
    path = repo_root() / 'tools' / 'luna16_cv.py'
    spec = importlib.util.spec_from_file_location('luna16_cv', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('cv') / 'demo_volumes'
    generate_demo_volumes(root, seed=3, num_luna=6, num_kits=0, num_lits=0,
                          size_range=(64, 68), num_slices_range=(30, 34))
    luna = root / 'luna16'
    ann = str(luna / 'luna16.json')
    convert_dataset(ConvertSettings(
        str(luna), ann, 'luna16', boxes=str(luna / 'annotations.csv'),
        excluded=str(luna / 'annotations_excluded.csv'),
        seriesuids=str(luna / 'seriesuids.csv'), show_progress=False))
    vols = json.load(open(ann))['volumes']
    folds = sorted({volume_fold(dict(img_id=v['id']), 4, 'hash')
                    for v in vols})
    return luna, folds[:2]


@pytest.fixture
def cv_log():
    """Messages of the tool's logger."""
    from mmlesion.utils import get_tool_logger
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = get_tool_logger('luna16_cv')
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def _argv(luna, work, folds):
    root = str(luna) + '/'
    return [
        CONFIG, '--folds', *map(str, folds), '--work-dir', str(work),
        '--annotations', str(luna / 'annotations.csv'),
        '--excluded', str(luna / 'annotations_excluded.csv'),
        '--num-bootstrap', '20', '--device', 'cpu', '--cfg-options',
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'train_dataloader.dataset.times=1',
        'train_dataloader.dataset.dataset.indices=2',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=5',
        'default_hooks.logger.interval=1',
        'model.test_cfg.rpn.max_per_img=5', 'model.test_cfg.max_per_img=10'
    ]


def test_two_folds_pool_score_skip_and_resume(demo, tmp_path, cv_log):
    luna, folds = demo
    assert len(folds) == 2
    tool = _tool()
    work = tmp_path / 'cv'
    assert tool.main(_argv(luna, work, folds)) == 0
    fold_csvs = [work / f'fold{k}' / 'candidates.csv' for k in folds]
    for k, path in zip(folds, fold_csvs):
        done = json.loads((work / f'fold{k}' / 'fold_done.json').read_text())
        assert done['fold'] == k and done['num_scans'] >= 1
        assert (work / f'fold{k}' / 'epoch_1.pth').is_file()
    # the pooled file is the folds' files one after the other
    pooled = read_candidates_csv(str(work / 'candidates.csv'))
    parts = [read_candidates_csv(str(p)) for p in fold_csvs]
    assert list(pooled.seriesuids) == [u for p in parts for u in p.seriesuids]
    np.testing.assert_array_equal(pooled.probability,
                                  np.concatenate([p.probability
                                                  for p in parts]))
    metrics = json.loads((work / 'eval' / 'metrics.json').read_text())
    assert 0 <= metrics['cpm'] <= 1 and (work / 'eval' / 'froc.png').is_file()
    assert metrics['bootstrap'] is not None
    assert sum(f'fold {k} (' in m and 'trained in' in m
               for m in cv_log for k in folds) == 2
    # again: both folds are skipped, the fold files are not rewritten
    stamps = [p.stat().st_mtime_ns for p in fold_csvs]
    cv_log.clear()
    assert tool.main(_argv(luna, work, folds)) == 0
    assert [p.stat().st_mtime_ns for p in fold_csvs] == stamps
    assert sum('done before, skipped' in m for m in cv_log) == 2
    # an interrupted fold (no marker, checkpoints there): resumed, retested
    (work / f'fold{folds[1]}' / 'fold_done.json').unlink()
    fold_csvs[1].unlink()
    cv_log.clear()
    assert tool.main(_argv(luna, work, folds)) == 0
    assert any('resuming from' in m and 'epoch_1.pth' in m
               for m in cv_log)
    assert fold_csvs[1].is_file()
    assert read_candidates_csv(str(work / 'candidates.csv')).probability.size\
        == pooled.probability.size
    with pytest.raises(ValueError, match='4 folds'):
        tool.main(_argv(luna, work, [7]))


def test_second_stage_starts_from_its_folds_first_stage(tmp_path):
    """Sec. III-E: a Table III row starts from the RPN stage of the same
    fold (--stage-checkpoint with {fold}); a missing one is named before
    any training."""
    from mmlesion.protocols.luna16_cv import fold_config, train_fold
    pattern = str(tmp_path / 'rpn_cv' / 'fold{fold}' / 'epoch_50.pth')
    cfg = fold_config(CONFIG, 1, str(tmp_path / 'w'),
                      stage_checkpoint=pattern)
    assert cfg.load_from == pattern.format(fold=1)
    with pytest.raises(ValueError, match='has no {fold}'):
        fold_config(CONFIG, 1, str(tmp_path / 'w'),
                    stage_checkpoint=str(tmp_path / 'e.pth'))
    with pytest.raises(FileNotFoundError, match='first-stage checkpoint'):
        train_fold(cfg, logging.getLogger('test'))


@pytest.mark.slurm
def test_folds_as_slurm_jobs(demo, tmp_path, slurm_cluster, monkeypatch,
                             capsys):
    """--executor slurm: one job per fold on a real one-node cluster, the
    pooling here once they ended; the same command again submits nothing
    (every fold is done) and --status lists the jobs."""
    pytest.importorskip('submitit')
    for key, value in slurm_cluster.env().items():
        monkeypatch.setenv(key, value)
    from tests.helpers.slurm_cluster import PARTITION
    luna, folds = demo
    tool = _tool()
    work = tmp_path / 'cv'
    slurm = ['--executor', 'slurm', '--partition', PARTITION,
             '--gpus-per-job', '0', '--cpus-per-task', '1', '--mem-gb', '0',
             '--max-minutes', '20']
    assert tool.main(_argv(luna, work, folds) + slurm) == 0
    jobs = json.loads((work / 'slurm_jobs.json').read_text())
    assert sorted(j['stage'] for j in jobs) == [f'fold{k}' for k in folds]
    for k in folds:
        assert (work / f'fold{k}' / 'fold_done.json').is_file()
    metrics = json.loads((work / 'eval' / 'metrics.json').read_text())
    assert 0 <= metrics['cpm'] <= 1
    assert tool.main(_argv(luna, work, folds) + slurm) == 0
    assert len(json.loads((work / 'slurm_jobs.json').read_text())) == 2
    assert tool.main(_argv(luna, work, folds) + ['--status']) == 0
    out = capsys.readouterr().out
    assert out.count('COMPLETED') == 2
