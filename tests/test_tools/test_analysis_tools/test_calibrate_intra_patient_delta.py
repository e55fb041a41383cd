# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/analysis_tools/calibrate_intra_patient_delta.py end to end on the
tiny demo set with a random tiny LENS (plumbing; the README's numbers come
from a trained model)."""
import json

from mmlesion.testing import repo_root

CFG = 'configs/lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py'


def test_calibration_and_mining_report(analysis_tool, tiny_demo_root,
                                       tmp_path, capsys):
    tool = analysis_tool('calibrate_intra_patient_delta')
    out = tmp_path / 'out'
    assert tool.main([str(repo_root() / CFG), '--demo-root',
                      str(tiny_demo_root), '--mine', '--max-offset', '0',
                      '--out-dir', str(out)]) == 0
    res = json.loads((out / 'delta_calibration.json').read_text())
    assert (out / 'delta_calibration.png').stat().st_size > 1000
    demo = res['sources']['demo']
    assert demo['lesions'] > demo['annotated'] > 0
    calib = res['calibration']['demo (lesion_id)']
    assert calib['different'] is None or calib['different']['n'] > 0
    mining = res['mining']['paper 0.15']
    assert mining['delta'] == 0.15
    assert set(mining['per_strategy']) == {'propagation', 'intra_patient',
                                           'cross_dataset'}
    for per in mining['per_strategy'].values():
        assert per['boxes'] >= 0 and 'recall_followup_missing' in per
    assert 'mining, delta paper 0.15' in capsys.readouterr().out
    assert tool.main([str(repo_root() / CFG), '--out-dir',
                      str(out)]) == 2
