# Copyright (c) mmlesion contributors. All rights reserved.
"""Genotype snippets: write, read back, inherit in a config, apply."""
import pytest
from mmengine.config import Config

import mmlesion  # noqa: F401  (registers)
from mmlesion.models.roi_heads.bbox_heads import DEFAULT_ALB_GENOTYPES
from mmlesion.nas import (apply_genotypes, check_genotypes, dump_genotypes,
                          format_genotypes, load_genotypes)


def test_round_trip(tmp_path):
    path = str(tmp_path / 'sub' / 'genotype.py')
    dump_genotypes(DEFAULT_ALB_GENOTYPES, path, comment='line 1\nline 2')
    text = open(path).read()
    assert text.startswith('# line 1\n# line 2\n')
    loaded = load_genotypes(path)
    assert loaded == check_genotypes(DEFAULT_ALB_GENOTYPES)
    assert loaded['normal']['ops'][0] == ('non_local', 0)
    # the text itself evaluates to the genotypes
    scope = {}
    exec(format_genotypes(loaded), {'dict': dict}, scope)
    assert scope['genotypes'] == loaded


def test_inherit_snippet_in_config(tmp_path):
    dump_genotypes(DEFAULT_ALB_GENOTYPES, str(tmp_path / 'genotype.py'))
    (tmp_path / 'model.py').write_text(
        "model = dict(roi_head=dict(bbox_head=dict(type='ALBBBoxHead', "
        'search=True)))\n')
    (tmp_path / 'final.py').write_text(
        "_base_ = ['./model.py', './genotype.py']\n"
        'model = dict(roi_head=dict(bbox_head=dict(search=False, '
        'genotypes={{_base_.genotypes}})))\n')
    cfg = Config.fromfile(str(tmp_path / 'final.py'))
    assert check_genotypes(cfg.model.roi_head.bbox_head.genotypes) == \
        check_genotypes(DEFAULT_ALB_GENOTYPES)


def test_apply_genotypes(tmp_path):
    path = dump_genotypes(DEFAULT_ALB_GENOTYPES, str(tmp_path / 'g.py'))
    cfg = Config(dict(model=dict(roi_head=dict(bbox_head=dict(search=True)))))
    apply_genotypes(cfg, path)
    head = cfg.model.roi_head.bbox_head
    assert head.search is False
    assert head.genotypes == load_genotypes(path)
    with pytest.raises(KeyError, match='model.roi_head.bbox_head'):
        apply_genotypes(Config(dict(model=dict())), path)


def test_bad_snippets(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_genotypes(str(tmp_path / 'missing.py'))
    empty = tmp_path / 'empty.py'
    empty.write_text('x = 1\n')
    with pytest.raises(ValueError, match='empty.py: no `genotypes'):
        load_genotypes(str(empty))
    bad = tmp_path / 'bad.py'
    bad.write_text("genotypes = dict(normal=dict(ops=[('conv_9x9', 0)] * 8), "
                   "reduce=dict(ops=[('skip_connect', 0)] * 8))\n")
    with pytest.raises(ValueError, match="bad.py: genotypes\\['normal'\\]"):
        load_genotypes(str(bad))
    with pytest.raises(ValueError, match='.py file'):
        dump_genotypes(DEFAULT_ALB_GENOTYPES, str(tmp_path / 'g.txt'))
    with pytest.raises(ValueError, match='normal=..., reduce=...'):
        check_genotypes(dict(normal=DEFAULT_ALB_GENOTYPES['normal']))
