# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/misc/generate_demo_data.py: writes, reports, refuses to clobber."""
import csv
import importlib.util
import json

from mmlesion.datasets.deeplesion.dl_info import DL_INFO_COLUMNS
from mmlesion.testing import repo_root
from tests.helpers.demo_sets import dataset_digest

ARGS = ['--num-train', '2', '--num-val', '1', '--num-test', '1',
        '--image-size', '96', '--context-mm', '2']


def _load_tool():
    path = repo_root() / 'tools' / 'misc' / 'generate_demo_data.py'
    spec = importlib.util.spec_from_file_location('generate_demo_data', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_and_refuse(tmp_path, capsys):
    tool = _load_tool()
    out = tmp_path / 'demo'
    assert tool.main(['--out', str(out), '--seed', '5'] + ARGS) == 0
    printed = capsys.readouterr().out
    # progress bar over the images, then the JSON summary
    summary = json.loads(printed[printed.index('\n{') + 1:])
    assert summary['splits']['train']['key_slices'] == 2
    assert summary['images'] == len(list(out.glob('Images_png/*/*.png')))
    with open(out / 'DL_info.csv', newline='') as f:
        assert tuple(next(csv.reader(f))) == DL_INFO_COLUMNS
    digest = dataset_digest(out)
    # refused without --overwrite, nothing changed
    assert tool.main(['--out', str(out), '--seed', '6', '--quiet'] +
                     ARGS) == 1
    assert 'overwrite' in capsys.readouterr().err
    assert dataset_digest(out) == digest
    # replaced with --overwrite
    assert tool.main(['--out', str(out), '--seed', '6', '--quiet',
                      '--overwrite'] + ARGS) == 0
    assert dataset_digest(out) != digest
