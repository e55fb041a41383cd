# Copyright (c) mmlesion contributors. All rights reserved.
"""Round 5 of malformed options and configs given to the tools: each
stops in one line naming the option or file and what to do."""
import argparse

import pytest

from mmlesion.apis.whole_scan.settings import DetectionSettings, RunSettings
from mmlesion.utils.configs.loading import ConfigFileError, load_config
from mmlesion_cli.common_args import add_cfg_options_argument


def test_cfg_options_pair_without_equals_sign(capsys):
    parser = argparse.ArgumentParser(prog='train.py')
    add_cfg_options_argument(parser)
    assert parser.parse_args(['--cfg-options', 'a.b=3']).cfg_options == {
        'a.b': 3}
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(['--cfg-options', 'max_iters'])
    assert stop.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == ("train.py: error: --cfg-options 'max_iters': not "
                       'KEY=VALUE; give e.g. max_iters=500 (a list as '
                       'key="[a,b]", no spaces around =)')


def test_base_listed_twice(tmp_path):
    (tmp_path / 'base.py').write_text('x = 1\n')
    top = tmp_path / 'top.py'
    top.write_text("_base_ = ['./base.py', 'base.py']\n")
    with pytest.raises(ConfigFileError) as err:
        load_config(str(top))
    assert str(err.value) == (
        f"{top}: _base_ 'base.py': names {tmp_path / 'base.py'} a second "
        "time (first as './base.py'); list each base once")


@pytest.mark.parametrize('field,value', [
    ('score_thr', 1.5), ('score_thr', float('nan')), ('score_thr', -0.1),
    ('iou_thr', 0.), ('min_slices', 0), ('max_gap', -1), ('batch_size', 0)])
def test_detection_settings_out_of_range(field, value):
    option = '--' + field.replace('_', '-')
    with pytest.raises(ValueError, match=rf'^DetectionSettings\.{field} '
                       rf'\({option}\) must be .*, got {value}$'):
        DetectionSettings(**{field: value})


@pytest.mark.parametrize('rate', [-1., 0., float('inf')])
def test_fp_rate_not_positive(rate):
    with pytest.raises(ValueError, match=r'^RunSettings\.fp_rate '
                       r'\(--fp-rate\) must be'):
        RunSettings(fp_rate=rate)
    assert RunSettings(fp_rate=None).fp_rate is None


def test_scan_list_in_utf16(tmp_path):
    from mmlesion.apps.whole_scan.scan_list import read_scan_list
    (tmp_path / 'scan.nii.gz').write_bytes(b'')
    listed = tmp_path / 'scans.txt'
    listed.write_text('# the day\r\n\r\nscan.nii.gz\r\n', encoding='utf-16')
    with pytest.raises(ValueError) as err:
        read_scan_list(listed)
    assert str(err.value) == (
        f'{listed}: UTF-16 encoded (byte-order mark or NUL bytes); a '
        '--scan-list file must be UTF-8 (or ASCII) text: re-save it as UTF-8')
    listed.write_text('# the day\r\n\r\nscan.nii.gz\r\n', encoding='utf-8')
    assert read_scan_list(listed) == [str(tmp_path / 'scan.nii.gz')]
