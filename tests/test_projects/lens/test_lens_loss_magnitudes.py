# Copyright (c) mmlesion contributors. All rights reserved.
"""projects/lens/tools/lens_loss_magnitudes.py: the summary of recorded
loss values (the training run itself is the README's command)."""
import pytest


def test_summary_and_table(analysis_tool):
    tool = analysis_tool('lens_loss_magnitudes')
    history = [dict(loss=4., loss_bbox=1.), dict(loss=3.),
               dict(loss=2., loss_bbox=0.5), dict(loss=1., loss_bbox=0.25)]
    s = tool.summarise(history, window=2)
    assert s['loss'] == dict(init=4., final=1.5, n_final=2)
    # a key missing in some iterations: first value it has, mean where
    # present in the window
    assert s['loss_bbox'] == dict(init=1., final=0.375, n_final=2)
    md = tool.to_markdown(s, iters=4, window=2)
    assert '| `loss_bbox` | 1 | 0.375 |' in md
    assert 'mean of iterations 3-4' in md
    assert tool.main(['--work-dir', 'x', '--iters', '2', '--window',
                      '3']) == 2
    with pytest.raises(SystemExit):
        tool.parse_args(['--work-dir', 'x', '--config', 'row_d'])
