# Copyright (c) mmlesion contributors. All rights reserved.
"""The volume study data: generated and converted once, reused, never
mixed with other data."""
import json

import pytest

import projects.study_demo.study_data as study_data
from projects.study_demo.study_data import (VOLUME_STUDY_PRESETS,
                                            ensure_volume_study_data)

TINY = dict(num_luna=3, num_kits=0, num_lits=0, size_range=(40, 44),
            slice_thicknesses=(1., ), num_slices_range=(24, 28),
            nodule_diameter_range=(5., 8.), unannotated_prob=0.)


def test_generate_convert_reuse_and_refuse(tmp_path, monkeypatch):
    monkeypatch.setitem(VOLUME_STUDY_PRESETS, 'tiny', TINY)
    root = tmp_path / 'data_tiny'
    data_root = ensure_volume_study_data(str(root), 'tiny')
    assert data_root == str(root / 'luna16') + '/'
    ann = json.loads((root / 'luna16' / 'luna16.json').read_text())
    assert len(ann['volumes']) == 3
    truth = json.loads((root / 'ground_truth.json').read_text())
    # every nodule of >= 3 mm is annotated (no unlisted nodule)
    assert not [les for les in truth['lesions']
                if les['kind'] != 'small_nodule' and not les['annotated']]
    # reused: nothing is generated again
    monkeypatch.setattr(study_data, 'DemoVolumeGenerator', None)
    assert ensure_volume_study_data(str(root), 'tiny') == data_root
    # other settings in the same folder, an unknown preset, a foreign folder
    monkeypatch.setitem(VOLUME_STUDY_PRESETS, 'tiny2', dict(TINY, num_luna=4))
    with pytest.raises(ValueError, match='other settings'):
        ensure_volume_study_data(str(root), 'tiny2')
    with pytest.raises(ValueError, match='luna16vol'):
        ensure_volume_study_data(str(root), 'nope')
    (tmp_path / 'mine').mkdir()
    with pytest.raises(ValueError, match='not a generated data set'):
        ensure_volume_study_data(str(tmp_path / 'mine'), 'tiny')


def test_test_set_counts_held_out_nodules(tmp_path, monkeypatch):
    """The 3D study's test set: the not-ignored nodules of the scans its
    config holds out, with the data seed, judged against 60 nodules."""
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope

    from projects.study_demo.study_data import volume_test_set
    monkeypatch.setitem(VOLUME_STUDY_PRESETS, 'tiny8', dict(TINY, num_luna=8))
    data_root = ensure_volume_study_data(str(tmp_path / 'd'), 'tiny8', seed=3)
    ann = json.loads((tmp_path / 'd' / 'luna16' / 'luna16.json').read_text())
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(
            dict(type='CrossValVolumeDataset', data_root=data_root,
                 ann_file='luna16.json', fold=0, num_folds=2,
                 fold_source='hash', pipeline=[], test_mode=True))
    ds.full_init()
    held = {ds.get_data_info(i)['img_id'] for i in range(len(ds))}
    expected = sum(
        1 for v in ann['volumes'] if v['id'] in held
        for les in v['annotations'] if not les['ignore'])
    ts = volume_test_set(ds, data_root)
    assert 0 < len(held) < 8
    assert (ts.lesions, ts.images) == (expected, len(held)) and expected
    assert ts.data_seeds == (3, ) and ts.unit == 'nodules'
    assert ts.minimum == 60 and not ts.large_enough
