# Copyright (c) mmlesion contributors. All rights reserved.
"""probe_study_mechanisms.py on the tiny quick-study data, untrained
(the probes' numbers are tested in tests/test_apis/test_study_probes.py)."""
import json

import pytest

from projects.study_demo.study_data import ensure_study_data
from mmlesion.testing import repo_root


def test_trpn_row_untrained(tmp_path, analysis_tool, capsys):
    tool = analysis_tool('probe_study_mechanisms')
    data = ensure_study_data(str(tmp_path / 'data'), 'quick')
    config = str(repo_root() / 'configs' / 'elixirnet' / 'demo' /
                 'elixirnet-trpn_r18-tiny_fpn_1x_deeplesion-demo.py')
    out = tmp_path / 'probe.json'
    args = [config, '--data-root', data, '--max-images', '2', '--out',
            str(out)]
    result = tool.main(args)
    trpn = result['init']['trpn']
    assert 'trained' not in result and result['init']['images'] == 2
    assert 0. < trpn['keep_ratio'] < 1. and trpn['iou_thr'] == 0.7
    assert json.loads(out.read_text())['init']['trpn'] == pytest.approx(trpn)
    assert 'TRPN: keep_ratio' in capsys.readouterr().out
    with pytest.raises(SystemExit):  # an existing result is kept
        tool.main(args)
    with pytest.raises(SystemExit):
        tool.main([config, '--checkpoint', str(tmp_path / 'none.pth')])
    capsys.readouterr()


def test_rtm_row_untrained(tmp_path, analysis_tool, capsys):
    """The multi-type ElixirNet row: TRPN and RTM probed on typed data."""
    tool = analysis_tool('probe_study_mechanisms')
    data = ensure_study_data(str(tmp_path / 'data'), 'quick')
    config = str(repo_root() / 'configs' / 'elixirnet' / 'demo' /
                 'elixirnet_r18-tiny_fpn_ft-6e_deeplesion-demo-multitype.py')
    result = tool.main([config, '--data-root', data, '--max-images', '2'])
    rtm = result['init']['rtm']
    assert 'trpn' in result['init'] and rtm['rois'] > 0
    assert 0. <= rtm['label_changed'] <= 1.
    assert rtm['weight_norm_ratio'] > 0. and rtm['feature_norm_ratio'] > 0.
    assert 'RTM: rois' in capsys.readouterr().out
