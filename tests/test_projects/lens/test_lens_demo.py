# Copyright (c) mmlesion contributors. All rights reserved.
"""The pieces of projects.lens.lens_demo: complete 3D truth of the demo
generator, 3D scoring, work-dir protection, row configs."""
import json

import numpy as np
import pytest

from projects.lens.lens_demo import (demo_ground_truth_3d, demo_row_config,
                                     evaluate_3d, prepare_work_dir)


def _meta(path):
    les = [
        # axis-aligned: a = 6 mm, b = 3 mm in-plane, c = 4 mm axial
        dict(annotated=True, center_px=[50., 60.], center_mm=[0., 0., 10.],
             semi_axes_mm=[6., 3., 4.], angle=0.),
        # rotated by 90 degrees: x and y extents swap; unannotated
        dict(annotated=False, center_px=[100., 30.],
             center_mm=[9., 9., 14.], semi_axes_mm=[6., 3., 1.],
             angle=np.pi / 2),
    ]
    meta = dict(key_slices=[
        dict(file_name='000001_01_01_005.png', z_mm=10., slice_interval=2.,
             spacing=1.5, lesions=les)
    ])
    path.write_text(json.dumps(meta))
    return str(path)


def test_demo_ground_truth_3d(tmp_path):
    meta = _meta(tmp_path / 'demo_meta.json')
    gts = demo_ground_truth_3d(meta, {'000001_01_01': list(range(1, 10))})
    boxes = gts['000001_01_01']
    assert boxes.shape == (2, 6)
    # lesion 1: z from 6 to 14 mm -> slices 4, 5, 6 (|dz| < 2 slices)
    np.testing.assert_allclose(boxes[0], [46, 58, 3.5, 54, 62, 6.5])
    # lesion 2 (unannotated, rotated): centre at slice 7, c = 0.5 slice
    np.testing.assert_allclose(boxes[1], [98, 26, 6.5, 102, 34, 7.5],
                               atol=1e-9)
    # clipped to the evaluated slices; outside them dropped
    gts = demo_ground_truth_3d(meta, {'000001_01_01': [5, 6]})
    np.testing.assert_allclose(gts['000001_01_01'][:, [2, 5]], [[4.5, 6.5]])
    with pytest.raises(KeyError, match='000002_01_01'):
        demo_ground_truth_3d(meta, {'000002_01_01': [1]})


def test_evaluate_3d_perfect_and_missed():
    gts = {'a': np.array([[10., 10., 2., 20., 20., 5.]]),
           'b': np.array([[30., 30., 0., 40., 40., 3.]])}
    perfect = {k: np.hstack([v, [[0.9]]]) for k, v in gts.items()}
    res = evaluate_3d(perfect, gts)
    assert res['average'] == 1.0 and res['lesions'] == 2
    # one hit, then an FP in each series ranked above the second lesion
    dets = {
        'a': np.array([[10, 10, 2, 20, 20, 5, .9],
                       [50, 50, 0, 60, 60, 2, .8]]),
        'b': np.array([[70, 70, 0, 80, 80, 1, .85],
                       [30.2, 30, 0, 40, 40, 3, .1],
                       [0, 0, 0, 0.5, 0.5, 0.5, .05]])  # sub-voxel box
    }
    res = evaluate_3d(dets, gts)
    # (0 FP, 0.5), (1 FP per sub-volume after 2 FPs, 1.0)
    assert res['sens@0.125'] == 0.5 and res['sens@0.5'] == 0.5
    assert res['sens@1'] == 1.0 and res['sens@8'] == 1.0
    assert res['findings'] == 5 and 0 < res['average'] < 1


def test_prepare_work_dir(tmp_path):
    work = tmp_path / 'w'
    prepare_work_dir(str(work))
    (work / 'x.txt').write_text('1')
    with pytest.raises(FileExistsError, match='--overwrite'):
        prepare_work_dir(str(work))
    prepare_work_dir(str(work), overwrite=True)
    assert not (work / 'x.txt').exists()
    other = tmp_path / 'user'
    other.mkdir()
    (other / 'keep.txt').write_text('1')
    with pytest.raises(FileExistsError, match='not written by'):
        prepare_work_dir(str(other), overwrite=True)
    assert (other / 'keep.txt').exists()


@pytest.mark.parametrize('name', ['baseline', 'row_a', 'row_bc', 'row_d',
                                  'fpr'])
