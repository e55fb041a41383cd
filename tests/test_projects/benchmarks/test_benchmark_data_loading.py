# Copyright (c) mmlesion contributors. All rights reserved.
"""projects/benchmarks/benchmark_data_loading.py on the tiny demo set (no
speed is asserted)."""
import importlib.util
import json

from mmlesion.testing import repo_root

NINE = 'configs/elixirnet/demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo-9slice.py'


def _tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_data_loading',
        repo_root() / 'projects' / 'benchmarks' / 'benchmark_data_loading.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_workers_and_step_time(tiny_demo_root, tmp_path):
    out = tmp_path / 'loading.json'
    assert _tool().main([
        str(repo_root() / NINE), '--workers', '0', '2', '--samples', '3',
        '--warmup', '1', '--step-time', '--json', str(out),
        '--cfg-options',
        f'train_dataloader.dataset.data_root={tiny_demo_root}/'
    ]) == 0
    res = json.loads(out.read_text())
    assert [r['workers'] for r in res['loading']] == [0, 2]
    assert all(r['samples_per_s'] > 0 for r in res['loading'])
    assert res['needed_samples_per_s'] > 0 and res['step_s'] > 0
    assert res['fewest_workers_that_keep_up'] in (None, 0, 2)


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert _tool().main([
        str(repo_root() / NINE), '--cfg-options',
        f'train_dataloader.dataset.data_root={tmp_path}/'
    ]) == 1
    assert 'cannot be built' in capsys.readouterr().err
