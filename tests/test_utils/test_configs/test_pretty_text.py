# Copyright (c) mmlesion contributors. All rights reserved.
"""A config given to mmengine's Runner is formatted by yapf once per
content: the same text as mmengine's, reused for the log, the dumped config
and every checkpoint; a changed config is formatted again."""
import copy

import mmengine.config.config as mmengine_config
import pytest

from mmlesion.testing import get_config
from mmlesion.utils.configs import pretty_text
from mmlesion.utils.configs.pretty_text import (FormattedOnceConfig,
                                                formatted_once)

CONFIG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


@pytest.fixture
def yapf_calls(monkeypatch):
    """Counts mmengine's calls of yapf's FormatCode (the cache emptied)."""
    calls = []
    real = mmengine_config.FormatCode

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mmengine_config, 'FormatCode', counting)
    monkeypatch.setattr(pretty_text, '_CACHE', type(pretty_text._CACHE)())
    return calls


def test_same_text_as_mmengine_formatted_once(yapf_calls, tmp_path):
    cfg = get_config(CONFIG)
    expected = cfg.pretty_text
    assert len(yapf_calls) == 1
    once = formatted_once(cfg)
    assert isinstance(once, FormattedOnceConfig)
    assert formatted_once(once) is once
    assert once.pretty_text == expected
    # what the Runner does with it: deep copies, the log, the dump, the
    # meta of every checkpoint
    runner_cfg = copy.deepcopy(copy.deepcopy(once))
    assert isinstance(runner_cfg, FormattedOnceConfig)
    texts = [runner_cfg.pretty_text for _ in range(5)]
    runner_cfg.dump(str(tmp_path / 'config.py'))
    assert texts == [expected] * 5
    assert (tmp_path / 'config.py').read_text() == expected
    assert len(yapf_calls) == 2  # mmengine's own once, ours once


def test_a_changed_config_is_formatted_again(yapf_calls):
    once = formatted_once(get_config(CONFIG))
    first = once.pretty_text
    once.train_cfg.max_epochs = 7
    second = once.pretty_text
    assert second != first and 'max_epochs=7' in second
    assert len(yapf_calls) == 2
    assert second == mmengine_config.Config(once.to_dict()).pretty_text


def test_unformatted_configs_are_left_alone(yapf_calls):
    cfg = mmengine_config.Config(dict(a=1), format_python_code=False)
    assert formatted_once(cfg).pretty_text == cfg.pretty_text
    assert yapf_calls == []
