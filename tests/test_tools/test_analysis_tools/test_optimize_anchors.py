# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/analysis_tools/optimize_anchors.py on a small DL_info.csv."""
import importlib.util
import os.path as osp
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401
from mmlesion.testing import repo_root

from tests.helpers.dl_info_rows import (lesion_row, write_dl_info_csv,
                                           write_key_slices)

TOOL = (
    Path(__file__).resolve().parents[3] / 'tools' / 'analysis_tools' /
    'optimize_anchors.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('optimize_anchors', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_rows(n=60, seed=0):
    """Small, elongated lesions: default anchors fit them badly."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        long_d = float(rng.uniform(6, 60))
        short_d = long_d / float(rng.uniform(1.0, 3.0))
        rows.append(
            lesion_row(
                1 + i // 3,
                20 + i % 3,
                (float(rng.uniform(80, 430)), float(rng.uniform(80, 430))),
                long_d,
                short_d,
                angle_deg=float(rng.choice([0, 90]))))
    return rows


def _figures(out, label):
    line = next(ln for ln in out.splitlines() if ln.startswith(label))
    mean_iou, below = re.findall(r'\s([\d.]+)\s+(\d+)\s', line)[0]
    return float(mean_iou), int(below)


TARGET_P3P7 = 'retinanet_lesion/demo/retinanet_r18-tiny_fpn_1x_deeplesion-demo.py'
TARGET_P2P6 = ('retinanet_lesion/demo/'
               'improved-retinanet_r18-tiny_densefpn_1x_deeplesion-demo.py')


def _target(rel):
    return str(repo_root() / 'configs' / rel)


def _fast(csv, out=None, seed=1):
    argv = ['--csv', csv, '--seed', str(seed), '--popsize', '6',
            '--maxiter', '20', '--log-interval', '0']
    return argv + (['--out', str(out)] if out else [])


def _anchor_centres(cfg, size=256):
    """Centres of all anchors of the built model on a size x size input."""
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.eval()
    with torch.no_grad():
        cls_scores = model._forward(torch.zeros(1, 3, size, size))[0]
    priors = model.bbox_head.prior_generator.grid_priors(
        [s.shape[-2:] for s in cls_scores], device='cpu')
    priors = torch.cat(priors)
    return (priors[:, :2] + priors[:, 2:]) / 2


def test_csv_run_writes_inheriting_config_and_never_overwrites(
        tmp_path, capsys):
    tool = load_tool()
    csv = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), small_rows())
    out = tmp_path / 'optanchors.py'
    argv = [_target(TARGET_P3P7)] + _fast(csv, out)
    assert tool.main(argv) == 0
    printed = capsys.readouterr().out
    assert 'Boxes: 60 from' in printed
    assert 'on P3-P7 (strides [8, 16, 32, 64, 128]' in printed
    before = _figures(printed, 'before (config anchors)')
    after = _figures(printed, 'after (optimised)')
    assert after[0] > before[0]
    assert after[1] <= before[1]
    assert re.search(r'Search: \d+ generations, \d+ candidates', printed)

    # the written config inherits the target and only replaces the anchors
    text = out.read_text()
    # _base_: the target, relative to the written file when they share a
    # folder below the root (e.g. a clone and pytest's tmp under /tmp),
    # else absolute
    base = re.search(r"^_base_ = '([^']+)'$", text, re.M).group(1)
    assert osp.normpath(osp.join(str(out.parent), base)) == _target(
        TARGET_P3P7)
    assert osp.isabs(base) or base.startswith('.')
    assert 'command (re-run it' in text and 'sha256' in text
    written = Config.fromfile(str(out))
    target = Config.fromfile(_target(TARGET_P3P7))
    gen = written.model.bbox_head.pop('anchor_generator')
    target.model.bbox_head.pop('anchor_generator')
    assert written.model == target.model
    assert written.train_dataloader == target.train_dataloader
    # mmdet builds exactly the anchors whose best IoU was reported; the
    # boxes were resized as the target's val pipeline (512 -> 256 px)
    base = np.concatenate(
        [a.numpy() for a in TASK_UTILS.build(dict(gen)).gen_base_anchors()])
    assert base.shape == (5 * 5 * 3, 4)
    from mmlesion.anchors.box_sources import boxes_from_dl_info
    from mmlesion.anchors.de_anchor_optimizer import (boxes_to_wh,
                                                      evaluate_anchors)
    wh = boxes_to_wh(boxes_from_dl_info(csv) * 0.5)
    anchor_wh = np.stack([base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]], 1)
    stats = evaluate_anchors(wh, anchor_wh.astype(np.float64))
    assert abs(stats.mean_iou - after[0]) < 1e-3
    assert stats.num_below == after[1]

    # an existing --out is kept without --overwrite ...
    assert tool.main(argv) == 1
    assert 'exists' in capsys.readouterr().err
    assert out.read_text() == text
    # ... and replaced with it (another seed, still a valid config)
    assert tool.main([_target(TARGET_P3P7)] + _fast(csv, out, seed=2) +
                     ['--overwrite']) == 0
    assert '--seed 2' in out.read_text()
    Config.fromfile(str(out))


def test_p2_p6_target_gets_p2_p6_strides_and_centres_stay_inside(tmp_path):
    """The tool's anchors follow the target's pyramid:
    a P2-P6 model gets strides 4..64 and every anchor centre lies in the
    image; the old P3-P7 default on the same model did not."""
    tool = load_tool()
    csv = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), small_rows(30))
    out = tmp_path / 'p2p6.py'
    assert tool.main([_target(TARGET_P2P6)] + _fast(csv, out)) == 0
    cfg = Config.fromfile(str(out))
    gen = cfg.model.bbox_head.anchor_generator
    assert gen.strides == [4, 8, 16, 32, 64]
    centres = _anchor_centres(cfg)
    assert float(centres.min()) >= 0 and float(centres.max()) <= 256
    # what a P3-P7 snippet did to this model: centres far beyond the image
    cfg.model.bbox_head.anchor_generator.strides = [8, 16, 32, 64, 128]
    assert float(_anchor_centres(cfg).max()) > 256 * 1.9


def test_pyramid_mismatch_is_refused(tmp_path, capsys):
    tool = load_tool()
    csv = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), small_rows(12))
    bad = tmp_path / 'bad_target.py'
    bad.write_text(f"_base_ = {_target(TARGET_P2P6)!r}\n"
                   'model = dict(bbox_head=dict(anchor_generator=dict('
                   'strides=[8, 16, 32, 64, 128])))\n')
    out = tmp_path / 'never.py'
    assert tool.main([str(bad)] + _fast(csv, out)) == 2
    err = capsys.readouterr().err
    assert 'strides = [8, 16, 32, 64, 128] (P3-P7' in err
    assert 'strides [4, 8, 16, 32, 64] (P2-P6)' in err
    assert str(bad) in err
    assert not out.exists()
    # fewer levels than the neck gives: refused as well
    from mmlesion.anchors.box_sources import anchor_config_from_model
    from mmlesion.anchors.model_pyramid import check_anchor_pyramid
    cfg = Config.fromfile(_target(TARGET_P2P6))
    cfg.model.bbox_head.anchor_generator.strides = [4, 8, 16, 32]
    cfg.model.bbox_head.anchor_generator.base_sizes = [32, 64, 128, 256]
    with pytest.raises(ValueError, match='4 levels'):
        check_anchor_pyramid(cfg, anchor_config_from_model(cfg), 'cfg')
    # a config without anchors
    no_anchor = tmp_path / 'no_anchor.py'
    no_anchor.write_text("model = dict(type='FCOS')\n")
    assert tool.main([str(no_anchor)] + _fast(csv)) == 2
    assert 'nothing to optimise' in capsys.readouterr().err


def test_same_seed_same_anchors(tmp_path):
    tool = load_tool()
    csv = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), small_rows(30))
    outs = []
    for name in ('a.py', 'b.py'):
        out = tmp_path / name
        assert tool.main([
            _target(TARGET_P3P7), '--csv', csv, '--seed', '7', '--popsize',
            '6', '--maxiter', '15', '--objective', 'iou', '--log-interval',
            '0', '--out', str(out)
        ]) == 0
        text = out.read_text()
        outs.append(text[text.index('_base_ ='):])
    assert outs[0] == outs[1]


def test_config_dataset_run_uses_its_pipeline_resize(tmp_path, capsys):
    tool = load_tool()
    rows = small_rows(12)
    write_dl_info_csv(str(tmp_path / 'DL_info.csv'), rows)
    write_key_slices(str(tmp_path / 'Images_png'), rows)
    config = tmp_path / 'cfg.py'
    config.write_text(f"""
_base_ = {_target(TARGET_P3P7)!r}
val_dataloader = dict(dataset=dict(
    _delete_=True,
    type='DeepLesionDataset', data_root={str(tmp_path)!r},
    ann_file='DL_info.csv', data_prefix=dict(img='Images_png/'),
    test_mode=True,
    pipeline=[dict(type='LoadDeepLesionSlices'),
              dict(type='Resize', scale=(1024, 1024), keep_ratio=True),
              dict(type='LoadAnnotations', with_bbox=True)]))
""")
    assert tool.main([
        str(config), '--popsize', '5', '--maxiter', '5', '--log-interval', '0'
    ]) == 0
    printed = capsys.readouterr().out
    assert 'Boxes: 12 from' in printed
    assert 'resize factors [(2.0, 2.0)]' in printed
    assert 'before (config anchors)' in printed


def test_objective_choices_are_the_optimizer_objectives():
    """--objective lists its choices without importing mmlesion (fast
    --help); they must stay the optimiser's OBJECTIVES."""
    from mmlesion.anchors.de_anchor_optimizer import OBJECTIVES
    tool = load_tool()
    for objective in OBJECTIVES:
        args = tool.parse_args(['cfg.py', '--objective', objective])
        assert args.objective == objective
    text = TOOL.read_text()
    assert f"choices={tuple(OBJECTIVES)!r}" in text


def test_base_path_relative_within_a_folder_absolute_across_the_root():
    tool = load_tool()
    assert tool._base_path('/a/repo/configs/x.py',
                           '/a/work/out.py') == '../repo/configs/x.py'
    assert tool._base_path('/a/repo/configs/x.py',
                           '/a/repo/configs/y.py') == './x.py'
    assert tool._base_path('/repo/configs/x.py',
                           '/tmp/out.py') == '/repo/configs/x.py'
