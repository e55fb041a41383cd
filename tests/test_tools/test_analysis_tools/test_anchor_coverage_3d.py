# Copyright (c) mmlesion contributors. All rights reserved.
"""Cube-anchor coverage (3D Aggregated Faster R-CNN, Sec. IV-B: IoU+ 0.5)
and tools/analysis_tools/anchor_coverage.py on a 3D config."""
import importlib.util

import numpy as np
import pytest
import torch

from mmlesion.anchors.cube_anchor_coverage import (cube_anchor_coverage,
                                                   luna16_diameters)
from mmlesion.testing import repo_root, shared_data_root

CONFIG = str(repo_root() / 'configs' / 'aggregated3d' /
             'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py')
ANCHOR1 = ([4, 8, 16], [[4, 6], [8, 12], [16, 24]])
_SHARED = shared_data_root()
LUNA16_CSV = None if _SHARED is None else \
    _SHARED / 'luna16' / 'annotations.csv'


def _load_tool():
    path = repo_root() / 'tools' / 'analysis_tools' / 'anchor_coverage.py'
    spec = importlib.util.spec_from_file_location('anchor_coverage', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cube_coverage_by_hand():
    # d = 8 is an anchor size (centred IoU 1) but off-centre positions
    # fall below 0.5; d = 40 and d = 3 reach 0.5 nowhere
    rep = cube_anchor_coverage([8.0, 40.0, 3.0], *ANCHOR1,
                               samples_per_axis=16)
    iou = rep['per_lesion']['centred_iou']
    assert iou[0] == 1.0
    assert iou[1] == pytest.approx((24 / 40)**3, abs=1e-4)
    assert iou[2] == pytest.approx((3 / 4)**3, abs=1e-4)
    frac = rep['per_lesion']['frac_positions']
    assert 0 < frac[0] < 1 and frac[1] == 0 and frac[2] == 0
    assert rep['centred_ge_thr'] == 1 and rep['covered_nowhere'] == 2
    with pytest.raises(ValueError):
        cube_anchor_coverage([], *ANCHOR1)


def test_cube_coverage_matches_the_anchor_generator():
    """The fraction of positions equals a Monte Carlo estimate with the
    model's own anchors and 3D IoU."""
    import mmlesion  # noqa: F401
    from mmdet.registry import TASK_UTILS
    gen = TASK_UTILS.build(dict(type='CubeAnchorGenerator3D',
                                strides=ANCHOR1[0], sizes=ANCHOR1[1]))
    iou = TASK_UTILS.build(dict(type='BboxOverlaps3D'))
    priors = torch.cat(gen.grid_priors([(16, ) * 3, (8, ) * 3, (4, ) * 3],
                                       dtype=torch.float64))
    rng = np.random.default_rng(0)
    diameters = [4.5, 6.9, 11.0, 22.8]
    rep = cube_anchor_coverage(diameters, *ANCHOR1, samples_per_axis=32)
    for d, want in zip(diameters, rep['per_lesion']['frac_positions']):
        ctr = torch.from_numpy(rng.uniform(24, 40, (2000, 3)))
        best = iou(torch.cat([ctr - d / 2, ctr + d / 2], 1),
                   priors).max(1).values
        assert (best >= 0.5).double().mean().item() == pytest.approx(
            want, abs=0.04), d


@pytest.mark.skipif(LUNA16_CSV is None or not LUNA16_CSV.exists(),
                    reason='shared LUNA16 annotations.csv not available')
def test_tool_on_luna16_annotations(tmp_path, capsys):
    """The figures of the method README: with anchor1, 1,184 of the 1,186
    LUNA16 nodules reach IoU 0.5 centred on an anchor, none at every
    position, and 13 % of positions on average."""
    assert len(luna16_diameters(str(LUNA16_CSV))) == 1186
    out = tmp_path / 'cov.json'
    result = _load_tool().main([CONFIG, '--lesion-csv', str(LUNA16_CSV),
                                '--out', str(out)])
    rep = result['anchors']
    assert rep['num_lesions'] == 1186
    assert rep['centred_ge_thr'] == 1184
    assert rep['covered_everywhere'] == 0
    assert rep['covered_nowhere'] == 2
    assert rep['mean_frac_positions'] == pytest.approx(0.13, abs=0.005)
    assert out.exists() and 'at every centre position' in \
        capsys.readouterr().out


def test_tool_needs_a_lesion_csv_for_3d_configs():
    with pytest.raises(SystemExit):
        _load_tool().main([CONFIG])
