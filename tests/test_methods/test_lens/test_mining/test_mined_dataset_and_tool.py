# Copyright (c) mmlesion contributors. All rights reserved.
"""The mined annotation file, DeepLesionMinedDataset, the mining tool end to
end on a tiny demo set, and the demo evaluation of mining."""
import importlib.util
import json

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.methods.lens.mining import proposals as mining_proposals
from mmlesion.methods.lens.mining.demo_eval import (evaluate_mining,
                                                    load_demo_lesions)
from mmlesion.datasets.deeplesion.mined_file import read_mined_file, write_mined_file
from mmlesion.testing import get_config, repo_root

CFG = 'lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py'


def _ds_cfg(root, mined=None):
    return dict(type='DeepLesionMinedDataset', data_root=str(root),
                ann_file='DL_info.csv', data_prefix=dict(img='Images_png/'),
                split='train', mined_ann_file=mined, pipeline=[])


def test_mined_file_roundtrip_and_errors(tmp_path):
    path = str(tmp_path / 'm.json')
    write_mined_file(path, [dict(series_dir='s', slice=3,
                                 mined=[[1, 2, 5, 6]],
                                 mined_sources=['propagation'],
                                 uncertain=[])], dict(iou_thr=0.5))
    data = read_mined_file(path)
    assert data['slices'][0]['mined'] == [[1., 2., 5., 6.]]
    with pytest.raises(FileExistsError, match='overwrite'):
        write_mined_file(path, [], {})
    write_mined_file(path, [dict(series_dir='s', slice=3,
                                 mined=[[5, 2, 1, 6]])], {}, overwrite=True)
    with pytest.raises(ValueError, match=r'slices\[0\].mined\[0\]'):
        read_mined_file(path)
    (tmp_path / 'x.json').write_text('{"slices": []}')
    with pytest.raises(ValueError, match='not a mmlesion.lens_mined'):
        read_mined_file(str(tmp_path / 'x.json'))


def test_mined_dataset_adds_lesions_uncertain_and_negatives(
        tiny_demo_root, tmp_path):
    with DefaultScope.overwrite_default_scope('mmdet'):
        plain = DATASETS.build(_ds_cfg(tiny_demo_root))
    info = plain.get_data_info(0)
    series = info['series_dir'].rstrip('/').split('/')[-1]
    key = int(info['key_slice'])
    path = str(tmp_path / 'mined.json')
    write_mined_file(path, [
        dict(series_dir=series, slice=key, mined=[],
             uncertain=[[5, 5, 15, 15]]),
        dict(series_dir=series, slice=key + 1, mined=[[20, 20, 40, 40]],
             mined_sources=['propagation'], uncertain=[[5, 5, 15, 15]]),
        dict(series_dir=series, slice=key - 1, mined=[], uncertain=[]),
        dict(series_dir='not_in_this_split', slice=1, mined=[[1, 1, 2, 2]]),
    ], {})
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(_ds_cfg(tiny_demo_root, path))
    assert len(ds) == len(plain) + 2
    first = ds.get_data_info(0)
    assert first['instances'][-1]['ignore_flag'] == 1
    new = [ds.get_data_info(i) for i in range(len(plain), len(ds))]
    pos = [n for n in new if n['key_slice'] == key + 1][0]
    assert [i['ignore_flag'] for i in pos['instances']] == [0, 1]
    assert pos['img_path'].endswith(f'{key + 1:03d}.png')
    neg = [n for n in new if n['key_slice'] == key - 1][0]
    assert neg['instances'] == []
    assert len({n['img_id'] for n in new} | {first['img_id']}) == 3
    # the new slices belong to the lesions of their nearest key slice (one
    # positive per group and epoch in LENSDatasetBatchSampler)
    assert pos['positive_group'] == neg['positive_group'] == (series, key)
    assert first['positive_group'] == (series, key)
    groups = {ds.get_data_info(i)['positive_group'] for i in range(len(ds))}
    assert len(groups) == len(plain)


def test_demo_evaluation_counts_hits(tiny_demo_root):
    truth = load_demo_lesions(str(tiny_demo_root / 'demo_meta.json'))
    series, info = next(iter(truth.items()))
    les = info['lesions'][0]
    cx, cy = les['center_px']
    hit = [cx - 2, cy - 2, cx + 2, cy + 2]
    miss = [0, 0, 3, 3]
    res = evaluate_mining([
        dict(series_dir=series, slice=info['key_index'], mined=[hit, miss],
             uncertain=[])
    ], str(tiny_demo_root / 'demo_meta.json'))
    assert res['mined']['boxes'] == 2
    assert res['mined']['precision'] == 0.5


