# Copyright (c) mmlesion contributors. All rights reserved.
"""The slice interval and pixel spacing of the training data: recorded in
every checkpoint at training time (``DataConventionHook``) and used by
whole-scan inference by default (option > checkpoint > config > default,
``settings.sources`` in ``findings.json``)."""
import copy
import functools
import importlib.util
import inspect
import json
import math
from types import SimpleNamespace

import numpy as np
import SimpleITK as sitk
import torch

from mmlesion.apis.detector_loader import init_lesion_detector
from mmlesion.apis.whole_scan.model import (checkpoint_data_convention,
                                           checkpoint_meta, read_checkpoint)
from mmlesion.apis.whole_scan.run import volume_run_config
from mmlesion.apis.whole_scan.settings import (DATA_CONVENTION_KEY,
                                               RunSettings,
                                               volume_settings_from_config)
from mmlesion.engine.hooks import DataConventionHook
from mmlesion.testing import get_config, repo_root
from tests.helpers.volume_demo import DEMO_CFG

#: What the main job's demo model saw: 3 slices 2 mm apart at 1.4 mm/px.
DEMO_CONVENTION = dict(num_slices=3, interval_mm=2., pixel_spacing=1.4,
                       images=4)


@functools.lru_cache(maxsize=None)
def _demo_config():
    return get_config(DEMO_CFG)


def _demo_cfg():
    """A copy of the demo config (read once)."""
    return copy.deepcopy(_demo_config())


def _checkpoint(path, convention=None, state_dict=None):
    """A checkpoint whose meta records ``convention`` (None: none)."""
    meta = {} if convention is None else {DATA_CONVENTION_KEY: convention}
    torch.save(dict(state_dict=state_dict or {}, meta=meta), path)
    return str(path)


def _settings(checkpoint=None, cfg=None, **run):
    return volume_run_config(cfg or _demo_cfg(),
                             RunSettings(**run), checkpoint).settings


def test_a_checkpoint_record_is_used_by_default(tmp_path):
    ckpt = _checkpoint(tmp_path / 'demo.pth', DEMO_CONVENTION)
    s = _settings(ckpt)
    assert (s.interval_mm, s.pixel_spacing) == (2., 1.4)
    assert s.sources == dict(interval_mm='checkpoint',
                             pixel_spacing='checkpoint')
    assert s.pixel_spacing_source == 'checkpoint'
    assert s.pipeline[0]['interval_mm'] == 2.
    # the checkpoint's record comes before the config's test pipeline
    cfg = _demo_cfg()
    cfg.test_dataloader.dataset.pipeline.insert(
        2, dict(type='ResampleToSpacing', spacing=.7))
    cfg.test_dataloader.dataset.pipeline[1].interval_mm = 5.
    s = _settings(_checkpoint(tmp_path / 'b.pth', dict(
        DEMO_CONVENTION, interval_mm=2.5)), cfg)
    assert (s.interval_mm, s.pixel_spacing) == (2.5, 1.4)
    assert s.pipeline[0]['interval_mm'] == 2.5


def test_options_override_the_checkpoint(tmp_path):
    ckpt = _checkpoint(tmp_path / 'demo.pth', DEMO_CONVENTION)
    s = _settings(ckpt, pixel_spacing=.9)
    assert (s.pixel_spacing, s.interval_mm) == (.9, 2.)
    assert s.sources == dict(interval_mm='checkpoint', pixel_spacing='option')
    assert s.pixel_spacing_source == 'argument'
    s = _settings(ckpt, interval_mm=3.)
    assert (s.interval_mm, s.pixel_spacing) == (3., 1.4)
    assert s.sources == dict(interval_mm='option', pixel_spacing='checkpoint')


def test_a_checkpoint_without_a_record_falls_back_to_the_config(tmp_path):
    old = _checkpoint(tmp_path / 'old.pth')
    s = _settings(old)
    assert (s.interval_mm, s.pixel_spacing) == (2., .8)
    assert s.sources == dict(interval_mm='config', pixel_spacing='default')
    cfg = _demo_cfg()
    cfg.test_dataloader.dataset.pipeline.insert(
        2, dict(type='ResampleToSpacing', spacing=.7))
    s = _settings(old, cfg)
    assert s.pixel_spacing == .7
    assert s.sources == dict(interval_mm='config', pixel_spacing='config')
    assert s.pixel_spacing_source == 'ResampleToSpacing'
    # a record without a usable spacing, a missing file: the config's too
    bad = _checkpoint(tmp_path / 'bad.pth', dict(
        DEMO_CONVENTION, pixel_spacing=-1., interval_mm=None))
    assert _settings(bad, cfg).sources == dict(interval_mm='config',
                                               pixel_spacing='config')
    assert _settings(str(tmp_path / 'none.pth'), cfg).pixel_spacing == .7


