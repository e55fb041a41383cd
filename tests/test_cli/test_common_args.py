# Copyright (c) mmlesion contributors. All rights reserved.
"""Options shared by several tools (mmlesion_cli.common_args)."""
import argparse

import pytest

from mmlesion_cli.common_args import check_config_file


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
            '3slice.py: no such file; closest: configs/elixirnet/') in err
    assert 'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py' in err
    with pytest.raises(SystemExit):
        check_config_file(parser, '--config', str(tmp_path / 'zzz.py'))
    assert 'zzz.py: no such file' in capsys.readouterr().err
