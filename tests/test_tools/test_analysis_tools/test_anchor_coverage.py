# Copyright (c) mmlesion contributors. All rights reserved.
import importlib.util
import json

import pytest

from mmlesion.testing import repo_root
from projects.study_demo.synthetic.deeplesion import generate_study_deeplesion

CONFIG = str(repo_root() / 'configs' / 'retinanet_lesion' / 'demo' /
             'retinanet_r18-tiny_fpn_1x_deeplesion-demo.py')


def _load_tool():
    path = repo_root() / 'tools' / 'analysis_tools' / 'anchor_coverage.py'
    spec = importlib.util.spec_from_file_location('anchor_coverage', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coverage_on_generated_train_split(tmp_path, capsys):
    data = tmp_path / 'data'
    generate_study_deeplesion(data, seed=0, num_train=10, num_val=2,
                              num_test=2, image_size=128,
                              size_source='deeplesion_quantiles')
    out = tmp_path / 'cov.json'
    tool = _load_tool()
    result = tool.main([CONFIG, '--data-root', f'{data}/', '--out',
                        str(out)])
    anchors = result['anchors']
    assert set(anchors) == {'mmdet_default', 'config', 'optimised'}
    n = anchors['config']['num_boxes']
    assert n >= 10 and all(a['num_boxes'] == n for a in anchors.values())
    # the optimiser maximises coverage on exactly these boxes
    assert anchors['optimised']['mean_iou'] >= anchors['mmdet_default'][
        'mean_iou']
    assert json.loads(out.read_text())['anchors'] == anchors
    assert 'optimised' in capsys.readouterr().out
    with pytest.raises(SystemExit):  # an existing result is kept
        tool.main([CONFIG, '--data-root', f'{data}/', '--out', str(out)])
