# Copyright (c) mmlesion contributors. All rights reserved.
"""``mmlesion.datasets.converters.cli``: a label-map converter run on the
options that ``mmlesion_cli.converter_args`` parsed."""
import json

import numpy as np

from mmlesion.datasets.converters import (LunaFinding, find_luna16_scans,
                                          read_findings_by_series)
from mmlesion.datasets.converters import luna16, luna16_files
from mmlesion.datasets.converters.cli import run_mask_converter
from mmlesion.testing.volume_files import write_volume
from mmlesion_cli.converter_args import mask_converter_parser

POSITIONALS = [('root', 'KiTS19 data folder')]


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
    parser = mask_converter_parser('KiTS19.', POSITIONALS, labels=(2, ),
                                   lesion_type=6, window=(-79, 304))
    args = parser.parse_args([str(root), '--out', str(out), '--check-only'])
    assert run_mask_converter(args, 'convert_kits19', POSITIONALS) == 0
    printed = capsys.readouterr().out
    assert 'check only' in printed and not out.exists()
    args = parser.parse_args([str(root), '--out', str(out)])
    assert run_mask_converter(args, 'convert_kits19', POSITIONALS) == 0
    summary = json.loads(capsys.readouterr().out.split('summary json: ')[1])
    assert summary['volumes'] == 2 and summary['lesions'] == 2
    assert len(json.load(open(out))['volumes']) == 2
    # existing output without --overwrite: exit status 1, one-line error
    assert run_mask_converter(args, 'convert_kits19', POSITIONALS) == 1
    assert capsys.readouterr().err.startswith('error: ')


def test_old_import_paths():
    assert luna16.LunaFinding is luna16_files.LunaFinding is LunaFinding
    assert luna16.find_luna16_scans is find_luna16_scans
    assert luna16.read_findings_by_series is read_findings_by_series
