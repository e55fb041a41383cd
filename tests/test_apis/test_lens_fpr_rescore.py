# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS row (e): re-scoring 3D findings with the FPR network (Eq. 2), from
DeepLesion PNG folders and from in-memory volumes."""
import json
import tempfile

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.methods.lens.fpr_rescore import (FPRPatchSource, load_fpr_model,
                                               rescore_findings_with_fpr)
from mmlesion.methods.lens.datasets.fpr_patches import positive_box_3d
from mmlesion.methods.lens.datasets.fpr_patches import FORMAT, VolumeFPRPatches
from mmlesion.datasets.deeplesion.png_slices import write_hu_png
from mmlesion.structures.finding_3d import Finding3D
from mmlesion.testing import get_config, repo_root
from tests.helpers.lens_models import FPR_DEMO_CFG

PATCH = (8, 48, 48)


def _finding(bbox_3d, score, slice_range=(0, 0)):
    """A finding of its 3D box and score (re-scoring reads no more)."""
    return Finding3D(bbox_3d, score, slice_range, slice_range[0], [])


def _fpr():
    cfg = get_config(FPR_DEMO_CFG)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model.eval()


def test_rescore_is_eq2_of_the_fpr_network(tiny_demo_root):
    cfg, model = _fpr()
    series = sorted(p.name for p in (tiny_demo_root / 'Images_png').iterdir())
    findings = {
        series[0]: [_finding([100, 100, 5, 120, 130, 8], 0.8, (6, 7)),
                    # flat (clipped at the border): still re-scored
                    _finding([256, 10, 5, 256, 20, 6], 0.2)],
        series[1]: [],
        series[2]: [_finding([30.5, 40, 1, 70, 90.25, 4], 0.5)],
    }
    out = rescore_findings_with_fpr(model, findings, cfg,
                                    FPRPatchSource(str(tiny_demo_root)),
                                    batch_size=2, show_progress=False)
    assert list(out) == list(findings) and out[series[1]] == []
    flat = [f for n in findings for f in findings[n]]
    got = [f for n in out for f in out[n]]
    # input order, boxes and other fields kept, s_lens = the input score
    assert [g.bbox_3d for g in got] == [f.bbox_3d for f in flat]
    assert got[0].slice_range == (6, 7)
    assert [g.score_parts['s_lens'] for g in got] == [f.score for f in flat]
    assert all(f.score_parts == {} for f in flat)  # copies
    # s_fpr: the FPR network's sigmoid on the patch dataset of the boxes
    ds_cfg = dict(cfg.train_dataloader.dataset, data_root=str(tiny_demo_root))
    with tempfile.NamedTemporaryFile('w', suffix='.json') as f:
        json.dump(dict(metainfo=dict(format=FORMAT), proposals=[
            dict(series_dir=n, bbox_3d=positive_box_3d(x.bbox_3d, 4),
                 label=0) for n in findings for x in findings[n]]), f)
        f.flush()
        with DefaultScope.overwrite_default_scope('mmdet'):
            ds = DATASETS.build(dict(ds_cfg, ann_file=f.name))
        with torch.no_grad():
            logits = model(torch.stack([ds[i]['inputs'] for i in range(3)]),
                           [ds[i]['data_samples'] for i in range(3)])
    np.testing.assert_allclose([g.score_parts['s_fpr'] for g in got],
                               logits.sigmoid().numpy(), rtol=1e-6)
    # Eq. 2, exactly
    for g in got:
        parts = g.score_parts
        assert list(parts) == ['s_lens', 's_fpr']
        assert g.score == (parts['s_lens'] + parts['s_fpr']) / 2
    assert len({g.score_parts['s_fpr'] for g in got}) == 3  # 3 patches


@pytest.mark.parametrize('src_spacing,patch_spacing', [
    (None, None),  # native voxels
    ((5., 0.7, 0.7), (2., 1.4, 1.4)),  # resampled to a physical size
])
def test_volume_patches_equal_png_patches(tmp_path, src_spacing,
                                          patch_spacing):
    """The in-memory adapter crops the same patch as the PNG dataset on an
    exported slice stack (borders, slices beyond the ends included), so
    both paths give the same FPR scores."""
    rng = np.random.default_rng(0)
    volume = rng.integers(-1000, 1500, size=(12, 40, 56)).astype(np.float32)
    folder = tmp_path / 'Images_png' / '000001_01_01'
    folder.mkdir(parents=True)
    for z, img in enumerate(volume):
        write_hu_png(str(folder / f'{z:03d}.png'), img)
    boxes = [[10, 12, 3, 30, 25, 6],      # inside
             [-5, -3, -2, 8, 6, 1],       # top-left corner, z before 0
             [45.5, 30, 9, 60, 44, 13.5],  # beyond x, y and the last slice
             [20, 20, 5.5, 20.004, 21, 5.5]]  # flat: made positive
    findings = {'000001_01_01': [_finding(b, 0.1 * (i + 1))
                                 for i, b in enumerate(boxes)]}
    cfg, model = _fpr()
    cfg.train_dataloader.dataset.patch_spacing = patch_spacing
    props = [dict(series_dir='000001_01_01', label=0, score=f.score,
                  bbox_3d=positive_box_3d(f.bbox_3d, 4))
             for f in findings['000001_01_01']]
    if src_spacing is not None:
        for p in props:
            p['spacing'] = list(src_spacing)
    spacings = {'000001_01_01': src_spacing}
    ann = tmp_path / 'props.json'
    ann.write_text(json.dumps(dict(metainfo=dict(format=FORMAT),
                                   proposals=props)))
    png_ds = DATASETS.build(dict(
        type='LENSFPRPatchDataset', ann_file=str(ann),
        data_root=str(tmp_path), patch_size=PATCH, hu_window=(-250., 350.),
        patch_spacing=patch_spacing))
    vol_ds = VolumeFPRPatches({'000001_01_01': volume}, props, PATCH,
                              (-250., 350.), spacings, patch_spacing)
    assert len(png_ds) == len(vol_ds) == 4
    for i in range(4):
        a, b = png_ds[i], vol_ds[i]
        assert a['inputs'].shape == (1, ) + PATCH
        assert torch.equal(a['inputs'], b['inputs'])
        assert a['data_samples'].bbox_3d == b['data_samples'].bbox_3d
        assert a['data_samples'].lens_score == b['data_samples'].lens_score
    # the corner patch: air outside the image, slice 0 repeated before it
    corner = vol_ds[1]['inputs'][0]
    assert (corner[:, :3, :] == -1).all()
    assert torch.equal(corner[0], corner[1])
    if src_spacing is None:
        # the PNG path of the re-scoring reads the same proposals; the
        # spacing case needs DL_info.csv rows (tested in test_datasets)
        from_png = rescore_findings_with_fpr(model, findings, cfg,
                                             FPRPatchSource(str(tmp_path)),
                                             show_progress=False)
        from_vol = rescore_findings_with_fpr(
            model, findings, cfg,
            FPRPatchSource(volumes={'000001_01_01': volume}),
            show_progress=False)
        assert from_png == from_vol
    else:
        with pytest.raises(KeyError, match='no spacing'):
            VolumeFPRPatches({'000001_01_01': volume}, props, PATCH,
                             patch_spacing=patch_spacing)
    with pytest.raises(KeyError, match="no volume named '000001_01_01'"):
        VolumeFPRPatches({'other': volume}, props)


def test_load_fpr_model_refuses_a_detector_config(tmp_path):
    path = repo_root() / 'configs' / 'lens' / 'demo' / (
        'lens-afp_densenet-tiny_fpn_radam-12e_deeplesion-demo-partial.py')
    with pytest.raises(ValueError, match='not LENSFPR'):
        load_fpr_model(str(path), None)


def test_load_fpr_model_takes_the_options_it_was_trained_with():
    """A test-only width reaches the network (row (e)'s 3D evaluation
    builds it as trained)."""
    path = repo_root() / 'configs' / 'lens' / (
        'lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion.py')
    fpr = load_fpr_model(str(path), None, cfg_options={
        'model.backbone.base_channels': 8, 'model.backbone.init_cfg': None})
    assert fpr.model.backbone.conv1.out_channels == 8
