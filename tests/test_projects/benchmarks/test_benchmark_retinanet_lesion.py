# Copyright (c) mmlesion contributors. All rights reserved.
import importlib.util

import pytest

from mmlesion.testing import repo_root


def _load_tool():
    path = (
        repo_root() / 'projects' / 'benchmarks' / 'benchmark_retinanet_lesion.py')
    spec = importlib.util.spec_from_file_location('benchmark_rl', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEMO_R1 = 'retinanet_lesion/demo/retinanet_r18-tiny_fpn_1x_deeplesion-demo.py'
DEMO_R4 = ('retinanet_lesion/demo/'
           'improved-retinanet_r18-tiny_densefpn-ag_1x_deeplesion-demo.py')


def test_side_by_side_run(capsys):
    tool = _load_tool()
    results = tool.main([
        '--baseline', DEMO_R1, '--configs', DEMO_R4, '--size', '64',
        '--warmup', '1', '--iters', '2', '--score-thr', '0', '--device', 'cpu'
    ])
    out = capsys.readouterr().out
    assert 'baseline: mmdet RetinaNet' in out and 'ratio' in out
    assert 'improved-retinanet_r18-tiny_densefpn-ag' in out
    assert len(results) == 2
    for res in results.values():
        assert len(res['times_ms']) == 2 and res['median_ms'] > 0
        assert res['dets'] > 0  # --score-thr 0: post-processing exercised
    table = tool.format_table(results, next(iter(results)))
    assert table.splitlines()[1].split()[-2] == '1.00'


def test_baseline_is_mmdet_retinanet():
    tool = _load_tool()
    cfg = tool.load_any_config(tool.DEFAULT_BASELINE)
    assert cfg.model.type == 'RetinaNet'
    assert cfg.model.neck.start_level == 1  # P3-P7, mmdet default
    for kwargs in (dict(iters=1), dict(warmup=0)):
        with pytest.raises(ValueError, match='iters / warmup'):
            tool.benchmark_models({}, tool.make_batch(size=32), **kwargs)
