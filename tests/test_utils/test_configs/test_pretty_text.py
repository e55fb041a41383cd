# Copyright (c) mmlesion contributors. All rights reserved.
"""A config given to mmengine's Runner is written without yapf: mmengine's
own text before the reflow, which loads to the same config; the log, the
dumped config and every checkpoint never call yapf."""
import copy

import mmengine.config.config as mmengine_config
import pytest
from mmengine.config import Config

from mmlesion.testing import get_config
from mmlesion.utils.configs.pretty_text import without_yapf

CONFIG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


@pytest.fixture
def yapf_calls(monkeypatch):
    """Counts mmengine's calls of yapf's FormatCode."""
    calls = []
    real = mmengine_config.FormatCode

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mmengine_config, 'FormatCode', counting)
    return calls


def test_same_config_without_yapf(yapf_calls, tmp_path):
    cfg = get_config(CONFIG)
    plain = without_yapf(cfg)
    assert yapf_calls == []
    # what the Runner does with it: deep copies, the log, the dump, the
    # meta of every checkpoint
    runner_cfg = copy.deepcopy(copy.deepcopy(plain))
    texts = [runner_cfg.pretty_text for _ in range(3)]
    runner_cfg.dump(str(tmp_path / 'config.py'))
    assert yapf_calls == [] and len(set(texts)) == 1
    assert (tmp_path / 'config.py').read_text() == texts[0]
    # the text loads to the same config; only whitespace differs from
    # mmengine's formatted text
    assert Config.fromstring(texts[0], '.py').to_dict() == cfg.to_dict()
    assert Config.fromfile(str(tmp_path / 'config.py')).to_dict() == \
        cfg.to_dict()
    formatted = cfg.pretty_text
    assert len(yapf_calls) == 1 and formatted != texts[0]
    assert ''.join(formatted.split()) == ''.join(texts[0].split())


def test_the_given_config_keeps_its_formatting(yapf_calls):
    cfg = get_config(CONFIG)
    plain = without_yapf(cfg)
    plain.train_cfg.max_epochs = 7  # the content is shared, as a Runner's
    assert cfg.train_cfg.max_epochs == 7 and 'max_epochs=7' in \
        plain.pretty_text
    assert yapf_calls == []
    cfg.pretty_text  # the user's own config still formats as mmengine's
    assert len(yapf_calls) == 1
