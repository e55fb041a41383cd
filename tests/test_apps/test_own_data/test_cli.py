# Copyright (c) mmlesion contributors. All rights reserved.
"""``mmlesion.apps.own_data.cli``: the converter run on the options
that ``mmlesion_cli.converter_args`` parsed, through a preset's old tool
name and through the general tool."""
import io
import json
import uuid

import numpy as np
from mmengine.logging import MMLogger

from mmlesion.testing.volume_files import write_volume
from tests.helpers.tool_modules import load_tool


def _kits_case(root, i):
    img = np.full((8, 16, 16), -100, np.int16)
    img[:, 0] = -1000
    seg = np.zeros(img.shape, np.uint8)
    seg[2:5, 4:8, 4:8] = 2
    write_volume(str(root / f'case_{i:05d}' / 'imaging.nii.gz'), img)
    write_volume(str(root / f'case_{i:05d}' / 'segmentation.nii.gz'), seg)


def test_parse_then_run(tmp_path, capsys):
    root = tmp_path / 'kits19'
    for i in (0, 1):
        _kits_case(root, i)
    out = tmp_path / 'kits.json'
    main = load_tool('dataset_converters/kits19.py').main
    assert main([str(root), '--out', str(out), '--check-only']) == 0
    printed = capsys.readouterr().out
    assert 'check only' in printed and not out.exists()
    assert main([str(root), '--out', str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.split('summary json: ')[1])
    assert summary['volumes'] == 2 and summary['lesions'] == 2
    assert len(json.load(open(out))['volumes']) == 2
    # existing output without --overwrite: exit status 1, one-line error
    assert main([str(root), '--out', str(out)]) == 1
    assert capsys.readouterr().err.startswith('error: ')
    # the same through the general tool
    again = tmp_path / 'again.json'
    assert load_tool('dataset_converters/convert_dataset.py').main(
        ['--preset', 'kits19', str(root), '--out', str(again)]) == 0
    assert again.read_text() == out.read_text()


def test_logs_to_this_calls_stdout(tmp_path, capsys):
    """A current logger made earlier in the process, its console on a
    stream closed since (a test's captured stdout), gets no converter
    line: those go to the stdout of the call, nothing to stderr."""
    closed = io.StringIO()
    stale = MMLogger.get_instance(f'test_cli_stale_{uuid.uuid4().hex}')
    for handler in stale.handlers:
        handler.stream = closed
    closed.close()
    assert MMLogger.get_current_instance() is stale
    _kits_case(tmp_path / 'kits19', 0)
    main = load_tool('dataset_converters/kits19.py').main
    out = tmp_path / 'kits.json'
    assert main([str(tmp_path / 'kits19'), '--out', str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err == ''
    assert 'kits19: ' in printed.out.split('summary json: ')[0]
    # and its stream is put back with the call: nothing outlives it
    assert MMLogger.get_current_instance() is stale
    assert all(h.stream is closed for h in stale.handlers)