def test_mining_tool_end_to_end(tiny_demo_root, tmp_path, monkeypatch,
                                capsys):
    collected = []
    collect = mining_proposals.collect_series_proposals
    monkeypatch.setattr(mining_proposals, 'collect_series_proposals',
                        lambda *a, **k: collected.append(1) or collect(
                            *a, **k))
    cfg = get_config(CFG)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = str(tmp_path / 'lens.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    spec = importlib.util.spec_from_file_location(
        'lens_mine', repo_root() / 'tools' / 'lens_mine_annotations.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'mined.json')
    root = str(tiny_demo_root) + '/'
    cache = str(tmp_path / 'proposals.pt')
    argv = [
        str(repo_root() / 'configs' / CFG), ckpt, '--out', out,
        '--proposals-cache', cache, '--max-offset', '1',
        '--proposal-score-thr', '0',
        '--score-thr', '0.0', '--dist-thr', '0.15', '--demo-meta',
        str(tiny_demo_root / 'demo_meta.json'), '--cfg-options',
        f'train_dataloader.dataset.datasets.0.data_root={root}'
    ]
    assert tool.main(argv) == 0
    data = read_mined_file(out)
    meta = data['metainfo']
    assert meta['single_type_experts'] == [1]
    assert meta['counts']['tracklets'] > 0
    # every processed slice is listed; 3 per key slice at most
    assert 0 < len(data['slices']) <= 3 * 10
    # with sigma = 0 an untrained expert 1 yields uncertain lesions
    assert meta['counts']['cross_dataset'] > 0
    assert 'precision' in meta['demo_evaluation']['uncertain']
    assert tool.main(argv) == 1  # no --overwrite
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(_ds_cfg(tiny_demo_root, out))
    assert any(i.get('ignore_flag') for k in range(len(ds))
               for i in ds.get_data_info(k)['instances'])
    json.dumps(meta)
    # step 5 data: TP / FP 3D proposals with the mined file
    spec = importlib.util.spec_from_file_location(
        'lens_fpr', repo_root() / 'tools' / 'lens_fpr_proposals.py')
    fpr_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fpr_tool)
    fpr_out = str(tmp_path / 'fpr.json')
    assert fpr_tool.main([
        str(repo_root() / 'configs' / CFG), ckpt, '--out', fpr_out,
        '--mined', out, '--max-offset', '1', '--cfg-options',
        f'train_dataloader.dataset.datasets.0.data_root={root}'
    ]) == 0
    fpr = json.loads(open(fpr_out).read())
    assert fpr['metainfo']['format'] == 'mmlesion.lens_fpr_proposals/1'
    counts = fpr['metainfo']['counts']
    assert counts['tp'] + counts['fp'] == len(fpr['proposals'])
    assert {p['label'] for p in fpr['proposals']} <= {0, 1}
    assert tool.main(argv[:2] + ['--out', str(tmp_path / 'x.json'),
                                 '--dataset-index', '5']) == 1
    # the default delta is calibrated on the mined training split; the
    # tiny set has too few patients with several studies: a clear error
    # naming the file and asking for --dist-thr, nothing written
    calib = argv[:2] + ['--out', str(tmp_path / 'c.json'),
                        '--max-offset', '1', '--cfg-options',
                        f'train_dataloader.dataset.datasets.0.data_root={root}']
    assert tool.main(calib) == 1
    assert not (tmp_path / 'c.json').exists()
    # without intra-patient matching delta is not used: nothing to
    # calibrate, the same data mines, and the file records no delta
    cross = str(tmp_path / 'cross.json')
    assert tool.main(calib[:2] + ['--out', cross] + calib[4:] + [
        '--strategies', 'propagation', 'cross_dataset']) == 0
    # the same data mined again from the first run's proposals (the same
    # config, options, checkpoint, experts and slices: not predicted
    # again), with the same result
    assert len(collected) == 2
    cached = str(tmp_path / 'cached.json')
    assert tool.main(calib[:2] + ['--out', cached, '--proposals-cache',
                                  cache] + calib[4:] + [
        '--strategies', 'propagation', 'cross_dataset']) == 0
    assert len(collected) == 2
    assert read_mined_file(cached)['slices'] == read_mined_file(cross)[
        'slices']
    bad = tmp_path / 'bad.pt'
    bad.write_text('not proposals')
    capsys.readouterr()
    assert tool.main(calib[:2] + ['--out', str(tmp_path / 'b.json'),
                                  '--proposals-cache', str(bad)] + calib[4:]
                     + ['--strategies', 'propagation']) == 1
    assert f'{bad} exists and is not a proposals cache' in \
        capsys.readouterr().err
    assert bad.read_text() == 'not proposals'
    assert not (tmp_path / 'b.json').exists()
    meta = read_mined_file(cross)['metainfo']
    assert meta['dist_thr'] is None and meta['dist_thr_calibration'] is None
    assert meta['strategies'] == ['propagation', 'cross_dataset']
    assert meta['counts']['intra_patient'] == 0


def test_mining_tool_defaults_are_the_papers():
    """Real-data tools default to the paper: sigma 0.5, theta 0.5, no
    minimum tracklet score (a value tuned on the synthetic demo data is an
    option whose help says where it comes from); delta, whose paper value
    belongs to another embedding, is calibrated on the user's training
    split by default, or given."""
    spec = importlib.util.spec_from_file_location(
        'lens_mine', repo_root() / 'tools' / 'lens_mine_annotations.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(['cfg.py', 'ckpt.pth', '--out', 'x.json'])
    assert (args.dist_thr, args.score_thr, args.iou_thr) == (
        'calibrate', 0.5, 0.5)
    assert args.match_score_thr == 0. and args.min_match_precision == 0.9
    assert args.matcher == 'appearance'
    given = tool.parse_args(['c.py', 'k.pth', '--out', 'x', '--dist-thr',
                             '0.15'])
    assert given.dist_thr == 0.15
    for bad in ('0', '-1', 'auto'):
        with pytest.raises(SystemExit):
            tool.parse_args(['c.py', 'k.pth', '--out', 'x', '--dist-thr',
                             bad])
