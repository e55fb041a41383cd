# Copyright (c) mmlesion contributors. All rights reserved.
import importlib.util
import json

import pytest

from mmlesion.testing import get_config, repo_root, shared_data_root


def _load_tool():
    path = (
        repo_root() / 'projects' / 'retinanet_lesion' / 'tools' / 'eval_retinanet_lesion_demo.py')
    spec = importlib.util.spec_from_file_location('eval_rl_demo', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_and_shared_schedule(tmp_path):
    tool = _load_tool()
    labels = [row[1] for row in tool.TABLE1_DEMO_ROWS]
    assert labels[:4] == list(tool.PAPER_TABLE1)
    keys = [row[0] for row in tool.TABLE1_DEMO_ROWS]
    cfgs = {
        key: tool.prepare_cfg(key, str(tmp_path / key), seed=3, max_epochs=2)
        for key in keys
    }
    # the attention-gate placement of each dense row
    gates = [cfgs[k].model.neck.get('attention_gates') for k in keys[2:]]
    assert gates == [(), 'laterals', 'laterals', 'skips']
    # score calibration is its own row: off before it, on from it
    calib = [cfgs[k].model.get('score_calibration') for k in keys[2:]]
    assert calib[:2] == [None, None] and all(calib[2:])
    # every row but the first optimises its anchors in a pre-step
    assert [r.prepare is not None for r in tool.study_rows()] == [
        False, True, True, True, True, True]
    # the calibration row tests the gated row's weights (a paired step)
    assert [r.tests_from for r in tool.study_rows()] == [
        None, None, None, None, 'dense-ag', None]
    for cfg in cfgs.values():
        assert cfg.train_cfg.max_epochs == 2 and cfg.randomness.seed == 3
        assert cfg.param_scheduler == cfgs[keys[0]].param_scheduler
        assert cfg.default_hooks.checkpoint.interval == 2
    with pytest.raises(ValueError, match='--rows'):
        tool.main(['--rows', 'nope'])


def test_tested_row_needs_the_same_anchors(tmp_path):
    """The calibration row predicts with the weights of ``dense-ag``; its
    anchors (not in the checkpoint) must be the ones that row trained
    with."""
    from projects.study_demo.study import RowContext, StudySettings
    tool = _load_tool()
    row = tool.study_row('dense-ag-calib')
    ctx = RowContext(row, 1, str(tmp_path / 'dense-ag-calib' / 'seed_1'),
                     StudySettings(str(tmp_path)))
    anchors = dict(ratios=[0.5, 1.0], scales=[0.4, 0.5])
    with pytest.raises(FileNotFoundError, match='dense-ag'):
        tool.check_same_anchors(anchors, ctx, 'dense-ag')
    source = tmp_path / 'dense-ag' / 'seed_1' / tool.ANCHOR_FILE
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps(dict(anchors=dict(optimised=anchors))))
    tool.check_same_anchors(dict(anchors), ctx, 'dense-ag')
    with pytest.raises(ValueError, match='differ'):
        tool.check_same_anchors(dict(anchors, scales=[0.4, 0.6]), ctx,
                                'dense-ag')


def test_anchor_step_searches_the_validation_split(monkeypatch):
    """Sec. 2.1: "to optimize ratios and scales of anchors on the
    validation set": the study's "+ anchor optimization" pre-step reads the
    val dataloader's boxes (never the training or the test split), and the
    row's fingerprint says so."""
    import mmlesion.anchors.anchor_coverage as coverage
    tool = _load_tool()
    seen = []

    class Read(Exception):
        pass

    def boxes(cfg, split='train'):
        seen.append(split)
        raise Read

    monkeypatch.setattr(coverage, 'config_boxes', boxes)
    with pytest.raises(Read):
        tool.optimised_anchors_step(get_config(
            'retinanet_lesion/demo/retinanet-optanchors_r18-tiny_fpn_1x_'
            'deeplesion-demo.py'), None)
    assert seen == ['val']
    assert tool.study_row('optanchors').fingerprint == dict(
        anchors='DE on val split, row seed')