def test_demo_row_config(tmp_path, name):
    roots = {'data/demo_deeplesion/': '/p/', 'data/demo_lung/':
             '/f/'}
    cfg = demo_row_config(name, str(tmp_path), roots, epochs=6)
    assert cfg.train_cfg.max_epochs == 6
    assert cfg.val_dataloader is None and cfg.test_cfg is None
    text = cfg.pretty_text
    assert 'data/demo_deeplesion' not in text
    if name != 'fpr':
        assert cfg.param_scheduler[0].milestones == [4, 5]
        roots_used = {d.data_root
                      for d in cfg.train_dataloader.dataset.datasets}
        assert roots_used == ({'/p/'} if name in ('baseline', 'row_a')
                              else {'/p/', '/f/'})


def test_fpr_rescore_is_eq2(tiny_demo_root, tmp_path):
    """Row (e): the FPR network rescores 3D findings with (s_LENS + s_FPR)
    / 2, flat boxes included."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    from mmlesion.structures.finding_3d import Finding3D
    from projects.lens.lens_demo import _fpr_rescore
    root = str(tiny_demo_root) + '/'
    cfg = demo_row_config('fpr', str(tmp_path), {}, epochs=1)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    series = sorted(p.name for p in (tiny_demo_root / 'Images_png').iterdir())
    findings = {
        series[0]: [Finding3D([100, 100, 5, 120, 130, 8], 0.8, (6, 7), 6, []),
                    Finding3D([256, 10, 5, 256, 20, 6], 0.2, (6, 6), 6, [])],
        series[1]: [],
    }
    dets = _fpr_rescore(model, findings, root, cfg,
                        str(tmp_path / 'eval.json'))
    assert dets[series[0]].shape == (2, 7) and dets[series[1]].shape == (0, 7)
    np.testing.assert_allclose(dets[series[0]][:, :6],
                               [f.bbox_3d for f in findings[series[0]]])
    s = dets[series[0]][:, 6]
    assert np.all((s > np.array([0.4, 0.1])) & (s < np.array([0.9, 0.6])))
    with torch.no_grad():
        assert np.isfinite(s).all()


def test_annotation_reference_hits_the_truth(tiny_demo_root):
    """The CSV boxes of the key slices hit the complete 3D truth: the
    truth and the detections share coordinates (x, y, slice index)."""
    import os.path as osp

    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope

    from projects.lens.lens_demo import annotation_reference
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(dict(
            type='DeepLesionDataset', data_root=str(tiny_demo_root) + '/',
            ann_file='DL_info.csv', data_prefix=dict(img='Images_png/'),
            split='train', test_mode=True, pipeline=[]))
    slices = {}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        k = int(info['key_slice'])
        slices.setdefault(osp.basename(osp.normpath(info['series_dir'])),
                          set()).update(range(k - 2, k + 3))
    gts = demo_ground_truth_3d(str(tiny_demo_root / 'demo_meta.json'),
                               {n: sorted(v) for n, v in slices.items()})
    res = annotation_reference(ds, gts)
    assert res['lesions'] >= res['findings'] > 0
    # half the lesions at least are hit (equal scores: the FPs, padded
    # boxes of small lesions, interleave with the hits, so look at the end
    # of the curve); the padded boxes, taken with their last pixel (mmdet's
    # x2, y2 one past it), leave small lesions under IoBB 0.3 (11 of 22 hit;
    # 15 when DL_info's boxes were read one pixel short)
    assert res['sens@8'] >= 0.5, res


def test_rows_that_did_not_run_are_marked(tmp_path):
    """Row (e) without a trained FPR network is "not run", never a result;
    --quick says its numbers mean nothing; the picture leaves it out."""
    from projects.lens.lens_demo import ROWS
    from projects.lens.lens_demo_report import results_markdown
    from mmlesion.evaluation.functional.froc_3d import LENS_FP_RATES
    row = {f'sens@{float(r):g}': 0.5 for r in LENS_FP_RATES}
    row.update(average=0.5, findings=3)
    results = dict(
        rows={ROWS[4]: dict(row), ROWS[5]: None},
        not_run={ROWS[5]: 'the FPR network was not trained'},
        settings=dict(max_train_iters=1), eval_series=2,
        mining=dict(counts=dict(tracklets=0, propagation=0, intra_patient=0,
                                mined_lesions_intra_patient=0),
                    demo_evaluation=dict(series=1, unannotated_lesions=0,
                                         mined=dict(boxes=0))))
    md = results_markdown(results)
    line = next(x for x in md.splitlines() if x.startswith(f'| {ROWS[5]}'))
    assert 'not run: the FPR network was not trained' in line
    assert '0.500' not in line
    assert 'mean nothing' in md
    results['settings'] = dict(max_train_iters=None)
    assert 'mean nothing' not in results_markdown(results)
