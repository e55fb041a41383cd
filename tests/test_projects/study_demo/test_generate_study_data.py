# Copyright (c) mmlesion contributors. All rights reserved.
"""projects/study_demo/tools/generate_study_data.py: the main job's demo
options and the study options, written into demo_meta.json; a bad setting
is named, nothing written."""
import json

from tests.helpers.tool_modules import load_tool

ARGS = ['--num-train', '2', '--num-val', '1', '--num-test', '1',
        '--image-size', '96', '--context-mm', '2']
TOOL = 'projects/study_demo/tools/generate_study_data.py'


def test_followup_flags(tmp_path, capsys):
    tool = load_tool(TOOL)
    out = tmp_path / 'demo'
    assert tool.main(['--out', str(out), '--quiet', '--followup-prob', '1',
                      '--followup-missing-prob', '.25'] + ARGS) == 0
    config = json.loads((out / 'demo_meta.json').read_text())['config']
    assert (config['followup_prob'], config['followup_missing_prob'],
            config['num_train'], config['image_size']) == (1., .25, 2, 96)
    # an out-of-range setting: a named error, no traceback, nothing written
    bad = tmp_path / 'bad'
    assert tool.main(['--out', str(bad), '--followup-prob', '2'] + ARGS) == 2
    assert 'followup_prob' in capsys.readouterr().err
    assert tool.main(['--out', str(bad), '--size-source', 'lidc'] + ARGS) == 2
    assert '--size-source' in capsys.readouterr().err
    assert not bad.exists()
