# Copyright (c) mmlesion contributors. All rights reserved.
"""The relation-graph drawing tool (ElixirNet Figure 5)."""
import importlib.util

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.registry import DefaultScope
from mmengine.runner import save_checkpoint

from mmlesion.apps.demo import generate_demo_deeplesion
from mmlesion.testing import get_config, repo_root

CONFIG = 'elixirnet/demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py'


def _load_tool():
    path = repo_root() / 'tools' / 'misc' / 'draw_relation_graph.py'
    spec = importlib.util.spec_from_file_location('draw_relation_graph',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(config=CONFIG):
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(get_config(config).model)
    return model.eval()


def _sample(size=128, scale=0.5):
    gen = torch.Generator().manual_seed(0)
    sample = DetDataSample(
        metainfo=dict(
            img_id=0,
            img_shape=(size, size),
            ori_shape=(int(size / scale), int(size / scale)),
            pad_shape=(size, size),
            scale_factor=(scale, scale),
            instances=[
                dict(bbox=[40., 60., 80., 100.], bbox_label=0,
                     ignore_flag=0),
                dict(bbox=[0., 0., 10., 10.], bbox_label=0, ignore_flag=1)
            ]))
    return dict(
        inputs=torch.rand(3, size, size, generator=gen) * 2 - 1,
        data_samples=sample)


def test_collect_relation_graph_shapes_and_frame():
    tool = _load_tool()
    model = _model()
    graph = tool.collect_relation_graph(model, _sample(), num_nodes=12)
    n = len(graph['boxes'])
    assert 0 < n <= 12 and graph['num_proposals'] >= n
    assert graph['adjacency'].shape == (n, n)
    # rows of the full graph sum to 1; the kept sub-matrix at most 1
    assert (graph['adjacency'].sum(axis=1) <= 1 + 1e-5).all()
    full = model.roi_head.bbox_head.last_adjacency[0]
    torch.testing.assert_close(full.sum(dim=1), torch.ones(len(full)))
    np.testing.assert_allclose(graph['adjacency'], full[:n, :n].numpy())
    # gt scaled into the input frame, ignored instance left out
    np.testing.assert_allclose(graph['gt_boxes'], [[20., 30., 40., 50.]])
    assert graph['image'].shape == (3, 128, 128)
    assert (graph['boxes'][:, 2:] <= 128 + 1e-3).all()


def test_model_without_graph_is_refused():
    tool = _load_tool()
    model = _model('elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py')
    with pytest.raises(ValueError, match='ALBRoIHead'):
        tool.collect_relation_graph(model, _sample())


def test_main_writes_pngs(tmp_path):
    tool = _load_tool()
    data_root = tmp_path / 'demo'
    generate_demo_deeplesion(
        data_root, num_train=2, num_val=2, num_test=2, image_size=128)
    ckpt = str(tmp_path / 'model.pth')
    save_checkpoint(dict(state_dict=_model().state_dict()), ckpt)
    config = str(repo_root() / 'configs' / CONFIG)
    written = tool.main([
        config, ckpt, '--out-dir',
        str(tmp_path / 'out'), '--num-images', '2', '--cfg-options',
        f'test_dataloader.dataset.data_root={data_root}'
    ])
    assert len(written) == 2
    import matplotlib.image as mpimg
    for path in written:
        img = mpimg.imread(path)
        assert img.shape[:2] == (256, 256)  # the demo pipeline's 256 x 256
    with pytest.raises(FileNotFoundError, match='Checkpoint'):
        tool.main([config, str(tmp_path / 'missing.pth')])
    with pytest.raises(ValueError, match='out of range'):
        tool.main([
            config, ckpt, '--indices', '99', '--out-dir',
            str(tmp_path / 'out'), '--cfg-options',
            f'test_dataloader.dataset.data_root={data_root}'
        ])
