# Copyright (c) mmlesion contributors. All rights reserved.
"""AMP's findings against fp32's: the matching, and the comparison on a
tiny real detector whose second run has its classifier nudged instead of
autocast (a CPU has no AMP path: mmcv's CPU NMS takes float32 only)."""
import contextlib
from dataclasses import dataclass
from typing import List

import pytest
import torch

from tests.helpers.tool_modules import load_tool

DEMO_CFG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
BOX = [0., 0., 0., 10., 10., 10.]
NEAR = [1., 1., 1., 11., 11., 11.]
FAR = [50., 50., 50., 60., 60., 60.]


@pytest.fixture(scope='module')
def tool():
    return load_tool('projects/benchmarks/compare_amp_findings.py')


@dataclass
class _Finding:
    score: float
    bbox_voxel_resampled: List[float]


def test_pairs_go_by_score_one_to_one(tool):
    # the best-scored box first takes the AMP box it overlaps most
    pairs = tool.match_findings([BOX, NEAR, FAR], [.5, .9, .3],
                                [BOX, NEAR], .5)
    assert [(i, j) for i, j, _ in pairs] == [(1, 1), (0, 0)]
    assert [iou for _, _, iou in pairs] == pytest.approx([1., 1.])
    # each AMP box once: the second float32 box gets the other one
    pairs = tool.match_findings([BOX, BOX], [.9, .8], [BOX, NEAR], .5)
    assert [(i, j) for i, j, _ in pairs] == [(0, 0), (1, 1)]
    assert pairs[1][2] == pytest.approx(729 / 1271)
    # below the IoU: no pair (half the box: IoU 1/3)
    half = [5., 0., 0., 15., 10., 10.]
    assert tool.match_findings([BOX], [1.], [half], .34) == []
    assert len(tool.match_findings([BOX], [1.], [half], .33)) == 1
    assert tool.match_findings([], [], [BOX], .5) == []
    assert tool.match_findings([BOX], [1.], [], .5) == []


def test_agreement_and_its_sum_over_scans(tool):
    fp32 = [_Finding(.9, BOX), _Finding(.4, FAR), _Finding(.2, NEAR)]
    amp = [_Finding(.85, BOX), _Finding(.6, FAR),
           _Finding(.7, [90., 90., 90., 99., 99., 99.])]
    one, diffs = tool.agreement(fp32, amp, .9)
    assert (one.fp32, one.amp, one.matched) == (3, 3, 2)
    assert diffs == pytest.approx([.05, .2])
    assert one.score_diff_median == pytest.approx(.125)
    assert one.score_diff_max == pytest.approx(.2)
    assert one.iou_min == pytest.approx(1.)
    assert one.unmatched_fp32_best == pytest.approx(.2)
    assert one.unmatched_amp_best == pytest.approx(.7)
    none, no_diffs = tool.agreement([], amp, .5)
    assert (none.matched, no_diffs, none.score_diff_max, none.iou_min,
            none.unmatched_fp32_best) == (0, [], None, None, None)
    assert none.unmatched_amp_best == pytest.approx(.85)
    total = tool.combine([one, none], diffs + no_diffs)
    assert (total.fp32, total.amp, total.matched) == (3, 6, 2)
    assert total.score_diff_median == pytest.approx(.125)
    assert total.unmatched_amp_best == pytest.approx(.85)
    assert total.iou_min == pytest.approx(1.)


@contextlib.contextmanager
def _nudged(layer: torch.nn.Linear, factor: float):
    """The layer's weights scaled by ``factor`` while inside."""
    weight = layer.weight.data.clone()
    layer.weight.data.mul_(factor)
    try:
        yield
    finally:
        layer.weight.data.copy_(weight)


def test_a_tiny_detector_nudged(tool, tmp_path, capsys):
    from mmlesion.apis.detector_loader import init_lesion_detector
    from mmlesion.apis.whole_scan.run import volume_run_config
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   RunSettings)
    from projects.study_demo.synthetic.volumes import generate_demo_volumes
    from mmlesion.testing import get_config
    generate_demo_volumes(tmp_path, seed=0, num_luna=2, num_kits=0,
                          num_lits=0, val_fraction=0., size_range=(64, 64),
                          num_slices_range=(12, 12))
    scans = sorted(tmp_path.rglob('*.mhd'))
    run = RunSettings(detection=DetectionSettings(batch_size=4,
                                                  show_progress=False),
                      pixel_spacing=1., cfg_name=DEMO_CFG)
    run_config = volume_run_config(get_config(DEMO_CFG), run)
    cfg, settings = run_config.cfg, run_config.settings
    torch.manual_seed(0)
    model = init_lesion_detector(cfg).model
    fc_cls = model.roi_head.bbox_head.fc_cls
    same = tool.compare_scans(model, scans, settings, run.detection,
                              lambda: _nudged(fc_cls, 1.), .5, .5)
    assert same.all.fp32 > 0, 'the random detector found nothing'
    assert same.all.matched == same.all.fp32 == same.all.amp
    assert same.all.score_diff_max == 0.
    assert len(same.per_scan) == 2
    nudged = tool.compare_scans(model, scans, settings, run.detection,
                                lambda: _nudged(fc_cls, 1.01), .5, .5)
    assert nudged.all.fp32 == same.all.fp32
    assert 0 < nudged.all.score_diff_max < .1
    result = dict(config=DEMO_CFG, checkpoint=None, device='cpu',
                  amp_dtype='float16', scans=2, scan_size=[64, 12], iou=.5,
                  score_thr=.5, **tool.asdict(nudged))
    tool.print_comparison(result)
    out = capsys.readouterr().out
    assert f'AMP matched {nudged.all.matched} of {nudged.all.fp32}' in out
    assert 'all scans' in out and 'score >= 0.5' in out


def test_a_cpu_is_refused(tool, capsys):
    with pytest.raises(SystemExit):
        tool.parse_args(['--device', 'cpu'])
    assert 'AMP needs a CUDA device' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(['--iou', '0'])
