# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/analysis_tools/optimize_anchors.py on a small DL_info.csv."""
import importlib.util
import re
from pathlib import Path

import numpy as np
from mmengine.config import Config
from mmdet.registry import TASK_UTILS

from mmlesion.testing.dl_info_rows import (lesion_row, write_dl_info_csv,
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


def test_csv_run_writes_snippet_and_never_overwrites(tmp_path, capsys):
    tool = load_tool()
    csv = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), small_rows())
    out = tmp_path / 'anchors.py'
    argv = [
        '--csv', csv, '--seed', '1', '--popsize', '8', '--maxiter', '40',
        '--log-interval', '5', '--out',
        str(out)
    ]
    assert tool.main(argv) == 0
    printed = capsys.readouterr().out
    assert 'Boxes: 60 from' in printed
    before = _figures(printed, 'before (RetinaNet default)')
    after = _figures(printed, 'after (optimised)')
    assert after[0] > before[0]
    assert after[1] <= before[1]
    assert re.search(
        r'Search: \d+ generations, \d+ candidates, [\d.]+ s '
        r'wall', printed)

    # the snippet builds mmdet anchors whose best IoU matches the report
    cfg = Config.fromfile(str(out))
    gen = TASK_UTILS.build(dict(cfg.anchor_generator))
    base = np.concatenate([a.numpy() for a in gen.gen_base_anchors()])
    assert base.shape == (5 * 5 * 3, 4)
    from mmlesion.anchors.box_sources import boxes_from_dl_info
    from mmlesion.anchors.de_anchor_optimizer import (boxes_to_wh,
                                                      evaluate_anchors)
    wh = boxes_to_wh(boxes_from_dl_info(csv))
    anchor_wh = np.stack([base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]], 1)
    stats = evaluate_anchors(wh, anchor_wh.astype(np.float64))
    assert abs(stats.mean_iou - after[0]) < 1e-3
    assert stats.num_below == after[1]

    # an existing --out is kept without --force ...
    content = out.read_text()
    assert tool.main(argv[:-2] + ['--out', str(out)]) == 1
    assert 'exists' in capsys.readouterr().err
    assert out.read_text() == content
    # ... and replaced with it (another seed, still a valid snippet)
    assert tool.main(argv[:2] + [
        '--seed', '2', '--popsize', '8', '--maxiter', '5', '--out',
        str(out), '--force'
    ]) == 0
    assert 'seed 2' in out.read_text()


def test_same_seed_same_snippet(tmp_path):
    tool = load_tool()
    csv = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), small_rows(30))
    outs = []
    for name in ('a.py', 'b.py'):
        out = tmp_path / name
        assert tool.main([
            '--csv', csv, '--seed', '7', '--popsize', '6', '--maxiter', '15',
            '--objective', 'iou', '--log-interval', '0', '--out',
            str(out)
        ]) == 0
        text = out.read_text()
        outs.append(text[text.index('anchor_generator = dict('):])
    assert outs[0] == outs[1]


def test_config_run_uses_config_anchors_and_resize(tmp_path, capsys):
    tool = load_tool()
    rows = small_rows(12)
    write_dl_info_csv(str(tmp_path / 'DL_info.csv'), rows)
    write_key_slices(str(tmp_path / 'Images_png'), rows)
    config = tmp_path / 'cfg.py'
    config.write_text(f"""
custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)
default_scope = 'mmdet'
model = dict(bbox_head=dict(anchor_generator=dict(
    type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
    ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128])))
val_dataloader = dict(dataset=dict(
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
    assert 'anchor_generator = dict(' in printed
