# Copyright (c) mmlesion contributors. All rights reserved.
"""adaptive_focal_terms.py: both terms of Eq. 3 over a few iterations."""
import json
import math

from tests.helpers.tool_modules import load_tool


def test_terms_per_prior(tmp_path, capsys):
    tool = load_tool('projects/aggregated3d/tools/adaptive_focal_terms.py')
    out = tool.main(['--iters', '2', '--every', '1', '--crop', '32',
                     '--channels', '4', '--json', str(tmp_path / 't.json')])
    assert set(out) == {'0.01', '0.5'}
    for prior, rows in out.items():
        assert [r['iter'] for r in rows] == [0, 1, 2]
        first = rows[0]
        assert first['t'] == 1.0 and first['n_neg'] > 1000
        # the positive term starts at -log(prior) (zero-init deltas aside)
        assert math.isclose(first['pos'], -math.log(float(prior)),
                            rel_tol=0.3)
    # 0.01: the negative term is negligible at the start, 0.5: it is not
    assert out['0.01'][0]['neg'] < 1e-9 < 1e-2 < out['0.5'][0]['neg']
    assert json.loads((tmp_path / 't.json').read_text()) == out
    assert 'neg share' in capsys.readouterr().out


def test_full_run_iters_follows_crops_per_scan():
    """T's run length: epochs x iterations per epoch, which the LUNA16
    configs' 6 crops per scan make 6 times what one crop per scan gives."""
    from mmengine.config import Config

    from mmlesion.utils.configs.lookup import get_config
    tool = load_tool('projects/aggregated3d/tools/adaptive_focal_terms.py')
    cfg = get_config(
        'aggregated3d/rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16.py')
    assert cfg.train_dataloader.dataset.crops_per_scan == 6
    assert tool.full_run_iters(cfg) == 50 * math.ceil(799 * 6 / 2)
    # through a dataset wrapper, and 1 crop per scan when unset
    wrapped = Config(dict(
        train_cfg=dict(max_epochs=3),
        train_dataloader=dict(batch_size=2, dataset=dict(
            type='RepeatDataset', times=2, dataset=dict(type='X')))))
    assert tool.full_run_iters(wrapped, num_train_scans=5) == 3 * 3
