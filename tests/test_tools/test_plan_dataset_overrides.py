# Copyright (c) mmlesion contributors. All rights reserved.
"""A planned value given by ``--cfg-options NAME=VALUE`` wins: the planned
config runs again with it, so every setting that uses it (and the values
derived from it) follows; another config's unread variable is still
refused."""
import pytest
from mmengine.config import Config

from mmlesion.apps.own_data.dataset_plan import PlanSettings, plan_dataset
from mmlesion.apps.own_data.plan_config import (PlanConfigSettings,
                                                format_plan_config)
from mmlesion.testing import repo_root
from mmlesion.utils.configs.cfg_options import (ConfigOptionError,
                                                apply_cfg_options)
from tests.test_apps.test_own_data.test_plan_schedule import coarse_fingerprint


@pytest.fixture(scope='module')
def planned(tmp_path_factory):
    plan = plan_dataset(PlanSettings(coarse_fingerprint(), 24.,
                                     train_images=40))
    folder = tmp_path_factory.mktemp('planned')
    path = folder / 'mine.py'
    base = str(repo_root() / 'configs' / plan.base)
    path.write_text(format_plan_config(plan, PlanConfigSettings(
        '../' * len(folder.parts) + base.lstrip('/'), 'export/', ['made'],
        False)))  # a relative _base_, as the tool writes one
    return str(path)


def test_planned_values_follow_the_options(planned):
    cfg = Config.fromfile(planned)
    apply_cfg_options(cfg, {'hu_window': (-100, 200), 'max_iters': 300,
                            'train_dataloader.num_workers': 0}, planned)
    for loader in ('train_dataloader', 'test_dataloader'):
        steps = {t['type']: t for t in cfg[loader].dataset.pipeline}
        assert steps['WindowHU']['window'] == (-100, 200)
    assert cfg.test_pipeline[2]['window'] == (-100, 200)
    # derived from max_iters: epochs, warm-up, steps
    assert cfg.max_iters == 300
    assert cfg.train_cfg.max_epochs == -(-300 // cfg.iters_per_epoch)
    assert cfg.param_scheduler[0]['end'] == 15
    assert cfg.param_scheduler[1]['milestones'] == [200, 275]
    assert cfg.train_dataloader.num_workers == 0  # the others too
    # the same option on a config that does not plan it is refused
    other = Config.fromfile(str(repo_root() / 'configs/elixirnet/'
                                'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-'
                                '3slice.py'))
    with pytest.raises(ConfigOptionError, match="nothing reads a top-level"
                       " 'hu_window'"):
        apply_cfg_options(other, {'hu_window': (-100, 200)}, 'x.py')
