# Copyright (c) mmlesion contributors. All rights reserved.
"""The ElixirNet benchmark tool (no timing is asserted)."""
import importlib.util
import json

from mmlesion.testing import repo_root

DEMO_FPN = 'elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py'
DEMO_ELIXIRNET = 'elixirnet/demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py'


def _load_tool():
    path = (
        repo_root() / 'projects' / 'benchmarks' / 'benchmark_elixirnet.py')
    spec = importlib.util.spec_from_file_location('bench_elixirnet', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parameter_ratio_against_mmdet_config(capsys, tmp_path):
    """The real comparison: mmdet's own R50-FPN config vs ElixirNet-FPN."""
    tool = _load_tool()
    out_json = tmp_path / 'bench.json'
    result = tool.main(['--params-only', '--json', str(out_json)])
    base = result['models']['baseline']['params']
    elix = result['models']['elixirnet']['params']
    # mmdet's Faster R-CNN R50-FPN with one class: 41.3 M (docs/STACK.md)
    assert 41.0e6 < base < 41.6e6
    assert 0.6 <= result['ratios']['params'] == elix / base <= 0.7
    out = capsys.readouterr().out
    assert 'parameters (M)' in out and 'ElixirNet-FPN' in out
    assert json.loads(out_json.read_text())['ratios']['params'] == \
        result['ratios']['params']


def test_timed_run_on_demo_sized_models(capsys):
    tool = _load_tool()
    result = tool.run_benchmark(
        size=128,
        warmup=1,
        repeats=2,
        baseline_config=DEMO_FPN,
        elixirnet_config=DEMO_ELIXIRNET)
    for name in ('baseline', 'elixirnet'):
        model = result['models'][name]
        assert len(model['infer_times_s']) == 2
        assert len(model['train_times_s']) == 2
        assert model['infer_s'] > 0 and model['train_s'] > 0
        assert model['proposals'] > 0
    assert set(result['ratios']) == {'params', 'infer', 'train'}
    table = tool.format_result(result)
    assert 'inference (ms / image)' in table
    assert 'training iter (ms / image)' in table


def test_strip_init_cfg_removes_pretrained_only():
    tool = _load_tool()
    cfg = dict(
        backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='x')),
        head=dict(init_cfg=dict(type='Normal', std=0.01)),
        layers=[dict(init_cfg=dict(type='Pretrained', checkpoint='y'))])
    tool._strip_init_cfg(cfg)
    assert cfg['backbone']['init_cfg'] is None
    assert cfg['head']['init_cfg']['type'] == 'Normal'
    assert cfg['layers'][0]['init_cfg'] is None
