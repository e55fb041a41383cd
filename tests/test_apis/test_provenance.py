# Copyright (c) mmlesion contributors. All rights reserved.
"""What a result records of its config (mmlesion.apis.provenance)."""
import hashlib

from mmengine.config import Config

from mmlesion.apis.provenance import config_record
from mmlesion.testing import get_config, repo_root

FULL_CFG = ('elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-'
            '3slice.py')


def test_config_text_loads_back_to_the_config_as_run():
    """The recorded text is the whole config as run (an option merged),
    loadable to the same dict; its SHA-256 is the text's."""
    cfg = get_config(FULL_CFG)
    cfg.merge_from_dict({'model.test_cfg.rcnn.max_per_img': 77})
    record = config_record(cfg, str(repo_root() / 'configs' / FULL_CFG))
    assert record['path'] == str(repo_root() / 'configs' / FULL_CFG)
    assert record['sha256'] == hashlib.sha256(
        record['text'].encode('utf-8')).hexdigest()
    back = Config.fromstring(record['text'], '.py')
    assert back.to_dict() == cfg.to_dict()
    assert back.model.test_cfg.rcnn.max_per_img == 77