def test_table_format():
    tool = _load_tool()
    metrics = {f'froc/sens@{r}': 0.5 for r in tool.FP_RATES}
    metrics['froc/mean@0.5-4'] = 0.5
    metrics['froc/mAP@0.5'] = 0.125
    table = tool.format_table({'original RetinaNet': metrics})
    assert '50.00' in table and '90.77' in table  # ours and the paper's
    assert '12.50' in table and 'mAP@0.5' in table


def test_train_and_test_one_row_on_real_key_slices(tmp_path, capsys):
    data = shared_data_root()
    if data is None or not (data / 'deeplesion' / 'Images_png').is_dir():
        pytest.skip('$MMLESION_SHARED_DATA/deeplesion (real DeepLesion key slices) '
                    'is absent')
    tool = _load_tool()
    dataset_opts = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        prefix = f'{loader}.dataset.'
        dataset_opts.update({
            prefix + 'ann_file': 'annotations/DL_info_val.csv',
            prefix + 'split': 'val',
            prefix + 'skip_missing_key_slices': True,
            prefix + 'indices': 4,
        })
    args = [
        '--rows', 'default-anchors', '--max-epochs', '1', '--work-dir',
        str(tmp_path), '--data-root',
        str(data / 'deeplesion'), '--cfg-options'
    ] + [f'{k}={v}' for k, v in dataset_opts.items()]
    results = tool.main(args)
    metrics = results['original RetinaNet']
    assert 0. <= metrics['froc/sens@4'] <= 1.
    summary = json.loads((tmp_path / 'summary.json').read_text())
    saved = summary['rows']['original RetinaNet']
    for rate in tool.FP_RATES:
        assert saved[f'froc/sens@{rate}'] == metrics[f'froc/sens@{rate}']
    assert 'original RetinaNet' in capsys.readouterr().out


def test_quick_study_pretrained_start(tmp_path):
    """``--quick`` (generated tiny data, 1 seed, 1 epoch) with
    ``--pretrained-start``: the Faster R-CNN row runs first and each Table 1
    row starts from its backbone and FPN (same seed), on P2-P6 with the
    Faster R-CNN's input window; the start is recorded; the optimised
    anchors row writes its anchors and coverage and uses them. (One row:
    the start changes only the rows' initial weights; the other rows'
    starts are planned alike, ``study_rows`` above.)"""
    from projects.retinanet_lesion.pretrained_start import START_FILE
    tool = _load_tool()
    rows = tool.study_rows(pretrained_start=True)
    assert rows[0].key == tool.PRETRAIN_ROW[0] and len(rows) == 7
    assert all('pretrained_start' in r.fingerprint for r in rows[1:])
    work = tmp_path / 'work'
    results = tool.main(['--quick', '--pretrained-start', '--rows',
                         'optanchors', '--work-dir', str(work)])
    assert list(results) == [tool.PRETRAIN_ROW[1], '+ anchor optimization']
    for metrics in results.values():
        assert 0. <= metrics['froc/sens@4'] <= 1.
        assert metrics['time/ms_per_image'] > 0
    record = json.loads(
        (work / 'optanchors' / 'seed_0' / START_FILE).read_text())
    assert record['checkpoint'] == str(work / 'fpn' / 'seed_0' /
                                       'epoch_1.pth')
    anchors = json.loads(
        (work / 'optanchors' / 'seed_0' / tool.ANCHOR_FILE).read_text())
    cov = anchors['anchors']
    assert cov['optimised']['strides'] == [4, 8, 16, 32, 64]
    assert cov['optimised']['mean_iou'] >= cov['mmdet_default']['mean_iou']
    assert (work / 'data_quick' / 'DL_info.csv').is_file()
    summary = (work / 'summary.md').read_text()
    assert 'ms / image' in summary and '(x1.00)' in summary
    assert '+ score calibration | 0/1 | not run' in summary
    assert (work / 'summary_froc.png').is_file()