def _training_runner(images):
    """A runner of the demo config whose training set holds ``images``."""
    dataset = type('Images', (), dict(
        __len__=lambda self: len(images),
        get_data_info=lambda self, i: dict(images[i])))()
    return SimpleNamespace(cfg=_demo_cfg(),
                           train_dataloader=SimpleNamespace(dataset=dataset))


def test_the_training_hook_records_the_convention(tmp_path):
    """The demo set's 256 px slices at ~1.4 mm/px keep their size (Resize
    to 256); a 512 px slice at 0.7 mm/px is halved, to 1.4 mm/px."""
    assert 'DataConventionHook' in [
        h['type'] for h in _demo_cfg().custom_hooks]
    runner = _training_runner([
        dict(spacing=1.4, height=256, width=256),
        dict(spacing=1.38, height=256, width=256),
        dict(spacing=1.42, height=256, width=256),
        dict(spacing=.7, height=512, width=512),
        dict(spacing=None, height=512, width=512)])  # not counted
    checkpoint = dict(meta=dict(epoch=1), state_dict={})
    DataConventionHook().before_save_checkpoint(runner, checkpoint)
    record = checkpoint['meta'][DATA_CONVENTION_KEY]
    assert record == DEMO_CONVENTION
    assert checkpoint['meta']['epoch'] == 1
    # saved, it reads back (weights_only) and sets inference's default
    path = tmp_path / 'epoch_1.pth'
    torch.save(checkpoint, path)
    assert checkpoint_data_convention(checkpoint_meta(read_checkpoint(
        str(path)))) == DEMO_CONVENTION
    assert _settings(str(path)).pixel_spacing == 1.4
    # a train pipeline that resamples: its spacing, whatever the images
    runner.cfg.train_dataloader.dataset.pipeline.insert(
        -2, dict(type='ResampleToSpacing', spacing=.8))
    checkpoint = dict(meta={})
    DataConventionHook().before_save_checkpoint(runner, checkpoint)
    assert checkpoint['meta'][DATA_CONVENTION_KEY]['pixel_spacing'] == .8


def _scan(path):
    """8 x 32 x 32 voxels of 2 x 1 x 1 mm (z, y, x)."""
    array = np.random.default_rng(0).uniform(
        -1000, 400, size=(8, 32, 32)).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1., 1., 2.))
    sitk.WriteImage(image, str(path))
    return path


def test_infer_volume_resamples_to_the_recorded_spacing(tmp_path):
    """``tools/infer_volume.py`` without --pixel-spacing: the scan is
    resampled to the checkpoint's 1.4 mm/px, and ``findings.json`` says
    where each value came from."""
    torch.manual_seed(0)
    model = init_lesion_detector(_demo_cfg()).model
    ckpt = _checkpoint(tmp_path / 'demo.pth', DEMO_CONVENTION,
                       model.state_dict())
    spec = importlib.util.spec_from_file_location(
        'infer_volume_tool_convention',
        repo_root() / 'tools' / 'infer_volume.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    torch.set_num_threads(1)
    out = tmp_path / 'out'
    code = tool.main([str(repo_root() / 'configs' / DEMO_CFG), ckpt,
                      str(_scan(tmp_path / 'scan.nii.gz')), '--out-dir',
                      str(out)])
    assert code == 0
    record = json.loads((out / 'findings.json').read_text())
    settings = record['settings']
    assert (settings['interval_mm'], settings['pixel_spacing']) == (2., 1.4)
    assert settings['sources'] == dict(interval_mm='checkpoint',
                                       pixel_spacing='checkpoint')
    z, y, x = record['resampled_geometry']['spacing_zyx']
    assert math.isclose(y, 1.4, rel_tol=1e-3) and math.isclose(
        x, 1.4, rel_tol=1e-3) and math.isclose(z, 2., rel_tol=1e-3)


def _pack_meta_keys(settings):
    packs = [t for t in settings.pipeline if t['type'] == 'PackDetInputs']
    assert len(packs) == 1
    return packs[0]['meta_keys']


def test_crop_offset_comes_back_without_or_with_the_configs_meta_keys():
    from mmdet.datasets.transforms import PackDetInputs
    default = inspect.signature(
        PackDetInputs.__init__).parameters['meta_keys'].default
    for given, expected in (
            (None, tuple(default) + ('crop_offset', )),
            (('img_id', 'crop_offset'), ('img_id', 'crop_offset')),
            (('img_id', ), ('img_id', 'crop_offset'))):
        cfg = _demo_cfg()
        for t in cfg.test_dataloader.dataset.pipeline:
            if t['type'] == 'PackDetInputs':
                t.pop('meta_keys', None)
                if given is not None:
                    t['meta_keys'] = given
        settings = volume_settings_from_config(cfg)
        assert _pack_meta_keys(settings) == expected
