# Copyright (c) mmlesion contributors. All rights reserved.
"""What ``tools/train.py`` and ``tools/test.py`` check in a config before
anything runs: an option nothing reads stops the training in one line;
the test checks only what a test reads."""
import argparse
import sys

import pytest

from mmlesion.testing import get_config, repo_root
from tests.helpers.tool_modules import load_tool

CONFIG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def test_train_stops_on_an_option_nothing_reads(tmp_path, monkeypatch):
    """``--cfg-options max_epochs=2`` on a fresh clone trained all 36
    epochs after a warning that blamed the config file: now one line
    naming the option and the key it meant, before anything is built."""
    train = load_tool('train.py')
    monkeypatch.setattr(train, 'run_training', lambda *a: pytest.fail(
        'the training started'))
    work = tmp_path / 'w'
    monkeypatch.setattr(sys, 'argv', [
        'tools/train.py', str(repo_root() / 'configs' / CONFIG),
        '--work-dir', str(work), '--cfg-options', 'max_epochs=2'])
    with pytest.raises(SystemExit) as info:
        train.main()
    message = str(info.value.code)
    assert '\n' not in message
    assert message.startswith('error: --cfg-options max_epochs=2: nothing '
                              "reads a top-level 'max_epochs'")
    assert message.endswith('did you mean train_cfg.max_epochs=2?')
    assert not work.exists()  # refused before the work dir was locked


def test_test_tool_checks_only_what_a_test_reads(tmp_path, log_messages):
    """The config a training saved after ``--cfg-options
    train_cfg.max_epochs=1`` (its ``max_epochs = 36`` kept): the test
    warned that max_epochs belongs in train_cfg; a test trains nothing."""
    cfg = get_config(CONFIG)
    cfg.train_cfg.max_epochs = 1
    saved = tmp_path / 'saved.py'
    cfg.dump(str(saved))
    args = argparse.Namespace(config=str(saved), launcher='none',
                              cfg_options=None, fold=None,
                              work_dir=str(tmp_path / 'w'))
    tested = load_tool('test.py').build_cfg(args)
    assert tested.train_cfg.max_epochs == 1
    assert not [m for m in log_messages if 'max_epochs' in m]
