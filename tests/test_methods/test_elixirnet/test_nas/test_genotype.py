# Copyright (c) mmlesion contributors. All rights reserved.
"""Genotype snippets: write, read back, inherit in a config, apply."""
import pytest
from mmengine.config import Config

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.models import DEFAULT_ALB_GENOTYPES
from mmlesion.methods.elixirnet.nas import (apply_genotypes, check_genotypes,
                                            dump_genotypes, format_genotypes,
                                            load_genotypes)


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


# ------------------------------------------------ ready-config names, spaces
def test_searched_config_name_drops_the_fig3geno_tag():
    from mmlesion.methods.elixirnet.nas.genotype import searched_config_name
    assert searched_config_name(
        'configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-'
        '3slice.py') == \
        'elixirnet-searched_r50_fpn_4xb2-1x_deeplesion-3slice.py'
    assert searched_config_name(
        'elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py') == \
        'elixirnet-alb-searched_r50_fpn_4xb2-1x_deeplesion-3slice.py'
    # an untagged name (the demo configs) still gets -searched
    assert searched_config_name(
        'demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py') == \
        'elixirnet-searched_r18-tiny_fpn_1x_deeplesion-demo.py'
    assert searched_config_name('elixirnet.py') == 'elixirnet-searched.py'
    # Table 6 searches get their own names
    assert searched_config_name(
        'elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
        ('dartsspace', )) == \
        'elixirnet-alb-searched-dartsspace_r50_fpn_4xb2-1x_deeplesion-3slice.py'
    assert searched_config_name('elixirnet_r18.py', ('random', None)) == \
        'elixirnet-searched-random_r18.py'


def test_search_space_tag():
    from mmlesion.methods.elixirnet.models.alb_ops import ALB_OP_NAMES, DARTS_OP_NAMES
    from mmlesion.methods.elixirnet.nas.genotype import search_space_tag
    assert search_space_tag(ALB_OP_NAMES) is None
    assert search_space_tag(list(DARTS_OP_NAMES)) == 'dartsspace'
    assert search_space_tag(ALB_OP_NAMES[:4]) == 'customspace'


DARTS_GENOTYPES = dict(
    normal=dict(ops=[('darts_sep_conv_3x3', 0), ('max_pool_3x3', 0),
                     ('darts_dil_conv_5x5', 1), ('skip_connect', 0),
                     ('darts_sep_conv_5x5', 2), ('avg_pool_3x3', 1),
                     ('darts_dil_conv_3x3', 3), ('skip_connect', 0)]),
    reduce=dict(ops=[('max_pool_3x3', 0), ('darts_sep_conv_5x5', 0),
                     ('skip_connect', 0), ('darts_dil_conv_3x3', 1),
                     ('avg_pool_3x3', 1), ('darts_sep_conv_3x3', 2),
                     ('darts_dil_conv_5x5', 2), ('max_pool_3x3', 3)]))


def test_darts_space_snippet_round_trip(tmp_path):
    """A DARTS-space snippet records its op_names; reading it checks the
    genotypes against them, not against the paper's 9."""
    from mmlesion.methods.elixirnet.models.alb_ops import DARTS_OP_NAMES
    from mmlesion.methods.elixirnet.nas.genotype import load_op_names
    path = str(tmp_path / 'genotype.py')
    with pytest.raises(ValueError, match='unknown operation'):
        dump_genotypes(DARTS_GENOTYPES, path)  # the paper's space
    dump_genotypes(DARTS_GENOTYPES, path, op_names=DARTS_OP_NAMES)
    assert load_op_names(path) == DARTS_OP_NAMES
    assert load_genotypes(path) == check_genotypes(DARTS_GENOTYPES,
                                                   op_names=DARTS_OP_NAMES)
    with pytest.raises(ValueError, match='unknown operation'):
        from mmlesion.methods.elixirnet.models.alb_ops import ALB_OP_NAMES
        load_genotypes(path, op_names=ALB_OP_NAMES)
    # a paper-space snippet has no op_names line (unchanged format)
    own = dump_genotypes(DEFAULT_ALB_GENOTYPES, str(tmp_path / 'own.py'))
    assert 'op_names' not in open(own).read().split('# or mmlesion')[1]

    cfg = Config(dict(model=dict(roi_head=dict(bbox_head=dict(search=True)))))
    apply_genotypes(cfg, path)
    head = cfg.model.roi_head.bbox_head
    assert tuple(head.op_names) == DARTS_OP_NAMES and head.search is False


def test_darts_space_ready_config_builds_and_trains_a_step(tmp_path):
    """write_searched_config puts op_names into the ready config; the fixed
    ALB head builds DARTS' operations and computes losses."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    from mmlesion.methods.elixirnet.models.alb_ops import DARTS_OP_NAMES
    from mmlesion.methods.elixirnet.nas.genotype import write_searched_config
    from mmlesion.testing import repo_root
    from tests.helpers.alb_search import tiny_detector_cfg
    from mmlesion.testing.det_batches import det_sample
    target = str(repo_root() / 'configs' / 'elixirnet' / 'demo' /
                 'elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py')
    out = str(tmp_path / 'ready.py')
    with pytest.raises(ValueError, match='unknown operation'):
        write_searched_config(DARTS_GENOTYPES, target, out)
    write_searched_config(DARTS_GENOTYPES, target, out, 'a test',
                          op_names=DARTS_OP_NAMES)
    head_cfg = Config.fromfile(out).model.roi_head.bbox_head
    assert tuple(head_cfg.op_names) == DARTS_OP_NAMES
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = MODELS.build(Config.fromfile(out).model).roi_head.bbox_head
        assert not head.search
        assert head.genotypes() == check_genotypes(DARTS_GENOTYPES,
                                                   op_names=DARTS_OP_NAMES)
        model = MODELS.build(
            Config(
                tiny_detector_cfg(
                    dict(type='ALBBBoxHead',
                         op_names=DARTS_OP_NAMES,
                         genotypes=DARTS_GENOTYPES))))
    batch = dict(inputs=[torch.rand(3, 64, 64)],
                 data_samples=[det_sample(0, 64, [[10., 10., 30., 30.]],
                                          [0])])
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k
                for v in (v if isinstance(v, list) else [v]))
    total.backward()
    assert torch.isfinite(total)
