# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/analysis_tools/analyze_results.py (mmdet's options) on the tiny
demo config: ranking by FROC / mAP, pictures, refusals."""
import os
import pickle

import mmcv
import mmengine
import numpy as np
import pytest
import torch

from mmlesion.testing import repo_root
from mmlesion.utils.checkpoints.results_pickle import UntrustedResultsError

CONFIG = str(repo_root() / 'configs' / 'demo' /
             'faster-rcnn_r18_fpn_36e_deeplesion-demo.py')


def _val_set(root):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmdet')
    cfg.test_dataloader.dataset.update(data_root=f'{root}/', split='val')
    return DATASETS.build(cfg.test_dataloader.dataset)


def _results(dataset, kinds):
    """A tools/test.py --out style list: per image 'hit' (the lesion
    found), 'miss' (one false positive), 'hit+3fp' or 'none'."""
    out = []
    for i, kind in enumerate(kinds):
        info = dataset.get_data_info(i)
        gt = np.asarray(info['instances'][0]['bbox'], dtype=np.float32)
        far = np.array([1., 1., 9., 9.], dtype=np.float32)
        boxes = dict(hit=[gt], miss=[far], none=[],
                     **{'hit+3fp': [gt, far, far + 20, far + 40]})[kind]
        scores = dict(miss=[.95], **{'hit+3fp': [.5, .8, .8, .8]}).get(
            kind, [.9])
        out.append(dict(
            img_path=info['img_path'], img_id=info['img_id'],
            pred_instances=dict(
                bboxes=torch.tensor(np.reshape(boxes, (-1, 4))),
                scores=torch.tensor(scores[:len(boxes)]),
                labels=torch.zeros(len(boxes), dtype=torch.long))))
    return out


def _run(tool, root, pkl, show_dir, *extra):
    return tool.main([
        CONFIG, str(pkl), str(show_dir), *extra, '--cfg-options',
        f'test_dataloader.dataset.data_root={root}/',
        'test_dataloader.dataset.split=val'
    ])


def test_analyze_results_froc_and_map(analysis_tool, tiny_demo_root,
                                      tmp_path):
    tool = analysis_tool('analyze_results')
    dataset = _val_set(tiny_demo_root)
    assert len(dataset) == 4
    pkl = tmp_path / 'results.pkl'
    mmengine.dump(_results(dataset, ['hit', 'miss', 'hit+3fp', 'none']),
                  str(pkl))
    names = [os.path.basename(dataset.get_data_info(i)['img_path'])
             for i in range(4)]
    series = [os.path.basename(os.path.dirname(
        dataset.get_data_info(i)['img_path'])) for i in range(4)]

    written = _run(tool, tiny_demo_root, pkl, tmp_path / 'froc', '--topk',
                   '1')
    # FROC at 4 FPs/image: sensitivities 1, 0, 1, 0; ties by kept FPs
    # (0, 1, 3, 0): best image 0, worst image 1
    stem = f'{series[0]}_{names[0][:-4]}'
    assert written['good'] == [str(tmp_path / 'froc' / 'good' /
                                   f'{stem}_1.0.png')]
    stem = f'{series[1]}_{names[1][:-4]}'
    assert written['bad'] == [str(tmp_path / 'froc' / 'bad' /
                                  f'{stem}_0.0.png')]
    good, bad = (mmcv.imread(written[k][0], channel_order='rgb').astype(int)
                 for k in ('good', 'bad'))
    assert good.std() > 10 and bad.std() > 10  # windowed slices, not black
    red = (bad[..., 0] > 200) & (bad[..., 1] < 60) & (bad[..., 2] < 60)
    assert red.sum() > 20  # the missed lesion's box
    green = (good[..., 1] > 200) & (good[..., 0] < 60) & (good[..., 2] < 60)
    assert green.sum() > 20  # the prediction on the lesion
    # a stricter operating point (1 FP in 4 images): image 2's false
    # positives (0.8) come before its hit (0.5), which is no longer kept
    written = _run(tool, tiny_demo_root, pkl, tmp_path / 'strict',
                   '--topk', '2', '--fp-rate', '0.25')
    assert [os.path.basename(p) for p in written['bad']] == [
        f'{series[i]}_{names[i][:-4]}_0.0.png' for i in (1, 2)]

    # mAP: image 2's hit ranks below 3 false positives (AP 0.25)
    written = _run(tool, tiny_demo_root, pkl, tmp_path / 'map', '--metric',
                   'mAP', '--topk', '2', '--show-score-thr', '0.85')
    assert [p.rsplit('_', 1)[1] for p in written['good']] == [
        '0.25.png', '1.0.png']
    assert all(p.endswith('_0.0.png') for p in written['bad'])


def test_analyze_results_refusals(analysis_tool, tiny_demo_root, tmp_path):
    tool = analysis_tool('analyze_results')
    dataset = _val_set(tiny_demo_root)
    results = _results(dataset, ['hit', 'miss', 'hit', 'miss'])
    pkl = tmp_path / 'r.pkl'
    mmengine.dump(results[::-1], str(pkl))  # another order
    with pytest.raises(ValueError, match='result 0 .*another test set'):
        _run(tool, tiny_demo_root, pkl, tmp_path / 'o')
    mmengine.dump(results[:3], str(pkl))
    with pytest.raises(ValueError, match='3 results but the test set'):
        _run(tool, tiny_demo_root, pkl, tmp_path / 'o')
    results[0]['pred_instances']['bboxes'] = torch.zeros(1, 6)
    results[0]['pred_instances']['scores'] = torch.ones(1)
    mmengine.dump(results, str(pkl))
    with pytest.raises(ValueError, match='eval_lens_3d'):
        _run(tool, tiny_demo_root, pkl, tmp_path / 'o')

    class Payload:

        def __reduce__(self):
            return (os.system, (f'touch {tmp_path}/owned', ))

    pkl.write_bytes(pickle.dumps([dict(pred_instances={}, x=Payload())]))
    with pytest.raises(UntrustedResultsError, match=r'r\.pkl.*system'):
        _run(tool, tiny_demo_root, pkl, tmp_path / 'o')
    assert not (tmp_path / 'owned').exists()
    assert not (tmp_path / 'o').exists()
