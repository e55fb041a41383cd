# Copyright (c) mmlesion contributors. All rights reserved.
"""Top-level config keys that look like a mistake and have no effect are
listed in one warning; a saved config gives none."""
import pytest
from mmengine.config import Config

from mmlesion.testing import get_config, repo_root
from mmlesion.utils import check_config_keys, find_unknown_config_keys
from mmlesion.utils.configs.cfg_options import (ConfigOptionError,
                                                apply_cfg_options)

CONFIG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def test_typo_is_listed_with_suggestion(log_messages):
    cfg = get_config(CONFIG)
    cfg.merge_from_dict({'trian_cfg': dict(max_epochs=3)})
    assert check_config_keys(cfg, source='my_config.py') == ['trian_cfg']
    text = '\n'.join(log_messages)
    assert 'my_config.py' in text
    assert 'trian_cfg (did you mean train_cfg?)' in text


def test_typo_in_config_file(tmp_path, log_messages):
    base = repo_root() / 'configs' / CONFIG
    path = tmp_path / 'typo.py'
    path.write_text(f"_base_ = ['{base}']\n"
                    'max_iters = 100\n'  # helper variable, used below
                    'trian_cfg = dict(max_epochs=2)\n'
                    'val_cfg = dict(type="ValLoop", max_iters=max_iters)\n')
    cfg = Config.fromfile(str(path))
    unknown, = find_unknown_config_keys(cfg)
    assert (unknown.key, str(unknown)) == (
        'trian_cfg', 'trian_cfg (did you mean train_cfg?)')
    assert find_unknown_config_keys(cfg, extra_known=['trian_cfg']) == []


@pytest.mark.parametrize('name', [
    'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py',
    'elixirnet/elixirnet-alb-rtm-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
    'retinanet_lesion/improved-retinanet_r50_densefpn-ag_1xb4-adam-plateau-50e_deeplesion.py'
])
def test_shipped_configs_have_no_unknown_keys(name):
    """Helper variables of real configs (pipelines, heads) are not flagged
    (all 40 configs were checked when this was written)."""
    assert find_unknown_config_keys(get_config(name)) == []


def test_runner_setting_at_top_level_says_where_it_belongs(tmp_path,
                                                          log_messages):
    """``max_epochs = 2`` over a base that reads its own max_epochs: the
    run would train 36 epochs; a variable the config reads stays quiet."""
    base = repo_root() / 'configs' / CONFIG
    path = tmp_path / 'short.py'
    path.write_text(f"_base_ = ['{base}']\n"
                    'max_epochs = 2\n'
                    'lr = 0.5\n'
                    'my_helper = 5\n'
                    'batch_size = 4\n'
                    'train_dataloader = dict(batch_size=batch_size)\n')
    cfg = Config.fromfile(str(path))
    assert check_config_keys(cfg, source=str(path)) == ['max_epochs', 'lr']
    line, = [m for m in log_messages if 'have no effect' in m]
    assert str(path) in line
    assert ('max_epochs (2 here; it belongs in train_cfg.max_epochs, which '
            'is 36)') in line
    assert 'optim_wrapper.optimizer.lr' in line



@pytest.mark.parametrize('option, value, meant', [
    ('max_epochs', 2, 'did you mean train_cfg.max_epochs=2?'),
    ('trian_cfg.max_epochs', 3, 'did you mean train_cfg.max_epochs=3?'),
    ('wrok_dir', 'w', 'did you mean work_dir=w?'),
    ('fold', 3, 'choose the fold with --fold 3'),
])
def test_cfg_option_nothing_reads_is_refused(option, value, meant):
    """``--cfg-options max_epochs=2`` on a config whose file reads its own
    ``max_epochs``: the files ran before the option, so it would train 36
    epochs; refused before anything is merged, naming the option as given
    and the key it meant."""
    cfg = get_config(CONFIG)
    before = cfg.to_dict()
    with pytest.raises(ConfigOptionError) as err:
        apply_cfg_options(cfg, {option: value}, source='demo.py')
    line = str(err.value)
    assert '\n' not in line
    assert line.startswith(f'--cfg-options {option}={value}: nothing reads '
                           f"a top-level {option.split('.')[0]!r}")
    assert line.endswith(meant)
    assert cfg.to_dict() == before
    # a key the runner reads, the data root the datasets take: merged
    apply_cfg_options(cfg, {'work_dir': 'w', 'data_root': 'd/'},
                      source='demo.py')
    assert cfg.work_dir == 'w'
    assert check_config_keys(cfg, options={'work_dir': 'w'}) == []


def test_test_time_check_covers_only_what_testing_reads(tmp_path,
                                                        log_messages):
    """The config a training saved after ``--cfg-options
    train_cfg.max_epochs=1`` keeps ``max_epochs = 36``: a training is
    warned (it would not train 36 epochs), a test (which builds no
    training loop) is not; a key that testing reads still is."""
    cfg = get_config(CONFIG)
    cfg.train_cfg.max_epochs = 1
    path = tmp_path / 'saved.py'
    cfg.dump(str(path))
    saved = Config.fromfile(str(path))
    assert check_config_keys(saved) == ['max_epochs']
    log_messages.clear()
    assert check_config_keys(saved, testing=True) == []
    assert not [m for m in log_messages if 'have no effect' in m]
    saved.merge_from_dict({'tset_cfg': dict(type='TestLoop', fp16=True)})
    assert check_config_keys(saved, testing=True) == ['tset_cfg']


@pytest.mark.parametrize('name', [
    CONFIG,
    'aggregated3d/aggregated3d-wo-da-abs_denseunet3d_anchor1_4xb2-30e_'
    'luna16.py',
])
def test_saved_config_gives_no_warning(name, tmp_path, log_messages):
    """The config a run saves (every variable substituted, bases gone;
    both warned before, about 14 keys for the demo)."""
    path = tmp_path / 'saved.py'
    get_config(name).dump(str(path))
    assert check_config_keys(Config.fromfile(str(path))) == []
    assert not [m for m in log_messages if 'have no effect' in m]


def test_registered_looks_up_a_plain_name_without_importing_it(
        monkeypatch):
    """A type name without a dot is found in the registries (and their
    parents) or not at all: never tried as a module path, an import
    search of ``sys.path`` for each registry that lacks it."""
    import mmengine.registry.registry as registry_module

    from mmlesion.utils.configs.known_keys import registered

    imported = []
    monkeypatch.setattr(registry_module, 'get_object_from_string',
                        lambda key: imported.append(key))
    assert registered('DeepLesionDataset').__name__ == 'DeepLesionDataset'
    assert registered('NoSuchTypeAnywhere') is None
    assert imported == []
