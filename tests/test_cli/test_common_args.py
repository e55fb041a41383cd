# Copyright (c) mmlesion contributors. All rights reserved.
"""Options shared by several tools (mmlesion_cli.common_args)."""
import argparse
import os
from pathlib import Path

import pytest

import mmlesion_cli
from mmlesion.testing import repo_root
from mmlesion_cli.common_args import check_config_file, config_file_error
from mmlesion_cli.env_switch import ENV_DOC


def test_missing_config_names_the_closest_configs(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog='tool')
    there = tmp_path / 'mine.py'
    there.write_text('x = 1\n')
    check_config_file(parser, '--config', str(there))  # no error
    with pytest.raises(SystemExit) as stop:
        check_config_file(
            parser, '--config',
            'configs/elixirnet/elixirnet_r50_fpn_1x_deeplesion_3slice.py')
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert ('--config configs/elixirnet/elixirnet_r50_fpn_1x_deeplesion_'
            '3slice.py: no such file; did you mean configs/elixirnet/') in err
    with pytest.raises(SystemExit):
        check_config_file(parser, '--config', str(tmp_path / 'zzz.py'))
    assert 'zzz.py: no such file; give a config file' in capsys.readouterr(
    ).err



def test_a_wheel_install_offers_its_own_configs(tmp_path, monkeypatch):
    """Installed from a wheel, mmlesion's configs are the package's
    ``.mim/configs`` (no ``configs/`` beside the package): a mistyped
    config is offered the closest one there, by its whole path."""
    from mmlesion.utils.configs import lookup
    package = tmp_path / 'site-packages' / 'mmlesion'
    config = package / '.mim' / 'configs' / 'demo' / 'faster-rcnn_demo.py'
    config.parent.mkdir(parents=True)
    config.write_text('x = 1\n')
    monkeypatch.setattr(lookup, '_PKG_DIR', package)
    assert lookup.configs_dir() == package / '.mim' / 'configs'
    (tmp_path / 'work').mkdir()
    monkeypatch.chdir(tmp_path / 'work')
    assert config_file_error('faster-rcnn_demoo.py') == (
        'config faster-rcnn_demoo.py: no such file; did you mean '
        f'{config.resolve()}?')
    assert config_file_error('zzz.py') == (
        'config zzz.py: no such file; give a config file (.py), e.g. one '
        f"under {package / '.mim' / 'configs'}")
    # a clone (or an editable install): its configs/ beside the package
    (package.parent / 'configs').mkdir()
    assert lookup.configs_dir() == package.parent / 'configs'

def test_trust_switch_given_reaches_the_library(monkeypatch):
    """--trust-checkpoint (for mmengine's checkpoint loader, which takes no
    settings) turns on what the library reads; its help points to the page
    that lists the variable, without a copy of the name."""
    from mmlesion.utils.checkpoints.loader import (TRUST_ENV,
                                                   checkpoints_trusted)
    from mmlesion_cli import common_args
    monkeypatch.setenv(TRUST_ENV, '0')  # undone after the test
    assert not checkpoints_trusted()
    parser = argparse.ArgumentParser()
    common_args.add_trust_checkpoint_argument(parser)
    parser.parse_args(['--trust-checkpoint'])  # sets its variable to 1
    assert os.environ[TRUST_ENV] == '1' and checkpoints_trusted()
    text = parser.format_help()
    assert ENV_DOC in text and TRUST_ENV not in text
    doc = (repo_root() / ENV_DOC).read_text(encoding='utf-8')
    assert '`--trust-checkpoint`' in doc and f'`{TRUST_ENV}=1`' in doc


@pytest.mark.parametrize('flag,variable', [
    ('--force-ct', 'MMLESION_FORCE_CT'),
    ('--resample-nonuniform', 'MMLESION_RESAMPLE_NONUNIFORM'),
    ('--allow-outside-data', 'MMLESION_ALLOW_OUTSIDE_DATA')])
def test_scan_switches_are_documented_with_their_variables(flag, variable):
    """The scan checks' flags (settings, mmlesion.datasets.volumes.
    scan_switches) and the variables a user may set instead."""
    from mmlesion.datasets.volumes import scan_switches
    assert variable in vars(scan_switches).values()
    doc = (repo_root() / ENV_DOC).read_text(encoding='utf-8')
    assert f'`{flag}`' in doc and f'`{variable}=1`' in doc, (flag, variable)


def test_cli_runs_no_library_file():
    """The command-line package runs no library file: it imports the
    library, or reads its data without running it (``package_data``: JSON
    files and plain literals, through ``ast.literal_eval`` only)."""
    root = Path(mmlesion_cli.__file__).parent
    for path in sorted(root.glob('*.py')):
        text = path.read_text(encoding='utf-8')
        for what in ('spec_from_file_location', 'exec_module', 'exec(',
                     'runpy', 'compile(', ' eval('):
            assert what not in text, f'{path.name}: {what}'
        if path.name != 'package_data.py':
            for what in ('ast.parse', 'literal_eval'):
                assert what not in text, f'{path.name}: {what}'
