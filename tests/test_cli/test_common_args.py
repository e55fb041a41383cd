# Copyright (c) mmlesion contributors. All rights reserved.
"""Options shared by several tools (mmlesion_cli.common_args)."""
import argparse
import importlib
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

#: ``(flag, the library module and name of its variable, what it turns on
#: in the library)`` of each environment switch.
SWITCHES = [
    ('--trust-checkpoint', 'mmlesion.utils.checkpoints.loader', 'TRUST_ENV',
     'checkpoints_trusted'),
    ('--force-ct', 'mmlesion.datasets.volumes.scan_switches', 'FORCE_CT_ENV',
     'check_modality'),
    ('--resample-nonuniform', 'mmlesion.datasets.volumes.scan_switches',
     'RESAMPLE_NONUNIFORM_ENV', 'resample_nonuniform'),
    ('--allow-outside-data', 'mmlesion.datasets.volumes.scan_switches',
     'ALLOW_OUTSIDE_DATA_ENV', 'allow_outside_data'),
]


@pytest.mark.parametrize('flag,module,env,switch', SWITCHES,
                         ids=[s[0] for s in SWITCHES])
def test_a_switch_given_reaches_the_library(flag, module, env, switch,
                                            monkeypatch):
    """Each environment switch of the tools turns on what the library
    reads, and only that; its help points to the page that lists the
    variable (named there with its switch), without a copy of the name."""
    from mmlesion.datasets.volumes.scan_switches import scan_check_defaults
    from mmlesion.utils.checkpoints.loader import checkpoints_trusted
    from mmlesion_cli import common_args

    def state():
        return dict(scan_check_defaults(),
                    checkpoints_trusted=checkpoints_trusted())

    for _, mod, name, _ in SWITCHES:  # all off; undone after the test
        monkeypatch.setenv(getattr(importlib.import_module(mod), name), '0')
    before = state()
    parser = argparse.ArgumentParser()
    common_args.add_trust_checkpoint_argument(parser)
    common_args.add_scan_check_arguments(parser)
    parser.parse_args([flag])  # the action sets its variable to 1
    variable = getattr(importlib.import_module(module), env)
    assert os.environ[variable] == '1'
    text = parser.format_help()
    assert ENV_DOC in text and variable not in text
    doc = (repo_root() / ENV_DOC).read_text(encoding='utf-8')
    assert f'`{flag}`' in doc and f'`{variable}=1`' in doc, (flag, variable)
    after = state()
    assert {k for k in after if after[k] != before[k]} == {switch}


def test_library_values_are_imported_not_read():
    """The command-line package takes the library's values by importing
    them: it executes no library file on its own and parses no source."""
    root = Path(mmlesion_cli.__file__).parent
    for path in sorted(root.glob('*.py')):
        text = path.read_text(encoding='utf-8')
        for what in ('spec_from_file_location', 'exec_module', 'ast.parse',
                     'literal_eval', 'exec(', 'runpy'):
            assert what not in text, f'{path.name}: {what}'
