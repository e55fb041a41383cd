# Copyright (c) mmlesion contributors. All rights reserved.
"""The scan-check switches as settings (mmlesion.datasets.volumes.
scan_switches): a tool's flag and a config key reach the reader, no
environment variable set on the way."""
import argparse
import json
import os

import numpy as np
import pytest
import SimpleITK as sitk
from mmengine.registry import init_default_scope

from mmlesion.datasets.volumes.scan_switches import (ALLOW_OUTSIDE_DATA_ENV,
                                                     FORCE_CT_ENV,
                                                     RESAMPLE_NONUNIFORM_ENV,
                                                     ScanChecks,
                                                     set_scan_checks)
from mmlesion_cli.common_args import (add_scan_check_arguments,
                                      scan_check_flags)

SHAPE_ZYX = (4, 8, 8)


@pytest.fixture
def no_switch_variables(monkeypatch):
    """None of the user-level variables set, whatever the test run's."""
    init_default_scope('mmdet')
    for env in (FORCE_CT_ENV, RESAMPLE_NONUNIFORM_ENV,
                ALLOW_OUTSIDE_DATA_ENV):
        monkeypatch.delenv(env, raising=False)


def _not_ct_scan(path) -> str:
    """A volume no CT could be: no voxel below -200 HU."""
    img = sitk.GetImageFromArray(np.full(SHAPE_ZYX, 100., np.float32))
    img.SetSpacing((1., 1., 2.))
    sitk.WriteImage(img, str(path))
    return str(path)


def _annotation_file(folder, scan: str) -> str:
    path = folder / 'ann.json'
    path.write_text(json.dumps(dict(
        metainfo=dict(classes=['lesion']),
        volumes=[dict(id='s1', file=scan, shape_zyx=list(SHAPE_ZYX),
                      spacing_zyx=[2., 1., 1.], origin_xyz=[0., 0., 0.],
                      direction=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                      annotations=[])])))
    return str(path)


def _dataset_cfg(ann_file: str, **dataset) -> dict:
    return dict(type='CTVolumeDataset', ann_file=ann_file, test_mode=True,
                pipeline=[dict(type='LoadCTVolume')], **dataset)


def test_defaults_and_a_config_dict(no_switch_variables, monkeypatch):
    assert ScanChecks() == ScanChecks(False, False, False)
    assert ScanChecks.of(dict(force_ct=True)).force_ct
    with pytest.raises(ValueError, match='unknown key.*force_CT.*force_ct'):
        ScanChecks.of(dict(force_CT=True))
    with pytest.raises(ValueError, match=r'scan_checks.force_ct=1: give '):
        ScanChecks.of(dict(force_ct=1))
    # the user-level fallback, read where the defaults are made
    monkeypatch.setenv(RESAMPLE_NONUNIFORM_ENV, '1')
    assert ScanChecks() == ScanChecks(resample_nonuniform=True)
    assert ScanChecks.of(dict(force_ct=True)) == ScanChecks(True, True)


@pytest.mark.parametrize('flag,field', [
    ('--force-ct', 'force_ct'),
    ('--resample-nonuniform', 'resample_nonuniform'),
    ('--allow-outside-data', 'allow_outside_data')])
def test_a_flag_sets_no_environment_variable(flag, field,
                                             no_switch_variables):
    environ = dict(os.environ)
    parser = argparse.ArgumentParser()
    add_scan_check_arguments(parser)
    args = parser.parse_args([flag])
    assert dict(os.environ) == environ
    assert scan_check_flags(args) == {field: True}
    assert scan_check_flags(parser.parse_args([])) == {}
    checks = ScanChecks(**scan_check_flags(args))
    assert [f for f, on in vars(checks).items() if on] == [field]


def test_a_tool_flag_reaches_the_reader_without_the_environment(
        tmp_path, no_switch_variables):
    """--allow-outside-data, through the config, lets a dataset read a scan
    outside its data root; nothing in os.environ changes."""
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    scan = _not_ct_scan(tmp_path / 'elsewhere.nii.gz')
    (tmp_path / 'data').mkdir()
    ann = _annotation_file(tmp_path / 'data', scan)
    cfg = Config(dict(test_dataloader=dict(dataset=_dataset_cfg(ann))))
    with pytest.raises(ValueError, match='outside the data root'):
        DATASETS.build(cfg.test_dataloader.dataset).full_init()
    environ = dict(os.environ)
    parser = argparse.ArgumentParser()
    add_scan_check_arguments(parser)
    args = parser.parse_args(['--allow-outside-data', '--force-ct'])
    assert set_scan_checks(cfg, scan_check_flags(args)) == 2  # + transform
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    assert dataset[0]['img'].shape == SHAPE_ZYX
    assert dict(os.environ) == environ


def test_a_config_key_reaches_a_dataset_the_runner_builds(
        tmp_path, no_switch_variables):
    """``scan_checks=dict(force_ct=True)`` on the dataset of a config: the
    Runner's dataset reads a scan that is no CT, and hands the settings to
    LoadCTVolume through the sample."""
    from mmengine.runner import Runner
    scan = _not_ct_scan(tmp_path / 'scan.nii.gz')
    ann = _annotation_file(tmp_path, os.path.basename(scan))
    loader_cfg = dict(batch_size=1, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      collate_fn=dict(type='pseudo_collate'))
    strict = Runner.build_dataloader(
        dict(loader_cfg, dataset=_dataset_cfg(ann)))
    with pytest.raises(ValueError, match='scan.nii.gz.*force-ct'):
        next(iter(strict))
    loader = Runner.build_dataloader(dict(
        loader_cfg, dataset=_dataset_cfg(ann, scan_checks=dict(
            force_ct=True))))
    batch = next(iter(loader))
    assert batch['img'][0].shape == SHAPE_ZYX  # pseudo_collate: lists
    assert batch['scan_checks'] == [ScanChecks(force_ct=True)]
