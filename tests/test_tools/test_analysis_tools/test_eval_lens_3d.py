# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/analysis_tools/eval_lens_3d.py: a LENS model on the 3D protocol
of the DeepLesion manual test set, with and without the FPR (Eq. 2)."""
import importlib.util
import json
import os.path as osp
import pickle
from collections import Counter

import numpy as np
import pytest
from mmdet.registry import DATASETS
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.evaluation.functional.box_stacking import stack_slice_boxes
from mmlesion.methods.lens.eval_3d import (findings_in_subvolume,
                                             findings_to_release_boxes,
                                             score_subvolumes)
from mmlesion.structures.finding_3d import Finding3D
from mmlesion.evaluation.functional.froc_3d import load_deeplesion_manual_3d
from mmlesion.testing import get_config, repo_root, shared_data_root
from projects.lens.series_froc_3d import froc_3d_curve, lens_sensitivities
from tests.helpers.lens_models import (FPR_DEMO_CFG, LENS_DEMO_CFG,
                                          save_random_lens_checkpoints)


def _tool():
    spec = importlib.util.spec_from_file_location(
        'eval_lens_3d',
        repo_root() / 'tools' / 'analysis_tools' / 'eval_lens_3d.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_subvolume_restacking_and_release_boxes():
    # one lesion on slices 3-8 (x, y drift a little), one on 7-7
    zs = [3, 4, 5, 6, 7, 7, 8]
    boxes = [np.array([[10., 10, 20, 20]])] * 4 + [
        np.array([[11., 10, 21, 20]]), np.array([[50., 50, 60, 60]]),
        np.array([[11., 11, 21, 21]])]
    scores = [np.array([s]) for s in (.2, .3, .9, .4, .5, .6, .1)]
    series = stack_slice_boxes(zs, boxes, scores)
    assert len(series) == 2
    # the sub-volume 5..7 holds the middle of the first chain, the second
    sub = findings_in_subvolume(series, 5, 7)
    assert sorted(f.slice_range for f in sub) == [(5, 7), (7, 7)]
    direct = stack_slice_boxes(zs[2:6], boxes[2:6], scores[2:6])
    assert sub == direct
    # 8..9: only the tail, with its own score (0.1, not the chain's 0.9)
    (tail, ) = findings_in_subvolume(series, 8, 9)
    assert tail.score == pytest.approx(.1)
    assert findings_in_subvolume(series, 20, 30) == []
    rel = findings_to_release_boxes(sub)
    first = [f for f in sub if f.slice_range == (5, 7)][0]
    x1, y1, _, x2, y2, _ = first.bbox_3d
    row = rel[[i for i, f in enumerate(sub) if f is first][0]]
    np.testing.assert_allclose(row, [x1, y1, 5, x2, y2, 7, first.score])


def test_score_subvolumes_matches_froc_3d_curve(tmp_path):
    from mmlesion.evaluation.functional.froc_3d import ManualSubVolume
    gt_a = np.array([[10., 10, 5, 19, 19, 7], [40, 40, 2, 49, 49, 2]])
    subs = [ManualSubVolume('000001_01_01_001-010', '000001_01_01', 1, 10,
                            gt_a, 'test'),
            ManualSubVolume('000001_01_01_011-020', '000001_01_01', 11, 20,
                            np.zeros((0, 6)), 'test')]

    def f(box, z1, z2, score):
        return Finding3D(bbox_3d=[box[0], box[1], z1 - .5, box[2], box[3],
                                  z2 + .5], slice_range=(z1, z2),
                         score=score, key_slice=z1, boxes_2d=[])

    findings = {
        # exact hit of lesion 1 (IoBB 1), an FP, a hit of lesion 2
        subs[0].name: [f([10, 10, 19, 19], 5, 7, .9),
                       f([100, 100, 120, 120], 3, 4, .8),
                       f([40, 40, 49, 49], 2, 2, .3)],
        subs[1].name: [f([10, 10, 19, 19], 12, 13, .5)],
    }
    res = score_subvolumes(findings, subs, str(tmp_path))
    # order .9 TP, .8 FP (0.5 FP / sub-volume), .5 FP (1), .3 TP (still
    # 1 FP per sub-volume: sens@1 reads the end of that run)
    assert res['sens@0.125'] == res['sens@0.5'] == 0.5
    assert res['sens@1'] == res['sens@8'] == 1.
    assert res['average'] == pytest.approx((3 * .5 + 4 * 1.) / 7)
    ref = lens_sensitivities(froc_3d_curve(
        [findings_to_release_boxes(findings[s.name]) for s in subs],
        [s.boxes for s in subs]))
    assert res == ref
    assert (tmp_path / 'froc3d_curve.png').stat().st_size > 0


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    return save_random_lens_checkpoints(tmp_path_factory.mktemp('ckpt'))


def _truth(root, path):
    """A manual-format truth for the test split of the demo set: per
    series one sub-volume over its stored slices with a box covering the
    whole image (every finding there has IoBB 1) and a small corner box,
    and a second, lesion-free, one-slice sub-volume of the first series."""
    cfg = get_config(LENS_DEMO_CFG)
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(dict(cfg.test_dataloader.dataset,
                                 data_root=str(root) + '/'))
    test = {}
    for series in sorted({osp.basename(osp.normpath(ds.get_data_info(i)[
            'series_dir'])) for i in range(len(ds))}):
        zs = sorted(int(p.stem) for p in (root / 'Images_png' /
                                           series).glob('*.png'))
        if not test:
            test[f'{series}_{zs[-1]:03d}-{zs[-1]:03d}'] = np.zeros((0, 6))
            zs = zs[:-1]
        test[f'{series}_{zs[0]:03d}-{zs[-1]:03d}'] = np.array(
            [[0., 0, zs[0], 400, 400, zs[-1]],
             [0., 0, zs[0], 2, 2, zs[0]]])
    with open(path, 'wb') as f:
        pickle.dump(dict(val={}, test=test), f)
    return str(path)


def _reference(out_dir, ann):
    """The LENS 3D FROC of the written findings, by froc_3d_curve."""
    found = json.loads((out_dir / 'findings_3d.json').read_text())
    subs = load_deeplesion_manual_3d(ann, splits=('test', ))
    dets = [np.array([f['bbox_scored'] + [f['score']]
                      for f in found[s.name]]).reshape(-1, 7) for s in subs]
    return found, lens_sensitivities(froc_3d_curve(
        dets, [s.boxes for s in subs]))


def test_eval_lens_3d_end_to_end(tiny_demo_root, tmp_path, checkpoints,
                                 capsys):
    lens_ckpt, fpr_ckpt = checkpoints
    ann = _truth(tiny_demo_root, tmp_path / 'manual.pkl')
    out = tmp_path / 'eval'
    cfg = str(repo_root() / 'configs' / LENS_DEMO_CFG)
    common = [cfg, str(lens_ckpt), '--ann-3d', ann, '--max-offset', '1',
              '--cfg-options',
              f'test_dataloader.dataset.data_root={tiny_demo_root}/',
              'model.test_cfg.expert_fusion.max_per_img=5']
    tool = _tool()
    assert tool.main(common + ['--out-dir', str(out)]) == 0
    metrics = json.loads((out / 'metrics.json').read_text())
    found, ref = _reference(out, ann)
    for key, value in ref.items():
        assert metrics[key] == value, key
    assert metrics['sub_volumes'] == 3 and metrics['lesions'] == 4
    assert metrics['findings'] == sum(map(len, found.values())) > 0
    # the whole-image boxes are hit, the corner boxes are not
    assert 0 < metrics['sens@8'] < 1 and metrics['fpr'] is False
    for name in ('froc3d_curve.png', 'froc3d_detections.json'):
        assert (out / name).stat().st_size > 0
    # no overwrite without --overwrite
    capsys.readouterr()
    assert tool.main(common + ['--out-dir', str(out)]) == 1
    assert '--overwrite' in capsys.readouterr().err

    # row (e): the same findings, scores (s_LENS + s_FPR) / 2
    assert tool.main(common + [
        '--out-dir', str(out), '--overwrite', '--fpr-config',
        str(repo_root() / 'configs' / FPR_DEMO_CFG), '--fpr-checkpoint',
        str(fpr_ckpt)]) == 0
    metrics_e = json.loads((out / 'metrics.json').read_text())
    found_e, ref_e = _reference(out, ann)
    assert metrics_e['fpr'] is True
    for key, value in ref_e.items():
        assert metrics_e[key] == value, key
    for name, items in found.items():
        assert Counter(round(f['score'], 9) for f in items) == Counter(
            round(f['s_lens'], 9) for f in found_e[name])
        for f in found_e[name]:
            assert f['score'] == (f['s_lens'] + f['s_fpr']) / 2
            assert 0 < f['s_fpr'] < 1
        assert [f['score'] for f in found_e[name]] == sorted(
            (f['score'] for f in found_e[name]), reverse=True)


def test_eval_lens_3d_errors(tiny_demo_root, tmp_path, checkpoints, capsys):
    lens_ckpt, _ = checkpoints
    tool = _tool()
    cfg = str(repo_root() / 'configs' / LENS_DEMO_CFG)
    ann = tmp_path / 'manual.pkl'
    with open(ann, 'wb') as f:
        pickle.dump(dict(val={}, test={
            '123456_01_01_001-010': np.array([[0., 0, 1, 5, 5, 2]])}), f)
    base = [cfg, str(lens_ckpt), '--ann-3d', str(ann), '--cfg-options',
            f'test_dataloader.dataset.data_root={tiny_demo_root}/']
    assert tool.main(base + ['--out-dir', str(tmp_path / 'o')]) == 1
    err = capsys.readouterr().err
    assert "['123456_01_01']" in err and 'would count as missed' in err
    assert tool.main(base + ['--out-dir', str(tmp_path / 'o'),
                             '--experts', '0', '2']) == 1
    assert 'the model has 2 experts' in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_eval_lens_3d_on_the_real_manual_file(tmp_path, checkpoints):
    """The real manual 3D annotation and real DeepLesion test slices: the
    sub-volumes whose series have slices in $MMLESION_SHARED_DATA (one or a few
    key slices each) are read, matched to the DL_info_test.csv series and
    scored (random weights: the plumbing, not a sensitivity)."""
    root = shared_data_root()
    dl = None if root is None else root / 'deeplesion'
    pkl = None if dl is None else (
        dl / 'annotations' / 'DeepLesion_manual_1K_test_release.pkl')
    if pkl is None or not pkl.is_file() or not (
            dl / 'annotations' / 'DL_info_test.csv').is_file():
        pytest.skip('DeepLesion manual 3D file / DL_info_test.csv not '
                    'available ($MMLESION_SHARED_DATA)')
    have = {p.name for p in (dl / 'Images_png').iterdir()}
    subs = [s for s in load_deeplesion_manual_3d(str(pkl), ('test', ))
            if s.volume in have]
    assert len(subs) >= 5
    ann = tmp_path / 'manual_available.pkl'
    with open(ann, 'wb') as f:  # the release's own format, its own boxes
        pickle.dump(dict(val={}, test={s.name: s.boxes for s in subs}), f)
    out = tmp_path / 'eval'
    lens_ckpt, _ = checkpoints
    assert _tool().main([
        str(repo_root() / 'configs' / LENS_DEMO_CFG), str(lens_ckpt),
        '--ann-3d', str(ann), '--out-dir', str(out), '--max-offset', '0',
        '--cfg-options', f'test_dataloader.dataset.data_root={dl}/',
        'test_dataloader.dataset.ann_file=annotations/DL_info_test.csv',
        'test_dataloader.dataset.skip_missing_key_slices=True',
        'model.test_cfg.expert_fusion.max_per_img=5'
    ]) == 0
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['sub_volumes'] == len(subs)
    assert metrics['lesions'] == sum(len(s.boxes) for s in subs)
    assert metrics['findings'] > 0
    _, ref = _reference(out, str(ann))
    assert all(metrics[k] == v for k, v in ref.items())
    # the release file itself with --skip-missing-series: the same subset
    assert _tool().main([
        str(repo_root() / 'configs' / LENS_DEMO_CFG), str(lens_ckpt),
        '--ann-3d', str(pkl), '--out-dir', str(tmp_path / 'whole'),
        '--max-offset', '0', '--skip-missing-series', '--cfg-options',
        f'test_dataloader.dataset.data_root={dl}/',
        'test_dataloader.dataset.ann_file=annotations/DL_info_test.csv',
        'test_dataloader.dataset.skip_missing_key_slices=True',
        'model.test_cfg.expert_fusion.max_per_img=5'
    ]) == 0
    whole = json.loads((tmp_path / 'whole' / 'metrics.json').read_text())
    assert {k: whole[k] for k in ref} == {k: metrics[k] for k in ref}
    assert whole['subset']['of_sub_volumes'] == len(
        load_deeplesion_manual_3d(str(pkl), ('test', )))
    assert len(whole['subset']['skipped_series']) == whole['subset'][
        'of_series'] - metrics['series']


def test_manual_boxes_share_the_dl_info_frame():
    """The convention eval_lens_3d scores in: the manual 3D boxes' x, y are
    DL_info.csv's pixel frame (a detector trained on DL_info boxes predicts
    in it) and their z are the Images_png slice indices (a key slice lies
    in the z range of the manual box of its lesion)."""
    import csv
    root = shared_data_root()
    dl = None if root is None else root / 'deeplesion' / 'annotations'
    if dl is None or not (dl / 'DL_info_test.csv').is_file() or not (
            dl / 'DeepLesion_manual_1K_test_release.pkl').is_file():
        pytest.skip('DeepLesion manual 3D file / DL_info_test.csv not '
                    'available ($MMLESION_SHARED_DATA)')
    subs = load_deeplesion_manual_3d(
        str(dl / 'DeepLesion_manual_1K_test_release.pkl'), ('test', ))
    by_volume = {}
    for s in subs:
        by_volume.setdefault(s.volume, []).append(s)
    with open(dl / 'DL_info_test.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    diffs, on_key, n = [], 0, 0
    for r in rows:
        k = int(r['Key_slice_index'])
        for s in by_volume.get(r['File_name'][:12], []):
            if not s.first_slice <= k <= s.last_slice or not len(s.boxes):
                continue
            box = np.array([float(v) for v in r['Bounding_boxes'].split(',')])
            centre = (box[:2] + box[2:]) / 2
            j = np.argmin((((s.boxes[:, :2] + s.boxes[:, 3:5]) / 2 -
                            centre)**2).sum(1))
            diffs.append(np.abs(s.boxes[j, [0, 1, 3, 4]] - box))
            on_key += s.boxes[j, 2] <= k <= s.boxes[j, 5]
            n += 1
    assert n > 1000
    diffs = np.array(diffs)
    # the nearest manual box: within a few pixels of the CSV box (the CSV
    # boxes are RECIST extents padded by 5 px, the manual ones drawn anew)
    assert np.median(diffs) <= 3, np.median(diffs, 0)  # 1.7-2.0 px
    assert on_key / n > 0.85, on_key / n  # 0.895 (1052 / 1175)


def test_eval_lens_3d_subsets(tiny_demo_root, tmp_path, checkpoints,
                              capsys):
    """--skip-missing-series and --series evaluate a subset and say so in
    metrics.json; a config without a test dataset is a clear error."""
    lens_ckpt, _ = checkpoints
    ann = _truth(tiny_demo_root, tmp_path / 'manual.pkl')
    with open(ann, 'rb') as f:
        truth = pickle.load(f)
    truth['test']['999999_01_01_001-010'] = np.array([[0., 0, 1, 5, 5, 2]])
    with open(ann, 'wb') as f:
        pickle.dump(truth, f)
    cfg = str(repo_root() / 'configs' / LENS_DEMO_CFG)
    common = [cfg, str(lens_ckpt), '--ann-3d', ann, '--max-offset', '0',
              '--cfg-options',
              f'test_dataloader.dataset.data_root={tiny_demo_root}/']
    tool = _tool()
    # refused by default, naming the switch
    assert tool.main(common + ['--out-dir', str(tmp_path / 'a')]) == 1
    assert '--skip-missing-series' in capsys.readouterr().err
    assert tool.main(common + ['--out-dir', str(tmp_path / 'a'),
                               '--skip-missing-series']) == 0
    subset = json.loads((tmp_path / 'a' / 'metrics.json').read_text())
    assert subset['subset']['skipped_series'] == ['999999_01_01']
    assert subset['subset']['of_sub_volumes'] == 4
    assert subset['sub_volumes'] == 3
    # one series only
    first = sorted(truth['test'])[0][:12]
    assert tool.main(common + ['--out-dir', str(tmp_path / 'b'),
                               '--series', first]) == 0
    one = json.loads((tmp_path / 'b' / 'metrics.json').read_text())
    assert one['series'] == 1 and one['subset']['series'] == [first]
    assert tool.main(common + ['--out-dir', str(tmp_path / 'c'),
                               '--series', '123456_01_01']) == 1
    assert 'have no sub-volume' in capsys.readouterr().err
    # the config a demo run saves has test_dataloader = None
    assert tool.main([cfg, str(lens_ckpt), '--ann-3d', ann, '--out-dir',
                      str(tmp_path / 'd'), '--cfg-options',
                      'test_dataloader=None']) == 1
    assert 'has no test_dataloader.dataset' in capsys.readouterr().err
